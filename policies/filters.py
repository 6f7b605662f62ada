"""Candidate filters: pure predicates on one request and one candidate.

Two kinds, and the difference decides what a plan may contain (see ``plan.py``):

- hard constraints (``admissible``): the candidate is available (circuit not open, under its
  ``max_concurrency``), the request fits its context window, and its expected cost is within
  the request's ``max_cost_usd``. A candidate failing one is never in a plan.
- the SLO (``meets_slo``): predicted TTFT and total latency within the request's (or the
  policy's default) SLO. Missing it only moves a candidate to the back of the plan.

A ``half_open`` circuit counts as available: the gateway's breaker shows a deployment as
half-open only while it lets a probe through. Imports: stdlib and ``policies.model``.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.model import Candidate, RequestFeatures


def available(candidate: Candidate) -> bool:
    """Circuit not open and under its concurrency limit."""
    return candidate.available


def fits_context(features: RequestFeatures, candidate: Candidate) -> bool:
    """Prompt plus expected output within the context window (True when it is unknown)."""
    window = candidate.context_window
    return window is None or features.prompt_tokens + features.expected_output_tokens <= window


def within_max_cost(features: RequestFeatures, candidate: Candidate) -> bool:
    """Expected cost within the request's ``max_cost_usd`` (True when none is set)."""
    limit = features.max_cost_usd
    return limit is None or candidate.local or candidate.expected_cost_usd(features) <= limit


def admissible(features: RequestFeatures, candidate: Candidate) -> bool:
    """Passes every hard constraint: may appear in a plan."""
    return (
        candidate.available
        and fits_context(features, candidate)
        and within_max_cost(features, candidate)
    )


def effective_slo_ttft(features: RequestFeatures, default_s: float | None) -> float | None:
    """The request's TTFT SLO, else the policy's default (None: no TTFT SLO)."""
    return default_s if features.slo_ttft_s is None else features.slo_ttft_s


def meets_slo(
    features: RequestFeatures,
    candidate: Candidate,
    slo_ttft_s: float | None,
    slo_total_s: float | None,
) -> bool:
    """Predicted TTFT <= ``slo_ttft_s`` and predicted total <= ``slo_total_s``, when set."""
    if slo_ttft_s is not None and candidate.predicted_ttft_s > slo_ttft_s:
        return False
    return slo_total_s is None or candidate.predicted_total_s(features) <= slo_total_s


def partition(
    features: RequestFeatures,
    candidates: Sequence[Candidate],
    slo_ttft_s: float | None,
    slo_total_s: float | None,
) -> tuple[list[Candidate], list[Candidate]]:
    """The admissible candidates split into (meeting the SLO, missing it), in the given order."""
    meeting: list[Candidate] = []
    missing: list[Candidate] = []
    for candidate in candidates:
        if admissible(features, candidate):
            if meets_slo(features, candidate, slo_ttft_s, slo_total_s):
                meeting.append(candidate)
            else:
                missing.append(candidate)
    return meeting, missing


def exclusion(features: RequestFeatures, candidate: Candidate) -> str:
    """Why a candidate fails a hard constraint, in a few words ("" when it passes)."""
    if candidate.circuit == "open":
        return "circuit open"
    if not candidate.available:
        return f"at max concurrency {candidate.max_concurrency}"
    if not fits_context(features, candidate):
        return f"context window {candidate.context_window} too small"
    if not within_max_cost(features, candidate):
        return f"expected ${candidate.expected_cost_usd(features):.6f} > max_cost_usd"
    return ""
