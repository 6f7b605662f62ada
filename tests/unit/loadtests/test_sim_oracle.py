"""The oracle is a true lower bound: no simulated policy pays less (late local requests
charged at their cheapest paid price), on a calm and on an overloaded slice."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.sim.catalog import DEFAULT, make_policy
from loadtests.sim.fleet import load_fleet
from loadtests.sim.oracle import charged_usd, paid_lower_bound, request_values
from loadtests.sim.simulation import SimSettings, simulate
from loadtests.sim.trace import TraceRequest, compressed, read_trace, sliced

ROOT = Path(__file__).resolve().parents[3]
CONV = ROOT / ".." / "shared" / "data" / "traces" / "azure_llm_2023_conv.csv"
FLEET = ROOT / "loadtests" / "sim" / "fleet.yaml"


@pytest.fixture(scope="module")
def conv() -> list[TraceRequest]:
    return read_trace(CONV)


@pytest.mark.parametrize(
    ("alias", "rate", "gpus", "slow"),
    [
        ("vs-gpt-4o-mini", 4.0, 1, 1.0),
        ("vs-hosted-qwen", 8.0, 1, 1.0),
        ("vs-hosted-qwen", 8.0, 2, 1.25),
    ],
)
def test_no_policy_beats_the_bound(
    conv: list[TraceRequest], alias: str, rate: float, gpus: int, slow: float
) -> None:
    requests = sliced(compressed(conv, rate), 60.0, 90.0)
    fleet = load_fleet(FLEET, alias).with_gpus(gpus)
    values = request_values(requests, fleet)
    bound = paid_lower_bound(requests, fleet, 1.0, slow)
    assert 0 < bound.usd < sum(values)
    for name in DEFAULT:
        result = simulate(requests, fleet, make_policy(name), SimSettings(slow_gpu=slow))
        assert charged_usd(result, values) >= bound.usd, name
        if all(t <= 1.0 for t in result.ttft_s):
            assert result.paid_usd >= bound.usd, name


def test_without_gpus_the_bound_is_all_paid(conv: list[TraceRequest]) -> None:
    requests = conv[:500]
    fleet = load_fleet(FLEET, "vs-gpt-4o-mini").with_gpus(0)
    bound = paid_lower_bound(requests, fleet, 1.0)
    assert bound.usd == pytest.approx(sum(request_values(requests, fleet)))


def test_a_prompt_too_long_for_the_slo_is_never_local() -> None:
    fleet = load_fleet(FLEET, "vs-hosted-qwen").with_gpus(4)
    requests = [TraceRequest(0.0, 30_000, 10), TraceRequest(50.0, 100, 10)]
    bound = paid_lower_bound(requests, fleet, 1.0)
    assert bound.never_local == 1
    assert bound.usd == pytest.approx(fleet.cheapest_paid(30_000, 10))
