"""The discrete-event model: analytical TTFTs on a tiny trace, decode timing, baselines,
and the online correction on a slower GPU."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from loadtests.sim.baselines import baseline
from loadtests.sim.fleet import Fleet, load_fleet
from loadtests.sim.simulation import SimSettings, Simulation, simulate
from loadtests.sim.trace import TraceRequest, compressed, read_trace, sliced
from loadtests.sim.worker import WorkerState
from policies.worker_latency import H100, decode_step_s

ROOT = Path(__file__).resolve().parents[3]
CONV = ROOT / ".." / "shared" / "data" / "traces" / "azure_llm_2023_conv.csv"


def _fleet(gpus: int = 1) -> Fleet:
    return load_fleet(ROOT / "loadtests" / "sim" / "fleet.yaml", "vs-gpt-4o-mini").with_gpus(gpus)


def test_ttft_is_the_prefill_queue_plus_one_decode_step() -> None:
    # Two 2,500-token prompts at t=0 and one at t=1 s on one idle H100 (25k prompt tokens/s).
    trace = [TraceRequest(0.0, 2500, 1), TraceRequest(0.0, 2500, 1), TraceRequest(1.0, 2500, 1)]
    result = simulate(trace, _fleet(), baseline("all-local"))
    first = 0.1 + decode_step_s(H100, 1, 2500)
    second = 0.2 + decode_step_s(H100, 2, 2500)  # behind the first prompt, batch of two
    assert result.ttft_s == pytest.approx([first, second, first])
    assert result.paid_usd == 0


def test_a_sequence_decodes_one_token_per_step() -> None:
    worker = WorkerState(H100)
    ((first_at, rid),) = worker.submit(0.0, 0, 200)
    assert first_at == pytest.approx(200 / 25_000 + decode_step_s(H100, 1, 200))
    worker.first_token(first_at, rid, 200, 101)
    finish = worker.next_finish_s(first_at)
    assert finish == pytest.approx(first_at + 100 * decode_step_s(H100, 1, 300))
    done, _ = worker.wake(finish or 0.0)
    assert done == [0] and worker.running == 0


def test_admission_waits_for_a_free_slot() -> None:
    worker = WorkerState(dataclasses.replace(H100, max_num_seqs=1))
    assert len(worker.submit(0.0, 0, 100)) == 1
    assert worker.submit(0.0, 1, 100) == []  # waits: one sequence at most
    assert len(worker.waiting) == 1


@pytest.fixture(scope="module")
def conv_slice() -> list[TraceRequest]:
    return sliced(compressed(read_trace(CONV), 4.0), 0.0, 120.0)


@pytest.mark.parametrize(("policy", "local_share"), [("all-local", 1.0), ("all-paid", 0.0)])
def test_baselines_serve_where_they_say(
    conv_slice: list[TraceRequest], policy: str, local_share: float
) -> None:
    result = simulate(conv_slice, _fleet(2), baseline(policy))
    local = sum(1 for w in result.served_by if result.fleet.order[w].startswith("qwen"))
    assert local / len(conv_slice) == local_share


def test_cost_only_sends_everything_to_the_first_local_worker(
    conv_slice: list[TraceRequest],
) -> None:
    result = simulate(conv_slice, _fleet(2), baseline("cost-only"))
    assert set(result.served_by) == {0}


def test_round_robin_takes_turns(conv_slice: list[TraceRequest]) -> None:
    result = simulate(conv_slice[:9], _fleet(2), baseline("round-robin"))
    assert result.served_by == [0, 1, 2] * 3


def test_correction_learns_a_slower_gpu(conv_slice: list[TraceRequest]) -> None:
    sim = Simulation(conv_slice, _fleet(1), baseline("all-local"), SimSettings(slow_gpu=1.25))
    sim.run()
    assert sim.stats["qwen-7b-h100-0"].correction.factor > 1.1
