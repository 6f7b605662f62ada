"""The built-in policies and ``REGISTRY``, their factories by name (params checked).

``budget`` and ``weighted`` live in their own modules; the rest are here. Each policy orders
candidates (``filters``) into tiers and ``plan`` turns them
into a ``Decision`` (the plan rule and the refusals are documented there). "Meets the SLO"
means predicted TTFT <= the request's TTFT SLO (else the policy's ``slo_ttft_s`` param) and
predicted total <= the request's total SLO, when set; candidates missing it always come
last. Ties keep the alias's configured order.

- ``ordered``: the configured order (today's behaviour); the SLO is not considered.
- ``cost``: meeting the SLO by (billed cost, TTFT): a local worker costs 0 while available;
  then the rest by TTFT (``best_effort`` when none meets it).
- ``latency``: meeting the SLO by predicted latency (TTFT when streaming, else total), then
  cost; then the rest by the same key (``best_effort`` when none meets it).
- ``spillover``: local workers predicted within ``headroom`` (0.8) x the SLO, least loaded
  first (then TTFT); then paid ones meeting the SLO, cheapest first (then TTFT); then local
  ones within the SLO but not the headroom; then the rest by TTFT (``best_effort``).
  ``slo_ttft_s`` defaults to 1.0 s.
- ``budget``: when budget left / budget total < ``threshold`` (0.2), ``budget_low``: meeting
  the SLO by (cost, load, TTFT), so free local workers first, then the rest by (cost, TTFT);
  otherwise the ``inner`` policy (``spillover``) with ``inner_params`` decides.
- ``weighted``: a canary split: the primary drawn with ``features.draw`` in proportion to the
  ``weights`` param (deployment -> weight; unnamed ones 0; a group's weight shared by its
  members) or else ``Candidate.weight``; the fallbacks are the rest by weight. The SLO is
  not considered.

Imports: stdlib and ``policies`` modules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from policies import reason
from policies.budget import Budget
from policies.filters import admissible, effective_slo_ttft, partition
from policies.model import Candidate, Decision, Policy, Reason, RequestFeatures
from policies.params import Params
from policies.plan import make_decision, refuse
from policies.scores import decision_scores, load, marginal_cost_usd, predicted_latency_s
from policies.weighted import Weighted

PolicyFactory = Callable[[Mapping[str, object]], Policy]
"""Builds a policy from its params; raises ValueError naming a bad or unknown param."""


def _ttft(candidate: Candidate) -> float:
    return candidate.predicted_ttft_s


class Ordered:
    """The alias's configured order, available deployments only."""

    def __init__(self) -> None:
        self.name = "ordered"
        self.predicts = False

    def decide(self, features: RequestFeatures, candidates: Sequence[Candidate]) -> Decision:
        """The admissible candidates in their configured order."""
        scores = decision_scores(features, candidates, features.slo_ttft_s, features.slo_total_s)
        plan = [c for c in candidates if admissible(features, c)]
        if not plan:
            return refuse(self.name, features, candidates, scores)
        detail = reason.configured(plan[0])
        return make_decision(self.name, (plan,), "configured_order", detail, scores)


class Cost:
    """The cheapest expected cost that meets the SLO."""

    def __init__(self, slo_ttft_s: float | None = None) -> None:
        self.name = "cost"
        self.predicts = True
        self.slo_ttft_s = slo_ttft_s

    def decide(self, features: RequestFeatures, candidates: Sequence[Candidate]) -> Decision:
        """Meeting the SLO by (cost, TTFT), then the rest by TTFT."""

        def cheapest(c: Candidate) -> tuple[float, float]:
            return marginal_cost_usd(features, c), c.predicted_ttft_s

        def describe(first: Candidate, slo: str) -> str:
            return reason.cheapest(first, marginal_cost_usd(features, first), slo)

        return _ranked(
            self.name,
            features,
            candidates,
            self.slo_ttft_s,
            (cheapest, _ttft),
            "cheapest_meeting_slo",
            describe,
        )


class Latency:
    """The lowest predicted latency: TTFT when streaming, else the total."""

    def __init__(self, slo_ttft_s: float | None = None) -> None:
        self.name = "latency"
        self.predicts = True
        self.slo_ttft_s = slo_ttft_s

    def decide(self, features: RequestFeatures, candidates: Sequence[Candidate]) -> Decision:
        """Meeting the SLO by (latency, cost), then the rest by the same key."""

        def fastest(c: Candidate) -> tuple[float, float]:
            return predicted_latency_s(features, c), marginal_cost_usd(features, c)

        def describe(first: Candidate, slo: str) -> str:
            return reason.fastest(features, first, predicted_latency_s(features, first))

        return _ranked(
            self.name,
            features,
            candidates,
            self.slo_ttft_s,
            (fastest, fastest),
            "fastest",
            describe,
        )


def _ranked(
    name: str,
    features: RequestFeatures,
    candidates: Sequence[Candidate],
    slo_ttft_default: float | None,
    keys: tuple[Callable[[Candidate], tuple[float, ...] | float], ...],
    why: Reason,
    describe: Callable[[Candidate, str], str],
) -> Decision:
    """Candidates meeting the SLO sorted by ``keys[0]`` (reason ``why``), then the ones
    missing it by ``keys[1]`` (``best_effort`` when none meets it)."""
    slo_ttft, slo_total = effective_slo_ttft(features, slo_ttft_default), features.slo_total_s
    scores = decision_scores(features, candidates, slo_ttft, slo_total)
    meeting, missing = partition(features, candidates, slo_ttft, slo_total)
    if not meeting and not missing:
        return refuse(name, features, candidates, scores)
    meeting.sort(key=keys[0])
    missing.sort(key=keys[1])
    slo = reason.slo_text(slo_ttft, slo_total)
    if meeting:
        return make_decision(name, (meeting, missing), why, describe(meeting[0], slo), scores)
    detail = reason.best_effort(missing[0], slo)
    return make_decision(name, (missing,), "best_effort", detail, scores)


class Spillover:
    """Local workers while they meet the SLO with headroom, then the cheapest paid one that
    meets it.

    ``headroom`` (default 0.8) keeps a local worker only while its predicted TTFT is within
    that share of the SLO: a prediction is a mean, and a worker predicted just under the SLO
    misses it about half the time. Measured with the simulator (docs/simulator.md): on the
    Azure conv trace at 4x on one H100, SLO attainment 97.2% without headroom, 99.7% with
    0.8, at lower paid spend. A local worker within the SLO but not the headroom is still
    preferred to anything predicted to miss the SLO.
    """

    def __init__(self, slo_ttft_s: float = 1.0, headroom: float = 0.8) -> None:
        self.name = "spillover"
        self.predicts = True
        self.slo_ttft_s = slo_ttft_s
        self.headroom = headroom

    def decide(self, features: RequestFeatures, candidates: Sequence[Candidate]) -> Decision:
        """Local within headroom by (load, TTFT); paid meeting the SLO by (cost, TTFT); local
        within the SLO by TTFT; the rest by TTFT."""
        slo_ttft, slo_total = effective_slo_ttft(features, self.slo_ttft_s), features.slo_total_s
        scores = decision_scores(features, candidates, slo_ttft, slo_total)
        meeting, missing = partition(features, candidates, slo_ttft, slo_total)
        if not meeting and not missing:
            return refuse(self.name, features, candidates, scores)
        target = math.inf if slo_ttft is None else slo_ttft * self.headroom
        local = sorted(
            (c for c in meeting if c.local and c.predicted_ttft_s <= target),
            key=lambda c: (load(c), c.predicted_ttft_s),
        )
        tight = sorted((c for c in meeting if c.local and c not in local), key=_ttft)
        paid = sorted(
            (c for c in meeting if not c.local),
            key=lambda c: (c.expected_cost_usd(features), c.predicted_ttft_s),
        )
        missing.sort(key=_ttft)
        tiers, slo = (local, paid, tight, missing), reason.slo_text(slo_ttft, slo_total)
        if local or (tight and not paid):
            first = local[0] if local else tight[0]
            detail = reason.local_under_slo(first, slo)
            return make_decision(self.name, tiers, "local_under_slo", detail, scores)
        if not paid:
            detail = reason.best_effort(missing[0], slo)
            return make_decision(self.name, tiers, "best_effort", detail, scores)
        if any(c.local for c in candidates):
            spilled = [c for c in (*tight, *missing) if c.local]
            detail = reason.spill_to_paid(spilled, paid[0], slo)
            return make_decision(self.name, tiers, "spill_to_paid", detail, scores)
        detail = reason.cheapest(paid[0], paid[0].expected_cost_usd(features), slo)
        return make_decision(self.name, tiers, "cheapest_meeting_slo", detail, scores)


def _ordered(params: Mapping[str, object]) -> Policy:
    Params("ordered", params).finish()
    return Ordered()


def _cost(params: Mapping[str, object]) -> Policy:
    read = Params("cost", params)
    policy = Cost(read.number("slo_ttft_s", None))
    read.finish()
    return policy


def _latency(params: Mapping[str, object]) -> Policy:
    read = Params("latency", params)
    policy = Latency(read.number("slo_ttft_s", None))
    read.finish()
    return policy


def _spillover(params: Mapping[str, object]) -> Policy:
    read = Params("spillover", params)
    slo_ttft_s = read.number("slo_ttft_s", 1.0) or 1.0
    policy = Spillover(slo_ttft_s, read.number("headroom", 0.8, high=1.0) or 0.8)
    read.finish()
    return policy


def _budget(params: Mapping[str, object]) -> Policy:
    read = Params("budget", params)
    threshold = read.number("threshold", 0.2, high=1.0, zero_ok=True) or 0.0
    slo_ttft_s = read.number("slo_ttft_s", 1.0) or 1.0
    inner = read.choice("inner", "spillover", (n for n in REGISTRY if n != "budget"))
    inner_params = read.mapping("inner_params")
    read.finish()
    return Budget(REGISTRY[inner](inner_params), threshold, slo_ttft_s)


def _weighted(params: Mapping[str, object]) -> Policy:
    read = Params("weighted", params)
    policy = Weighted(read.weights("weights"))
    read.finish()
    return policy


REGISTRY: Mapping[str, PolicyFactory] = MappingProxyType(
    {
        "ordered": _ordered,
        "cost": _cost,
        "latency": _latency,
        "spillover": _spillover,
        "budget": _budget,
        "weighted": _weighted,
    }
)
"""Policy name -> factory; a new policy is a module, an entry here, and its tests."""
