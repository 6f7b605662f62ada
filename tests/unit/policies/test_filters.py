"""Candidate filters: hard constraints, the SLO, and the admissible split."""

from __future__ import annotations

import pytest

from policies import filters
from policies.model import Candidate, RequestFeatures
from tests.unit.policies.fleets import local, paid, request


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        pytest.param(local(), True, id="closed-and-idle"),
        pytest.param(local(circuit="half_open"), True, id="half-open-lets-a-probe-through"),
        pytest.param(local(circuit="open"), False, id="circuit-open"),
        pytest.param(local(inflight=63, max_concurrency=64), True, id="one-slot-left"),
        pytest.param(local(inflight=64, max_concurrency=64), False, id="at-max-concurrency"),
        pytest.param(local(inflight=500, max_concurrency=None), True, id="no-limit"),
    ],
)
def test_available_excludes_open_circuits_and_full_deployments(
    candidate: Candidate, expected: bool
) -> None:
    assert filters.available(candidate) is expected


@pytest.mark.parametrize(
    ("window", "prompt", "output", "expected"),
    [
        pytest.param(None, 10**6, 10**6, True, id="unknown-window-fits"),
        pytest.param(4096, 3896, 200, True, id="exact-fit"),
        pytest.param(4096, 3897, 200, False, id="one-token-over"),
        pytest.param(4096, 4000, 0, True, id="no-output-expected"),
    ],
)
def test_fits_context_counts_prompt_and_expected_output(
    window: int | None, prompt: int, output: int, expected: bool
) -> None:
    assert filters.fits_context(request(prompt, output), local(context_window=window)) is expected


@pytest.mark.parametrize(
    ("candidate", "max_cost", "expected"),
    [
        pytest.param(paid(), None, True, id="no-limit"),
        pytest.param(paid(), 0.00027, True, id="at-the-limit"),
        pytest.param(paid(), 0.00026, False, id="over-the-limit"),
        pytest.param(local(), 0.0, True, id="local-costs-nothing"),
    ],
)
def test_within_max_cost_compares_the_expected_cost(
    candidate: Candidate, max_cost: float | None, expected: bool
) -> None:
    # 1000 x 0.15e-6 + 200 x 0.6e-6 = 0.00027 USD
    features = request(1000, 200, max_cost_usd=max_cost)
    assert filters.within_max_cost(features, candidate) is expected


@pytest.mark.parametrize(
    ("ttft", "slo_ttft", "slo_total", "expected"),
    [
        pytest.param(0.9, 1.0, None, True, id="ttft-under"),
        pytest.param(1.0, 1.0, None, True, id="ttft-equal"),
        pytest.param(1.1, 1.0, None, False, id="ttft-over"),
        pytest.param(5.0, None, None, True, id="no-slo"),
        # total = ttft + 199 x 0.01 s = ttft + 1.99 s
        pytest.param(0.5, None, 2.5, True, id="total-under"),
        pytest.param(0.6, 1.0, 2.5, False, id="ttft-meets-total-misses"),
    ],
)
def test_meets_slo_checks_ttft_and_total_when_set(
    ttft: float, slo_ttft: float | None, slo_total: float | None, expected: bool
) -> None:
    assert filters.meets_slo(request(), local(ttft=ttft), slo_ttft, slo_total) is expected


@pytest.mark.parametrize(
    ("features", "default", "expected"),
    [
        pytest.param(request(slo_ttft_s=0.5), 1.0, 0.5, id="request-wins"),
        pytest.param(request(slo_ttft_s=None), 1.0, 1.0, id="policy-default"),
        pytest.param(request(slo_ttft_s=None), None, None, id="none-at-all"),
    ],
)
def test_effective_slo_prefers_the_request_over_the_policy_default(
    features: RequestFeatures, default: float | None, expected: float | None
) -> None:
    assert filters.effective_slo_ttft(features, default) == expected


def test_partition_splits_admissible_candidates_by_slo_in_configured_order() -> None:
    candidates = [
        local("slow", ttft=2.0),
        local("dead", circuit="open"),
        paid("p1", ttft=0.5),
        local("fast", ttft=0.1),
        paid("p2", ttft=3.0),
    ]
    meeting, missing = filters.partition(request(), candidates, 1.0, None)
    assert [c.name for c in meeting] == ["p1", "fast"]
    assert [c.name for c in missing] == ["slow", "p2"]


@pytest.mark.parametrize(
    ("candidate", "features", "expected"),
    [
        pytest.param(local(), request(), "", id="admissible"),
        pytest.param(local(circuit="open"), request(), "circuit open", id="circuit"),
        pytest.param(
            local(inflight=2, max_concurrency=2), request(), "at max concurrency 2", id="full"
        ),
        pytest.param(
            local(context_window=1000), request(), "context window 1000 too small", id="ctx"
        ),
        pytest.param(
            paid(), request(max_cost_usd=0.0001), "expected $0.000270 > max_cost_usd", id="cost"
        ),
    ],
)
def test_exclusion_names_the_constraint_that_failed(
    candidate: Candidate, features: RequestFeatures, expected: str
) -> None:
    assert filters.exclusion(features, candidate) == expected
