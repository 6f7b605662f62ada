"""Privacy pinning: candidates are filtered by the request's data class before every policy."""

from __future__ import annotations

from dataclasses import replace

import pytest

from policies.compose import build_policy, known_policies
from policies.model import Candidate, DataClass, RequestFeatures
from policies.plan import REFUSALS
from policies.privacy import Pinned, allowed
from tests.unit.policies.fleets import local, paid, request

POLICIES = known_policies()


def _paid(name: str = "openai-gpt-4o-mini", **kwargs: object) -> Candidate:
    return replace(paid(name, **kwargs), data_classes=("public",))  # type: ignore[arg-type]


def _as(features: RequestFeatures, data_class: DataClass) -> RequestFeatures:
    return replace(features, data_class=data_class)


@pytest.mark.parametrize("name", POLICIES)
def test_private_request_plans_only_local_workers_even_when_they_are_slow(name: str) -> None:
    candidates = [local("qwen-a", ttft=5.0), _paid("cheap", ttft=0.1, price=0.01)]
    decision = Pinned(build_policy(name, {})).decide(_as(request(), "private"), candidates)

    assert decision.plan == ("qwen-a",)
    assert decision.detail.startswith("pinned to private: 1 of 2 allowed; ")


@pytest.mark.parametrize("name", POLICIES)
def test_private_request_with_every_allowed_worker_full_is_refused_never_spilled(
    name: str,
) -> None:
    candidates = [
        local("qwen-a", inflight=4, max_concurrency=4),
        local("qwen-b", circuit="open"),
        _paid("paid"),
    ]
    decision = Pinned(build_policy(name, {})).decide(_as(request(), "private"), candidates)

    assert decision.plan == ()
    assert decision.reason == "no_allowed_deployment"
    assert REFUSALS[decision.reason] == (503, "no_allowed_deployment")
    assert decision.detail == (
        "pinned to private: 2 of 3 allowed; none can serve: "
        "qwen-a at max concurrency 4, qwen-b circuit open"
    )


def test_alias_without_any_allowed_deployment_refuses_naming_the_class() -> None:
    decision = Pinned(build_policy("ordered")).decide(_as(request(), "internal"), [_paid()])

    assert decision.reason == "no_allowed_deployment"
    assert decision.detail == (
        "pinned to internal: 0 of 1 allowed; no deployment of this alias may receive internal data"
    )


def test_internal_request_may_go_to_a_provider_that_accepts_internal() -> None:
    dpa = replace(paid("dpa"), data_classes=("public", "internal"))
    candidates = [local("qwen-a", inflight=4, max_concurrency=4), _paid("plain"), dpa]
    decision = Pinned(build_policy("ordered")).decide(_as(request(), "internal"), candidates)

    assert decision.plan == ("dpa",)


@pytest.mark.parametrize("name", POLICIES)
def test_public_request_with_every_candidate_allowed_is_the_inner_decision_unchanged(
    name: str,
) -> None:
    candidates = [local("qwen-a", inflight=4, max_concurrency=4), _paid("paid")]
    inner = build_policy(name, {})

    assert Pinned(inner).decide(request(), candidates) == inner.decide(request(), candidates)


def test_public_request_skips_a_deployment_that_takes_only_private_data() -> None:
    vault = replace(local("vault"), data_classes=("private",))
    decision = Pinned(build_policy("ordered")).decide(request(), [vault, _paid("paid")])

    assert decision.plan == ("paid",)
    assert decision.detail.startswith("pinned to public: 1 of 2 allowed")


def test_context_window_refusal_among_allowed_candidates_keeps_its_reason() -> None:
    candidates = [local("qwen-a", context_window=100), _paid("paid")]
    decision = Pinned(build_policy("ordered")).decide(_as(request(), "private"), candidates)

    assert decision.reason == "exceeds_context_window"


def test_allowed_keeps_the_configured_order() -> None:
    candidates = [_paid("p1"), local("l1"), _paid("p2"), local("l2")]

    assert [c.name for c in allowed(_as(request(), "private"), candidates)] == ["l1", "l2"]
    assert allowed(request(), candidates) == candidates


def test_policy_name_and_predicts_are_the_inner_policys() -> None:
    inner = build_policy("spillover")
    pinned = Pinned(inner)

    assert (pinned.name, pinned.predicts) == (inner.name, inner.predicts)
