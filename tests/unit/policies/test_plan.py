"""The plan rule (admissible only, SLO misses last) and the refusal rule, for every policy."""

from __future__ import annotations

import pytest

from policies.compose import build_policy, known_policies
from policies.model import REASONS, Candidate, RequestFeatures
from policies.plan import REFUSALS, is_refusal
from tests.unit.policies.fleets import local, paid, request

POLICIES = known_policies()


@pytest.mark.parametrize("name", POLICIES)
def test_circuit_open_candidate_never_in_plan(name: str) -> None:
    candidates = [
        local("dead-local", ttft=0.01, circuit="open", weight=100),
        paid("dead-paid", ttft=0.01, price=0.01, circuit="open", weight=100),
        local("alive", ttft=3.0),
        paid("slow-paid", ttft=4.0),
    ]
    for draw in (0.0, 0.5, 0.99):
        decision = build_policy(name, {}).decide(request(draw=draw), candidates)
        assert set(decision.plan) == {"alive", "slow-paid"}


@pytest.mark.parametrize(
    ("features", "candidates", "reason", "status"),
    [
        pytest.param(
            request(),
            [local(circuit="open"), paid(circuit="open")],
            "no_available_deployment",
            503,
            id="all-circuits-open",
        ),
        pytest.param(
            request(),
            [local(inflight=64, max_concurrency=64)],
            "no_available_deployment",
            503,
            id="all-full",
        ),
        pytest.param(request(), [], "no_available_deployment", 503, id="no-candidates"),
        pytest.param(
            request(prompt=200_000),
            [local(), paid()],
            "exceeds_context_window",
            400,
            id="too-long-everywhere",
        ),
        pytest.param(
            request(prompt=50_000),
            [local(), paid(circuit="open")],
            "no_available_deployment",
            503,
            id="the-one-that-fits-is-down",
        ),
        pytest.param(
            request(max_cost_usd=1e-6),
            [local(context_window=100), paid()],
            "exceeds_max_cost",
            400,
            id="the-one-that-fits-is-too-dear",
        ),
        pytest.param(
            request(max_cost_usd=1e-3),
            [local(circuit="open"), paid(price=100)],
            "no_available_deployment",
            503,
            id="the-cheap-one-is-down",
        ),
    ],
)
@pytest.mark.parametrize("name", POLICIES)
def test_a_policy_refuses_only_when_no_candidate_is_admissible_and_says_why(
    name: str,
    features: RequestFeatures,
    candidates: list[Candidate],
    reason: str,
    status: int,
) -> None:
    decision = build_policy(name, {}).decide(features, candidates)
    assert is_refusal(decision)
    assert decision.reason == reason
    assert REFUSALS[decision.reason][0] == status
    assert decision.detail


@pytest.mark.parametrize("name", POLICIES)
def test_a_single_admissible_candidate_is_the_only_candidate(name: str) -> None:
    candidates = [local("a", ttft=5.0), paid("b", circuit="open")]
    decision = build_policy(name, {}).decide(request(), candidates)
    assert (decision.plan, decision.reason) == (("a",), "only_candidate")


@pytest.mark.parametrize("name", ["cost", "latency", "spillover"])
def test_candidates_missing_the_slo_are_last_resort_fallbacks_fastest_first(name: str) -> None:
    candidates = [local("slow", ttft=3.0), paid("slower", ttft=4.0), paid("ok", ttft=0.5)]
    decision = build_policy(name, {}).decide(request(stream=True), candidates)
    assert decision.plan == ("ok", "slow", "slower")


@pytest.mark.parametrize("name", POLICIES)
def test_best_effort_always_comes_with_a_plan(name: str) -> None:
    decision = build_policy(name, {}).decide(request(), [local(ttft=3.0), paid(ttft=4.0)])
    assert decision.plan
    assert not is_refusal(decision)


def test_every_refusal_reason_is_in_the_reason_vocabulary() -> None:
    assert set(REFUSALS) <= set(REASONS)
    assert "best_effort" not in REFUSALS
