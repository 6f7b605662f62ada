"""The built-in policies, table-driven: who is primary, the fallbacks, and the reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from policies.compose import build_policy, known_policies
from policies.model import Candidate, Decision, RequestFeatures
from policies.predict import Correction, WorkerLoad, predict_ttft_s
from policies.worker_latency import H100
from tests.unit.policies.fleets import local, paid, request


def decide(
    name: str, features: RequestFeatures, candidates: list[Candidate], **params: object
) -> Decision:
    return build_policy(name, params).decide(features, candidates)


def test_ordered_keeps_the_configured_order_and_skips_unavailable_deployments() -> None:
    candidates = [paid("p", ttft=3.0), local("dead", circuit="open"), local("l")]
    decision = decide("ordered", request(), candidates)
    assert (decision.plan, decision.reason) == (("p", "l"), "configured_order")


@pytest.mark.parametrize(
    ("candidates", "plan"),
    [
        pytest.param(
            [paid("cheap", price=0.5), local("qwen", ttft=0.4)],
            ("qwen", "cheap"),
            id="local-costs-nothing",
        ),
        pytest.param(
            [local("qwen-slow", ttft=0.9), local("qwen-fast", ttft=0.3)],
            ("qwen-fast", "qwen-slow"),
            id="cost-tie-goes-to-lower-ttft",
        ),
        pytest.param(
            [local("qwen", ttft=0.3, inflight=64), paid("dear", price=3), paid("cheap")],
            ("cheap", "dear"),
            id="local-at-capacity-is-not-free",
        ),
    ],
)
def test_cost_prefers_local_under_capacity(candidates: list[Candidate], plan: tuple[str]) -> None:
    decision = decide("cost", request(), candidates)
    assert decision.plan == plan
    assert decision.reason == "cheapest_meeting_slo"


def test_cost_skips_the_cheapest_when_it_breaks_the_slo() -> None:
    candidates = [local("qwen", ttft=1.5), paid("dear", price=3), paid("cheap", ttft=2.0)]
    decision = decide("cost", request(), candidates)
    assert decision.plan == ("dear", "qwen", "cheap")


@pytest.mark.parametrize(
    ("stream", "primary"),
    [
        pytest.param(True, "quick-start", id="stream-by-ttft"),
        pytest.param(False, "fast-decode", id="total"),
    ],
)
def test_latency_picks_the_lowest_total_or_the_lowest_ttft_when_streaming(
    stream: bool, primary: str
) -> None:
    quick_start = Candidate("quick-start", local=True, predicted_ttft_s=0.1, tpot_s=0.05)
    fast_decode = Candidate("fast-decode", local=False, predicted_ttft_s=0.3, tpot_s=0.01)
    decision = decide("latency", request(output=200, stream=stream), [quick_start, fast_decode])
    assert decision.plan[0] == primary
    assert decision.reason == "fastest"


def _qwen(tokens_ahead: float, name: str = "qwen-7b-a") -> Candidate:
    """A local H100 worker whose predicted TTFT comes from its prefill queue."""
    load = WorkerLoad(
        running=40, waiting=int(tokens_ahead // 1000), prompt_tokens_ahead=tokens_ahead
    )
    ttft = predict_ttft_s(H100, load, 1000, Correction())
    return local(name, ttft=ttft, running=load.running, waiting=load.waiting)


PAID = [paid("anthropic-haiku", ttft=0.6, price=5.0), paid("openai-gpt-4o-mini", ttft=0.5)]


@pytest.mark.parametrize(
    ("tokens_ahead", "primary", "reason"),
    [
        pytest.param(0, "qwen-7b-a", "local_under_slo", id="idle"),
        pytest.param(15_000, "qwen-7b-a", "local_under_slo", id="queue-within-headroom"),
        pytest.param(20_000, "openai-gpt-4o-mini", "spill_to_paid", id="queue-past-headroom"),
        pytest.param(30_000, "openai-gpt-4o-mini", "spill_to_paid", id="queue-breaks-slo"),
        pytest.param(80_000, "openai-gpt-4o-mini", "spill_to_paid", id="saturated"),
    ],
)
def test_spillover_sends_overflow_to_paid_when_ttft_breaks_slo(
    tokens_ahead: float, primary: str, reason: str
) -> None:
    decision = decide("spillover", request(), [_qwen(tokens_ahead), *PAID])
    assert (decision.plan[0], decision.reason) == (primary, reason)


def test_spillover_returns_to_local_when_queue_drains() -> None:
    queue = [60_000, 30_000, 10_000, 0]
    primaries = [decide("spillover", request(), [_qwen(q), *PAID]).plan[0] for q in queue]
    assert primaries == ["openai-gpt-4o-mini", "openai-gpt-4o-mini", "qwen-7b-a", "qwen-7b-a"]


def test_spillover_explains_the_spill_with_the_local_prediction_and_the_paid_choice() -> None:
    decision = decide("spillover", request(), [local("qwen-7b-a", ttft=1.4), *PAID])
    assert decision.detail == (
        "local workers predicted >= 1.40s > SLO 1.00s; cheapest paid meeting it: openai-gpt-4o-mini"
    )
    assert decision.plan == ("openai-gpt-4o-mini", "anthropic-haiku", "qwen-7b-a")


def test_spillover_fills_the_least_loaded_local_worker_first() -> None:
    candidates = [local("a", ttft=0.3, inflight=9), local("b", ttft=0.5, inflight=2), *PAID]
    decision = decide("spillover", request(), candidates)
    assert decision.plan[:2] == ("b", "a")
    assert decision.detail == "b predicted TTFT 0.50s <= SLO 1.00s"


def test_spillover_picks_best_effort_when_nothing_meets_slo() -> None:
    candidates = [local("qwen", ttft=2.5), paid("p1", ttft=1.8), paid("p2", ttft=1.2, price=9)]
    decision = decide("spillover", request(), candidates)
    assert (decision.plan, decision.reason) == (("p2", "p1", "qwen"), "best_effort")


@pytest.mark.parametrize(
    ("params", "ttft", "primary"),
    [
        pytest.param({}, 0.7, "qwen", id="default-slo-1s-met-with-headroom"),
        pytest.param({}, 0.9, "openai-gpt-4o-mini", id="default-slo-1s-met-without-headroom"),
        pytest.param({}, 1.1, "openai-gpt-4o-mini", id="default-slo-1s-missed"),
        pytest.param({"slo_ttft_s": 2.0}, 1.1, "qwen", id="configured-slo"),
        pytest.param({"headroom": 1.0}, 0.9, "qwen", id="no-headroom"),
    ],
)
def test_spillover_uses_its_default_slo_when_the_request_sets_none(
    params: dict[str, object], ttft: float, primary: str
) -> None:
    candidates = [local("qwen", ttft=ttft), *PAID]
    assert decide("spillover", request(slo_ttft_s=None), candidates, **params).plan[0] == primary


def test_spillover_keeps_a_local_worker_past_headroom_when_no_paid_one_meets_the_slo() -> None:
    candidates = [local("qwen", ttft=0.9), paid("slow-paid", ttft=1.5)]
    decision = decide("spillover", request(), candidates)
    assert (decision.plan, decision.reason) == (("qwen", "slow-paid"), "local_under_slo")


def test_spillover_without_local_deployments_is_plain_cheapest_meeting_slo() -> None:
    assert decide("spillover", request(), PAID).reason == "cheapest_meeting_slo"


@pytest.mark.parametrize(
    ("left", "total", "reason", "primary"),
    [
        pytest.param(50.0, 100.0, "fastest", "fast-dear", id="healthy-delegates"),
        pytest.param(19.0, 100.0, "budget_low", "cheap", id="low-prefers-cheaper"),
        pytest.param(0.0, 100.0, "budget_low", "cheap", id="spent"),
        pytest.param(5.0, None, "fastest", "fast-dear", id="total-unknown"),
    ],
)
def test_budget_low_prefers_cheaper(
    left: float, total: float | None, reason: str, primary: str
) -> None:
    candidates = [
        local("qwen", ttft=3.0),
        paid("fast-dear", ttft=0.3, price=9),
        paid("cheap", ttft=0.9),
    ]
    decision = decide(
        "budget",
        request(budget_left_usd=left, budget_total_usd=total),
        candidates,
        inner="latency",
        inner_params={"slo_ttft_s": 1.0},
    )
    assert (decision.policy, decision.plan[0], decision.reason) == ("budget", primary, reason)


def test_budget_low_goes_local_when_nothing_meets_the_slo() -> None:
    candidates = [paid("p", ttft=2.0), local("qwen", ttft=3.0)]
    features = request(budget_left_usd=1.0, budget_total_usd=100.0)
    decision = decide("budget", features, candidates)
    assert (decision.plan, decision.reason) == (("qwen", "p"), "budget_low")


def test_weighted_split_follows_weights() -> None:
    candidates = [local("stable", weight=90), local("canary", weight=10), paid("p", weight=0)]
    primaries = Counter(
        decide("weighted", request(draw=i / 1000), candidates).plan[0] for i in range(1000)
    )
    assert primaries == {"stable": 900, "canary": 100}


@pytest.mark.parametrize(
    ("draw", "plan"),
    [
        pytest.param(0.0, ("a", "c", "b", "z"), id="first"),
        pytest.param(0.55, ("c", "a", "b", "z"), id="middle"),
        pytest.param(0.99, ("b", "a", "c", "z"), id="last"),
        pytest.param(1.0, ("b", "a", "c", "z"), id="draw-of-one-still-picks-a-weighted-one"),
    ],
)
def test_weighted_fallbacks_are_the_rest_by_weight(draw: float, plan: tuple[str, ...]) -> None:
    candidates = [local("a"), local("z"), local("c"), local("b"), local("dead", circuit="open")]
    weights = {"a": 5, "c": 4, "b": 1, "dead": 90}
    decision = decide("weighted", request(draw=draw), candidates, weights=weights)
    assert (decision.plan, decision.reason) == (plan, "weighted_draw")


@pytest.mark.parametrize("name", known_policies())
def test_explain_does_not_change_the_decision(name: str) -> None:
    candidates = [local("a", ttft=0.4, inflight=3), local("b", ttft=1.3), *PAID]
    for features in (request(), request(slo_ttft_s=0.45), request(slo_ttft_s=0.1)):
        hot = decide(name, replace(features, explain=False), candidates)
        shown = decide(name, features, candidates)
        assert (hot.plan, hot.reason, hot.detail) == (shown.plan, shown.reason, shown.detail)
        assert hot.scores == ()
        assert [s.name for s in shown.scores] == [c.name for c in candidates]
