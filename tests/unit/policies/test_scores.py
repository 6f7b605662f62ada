"""Scores: billed cost, predicted latency, load, and the ``Score`` records explain shows."""

from __future__ import annotations

import pytest

from policies import scores
from policies.model import Candidate, RequestFeatures
from tests.unit.policies.fleets import local, paid, request


@pytest.mark.parametrize(
    ("candidate", "expected_usd"),
    [
        pytest.param(local(), 0.0, id="local-is-free-while-available"),
        pytest.param(paid(), 1000 * 0.15e-6 + 200 * 0.6e-6, id="paid-bills-in-and-out"),
        pytest.param(paid(price=10.0), 10 * (1000 * 0.15e-6 + 200 * 0.6e-6), id="ten-times"),
    ],
)
def test_marginal_cost_is_zero_on_local_workers_and_billed_on_paid_ones(
    candidate: Candidate, expected_usd: float
) -> None:
    assert scores.marginal_cost_usd(request(1000, 200), candidate) == pytest.approx(expected_usd)


def test_shadow_cost_of_a_local_worker_is_its_gpu_cost_of_the_output() -> None:
    assert scores.shadow_cost_usd(request(1000, 200), local()) == pytest.approx(200 * 4e-8)


@pytest.mark.parametrize(
    ("features", "expected_s"),
    [
        pytest.param(request(output=101, stream=True), 0.2, id="streaming-waits-for-ttft"),
        pytest.param(request(output=101), 0.2 + 100 * 0.01, id="non-streaming-waits-for-all"),
        pytest.param(request(output=0), 0.2, id="no-output"),
    ],
)
def test_predicted_latency_is_ttft_when_streaming_else_the_total(
    features: RequestFeatures, expected_s: float
) -> None:
    assert scores.predicted_latency_s(features, local(ttft=0.2)) == pytest.approx(expected_s)


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        pytest.param(local(inflight=3), 3, id="only-in-flight-known"),
        pytest.param(local(inflight=3, running=10, waiting=4), 14, id="scrape-sees-more"),
        pytest.param(local(inflight=20, running=10, waiting=4), 20, id="in-flight-is-fresher"),
        pytest.param(local(running=7), 7, id="waiting-unknown"),
    ],
)
def test_load_is_the_larger_of_in_flight_and_scraped_running_plus_waiting(
    candidate: Candidate, expected: int
) -> None:
    assert scores.load(candidate) == expected


@pytest.mark.parametrize(
    ("explain", "count"), [pytest.param(True, 3, id="explain"), pytest.param(False, 0, id="hot")]
)
def test_decision_scores_are_computed_only_when_explain_is_asked(explain: bool, count: int) -> None:
    candidates = [local(), paid(), local("b", circuit="open")]
    assert len(scores.decision_scores(request(explain=explain), candidates, 1.0, None)) == count


def test_a_score_says_why_a_candidate_is_ineligible_and_what_a_local_one_would_cost() -> None:
    features = request(1000, 200)
    dead, busy, api = scores.score_all(
        features,
        [local("dead", circuit="open"), local("busy", ttft=2.0, inflight=5), paid()],
        1.0,
        None,
    )
    assert (dead.eligible, dead.note) == (False, "circuit open")
    assert (busy.eligible, busy.meets_slo) == (True, False)
    assert busy.note == "local, load 5, shadow $0.000008"
    assert api.expected_cost_usd == pytest.approx(0.00027)
    assert api.predicted_total_s == pytest.approx(0.5 + 199 * 0.012)
