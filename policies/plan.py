"""Turning a policy's ordering into a ``Decision``: the plan rule and the refusal rule.

The plan rule (every built-in policy follows it):

1. Only admissible candidates are in a plan (``filters.admissible``: available, i.e. circuit
   not open and under ``max_concurrency``; fits the context window; within ``max_cost_usd``).
   A circuit-open deployment is never in a plan, not even as the last fallback.
2. The policy hands over tiers, best first; the plan is their concatenation. Built-in
   policies put the candidates predicted to meet the SLO first, in the policy's order, then
   the ones predicted to miss it as last-resort fallbacks (a slow answer beats an error),
   ordered by predicted TTFT (cost for ``budget`` when it bites). Ties keep the alias's
   configured order (sorts are stable).
3. When exactly one candidate is admissible the reason is ``only_candidate``.

The refusal rule: a plan is empty only when no candidate is admissible; then the reason says
why and ``REFUSALS`` gives the HTTP status and OpenAI-style error code the gateway answers
with (``best_effort`` is never a refusal: it always has a plan). Precedence, so that a
request that can never be served gets a 400 and one that can later gets a 503:

- ``exceeds_context_window`` (400): no deployment's context window holds prompt + output;
- ``exceeds_max_cost`` (400): every deployment that fits costs more than ``max_cost_usd``;
- ``no_available_deployment`` (503): one would fit, but its circuit is open or it is full.

Imports: stdlib and ``policies`` modules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from policies import reason
from policies.filters import fits_context, within_max_cost
from policies.model import Candidate, Decision, Reason, RequestFeatures, Score

REFUSALS: Mapping[Reason, tuple[int, str]] = MappingProxyType(
    {
        "exceeds_context_window": (400, "context_length_exceeded"),
        "exceeds_max_cost": (400, "max_cost_exceeded"),
        "no_available_deployment": (503, "no_available_deployment"),
        "no_allowed_deployment": (503, "no_allowed_deployment"),
    }
)
"""Refusal reason -> (HTTP status, error code) for the gateway's error reply."""


def is_refusal(decision: Decision) -> bool:
    """Whether the decision refuses the request (empty plan; ``decision.reason`` says why)."""
    return not decision.plan


def make_decision(
    policy: str,
    tiers: Sequence[Sequence[Candidate]],
    why: Reason,
    detail: str,
    scores: tuple[Score, ...],
) -> Decision:
    """The decision whose plan is ``tiers`` concatenated (each already ordered, disjoint)."""
    plan = tuple(c.name for tier in tiers for c in tier)
    if len(plan) == 1:
        why = "only_candidate"
    return Decision(policy, plan, why, detail, scores)


def refuse(
    policy: str,
    features: RequestFeatures,
    candidates: Sequence[Candidate],
    scores: tuple[Score, ...],
) -> Decision:
    """The refusal when no candidate is admissible, with the reason chosen by precedence."""
    fitting = [c for c in candidates if fits_context(features, c)]
    if candidates and not fitting:
        largest = max(c.context_window or 0 for c in candidates)
        detail = reason.context_too_long(features, largest)
        return Decision(policy, (), "exceeds_context_window", detail, scores)
    if fitting and not any(within_max_cost(features, c) for c in fitting):
        cheapest = min(c.expected_cost_usd(features) for c in fitting)
        detail = reason.over_max_cost(features, cheapest)
        return Decision(policy, (), "exceeds_max_cost", detail, scores)
    detail = reason.no_available(candidates)
    return Decision(policy, (), "no_available_deployment", detail, scores)
