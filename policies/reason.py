"""The short human-readable ``Decision.detail`` strings, one function per situation.

A detail goes into a response header (``x-gateway-route-reason``) and the explain endpoint,
so it is ASCII, one line and at most ``MAX_DETAIL`` characters (``bounded`` cuts longer ones,
e.g. with very long deployment names). Times in seconds with two decimals, money in USD with
six. The metric label is ``Decision.reason`` (a bounded vocabulary), never the detail.
Imports: stdlib and ``policies.model``.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.model import Candidate, RequestFeatures

MAX_DETAIL = 119
"""Longest detail, in characters (a header value a human reads at a glance)."""


def bounded(text: str) -> str:
    """``text`` cut to ``MAX_DETAIL`` characters, ending in "..." when cut."""
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


def slo_text(slo_ttft_s: float | None, slo_total_s: float | None) -> str:
    """The SLO in force: "SLO 1.00s", "SLO 1.00s/total 8.00s", "SLO total 8.00s" or "no SLO"."""
    if slo_total_s is None:
        return "no SLO" if slo_ttft_s is None else f"SLO {slo_ttft_s:.2f}s"
    if slo_ttft_s is None:
        return f"SLO total {slo_total_s:.2f}s"
    return f"SLO {slo_ttft_s:.2f}s/total {slo_total_s:.2f}s"


def local_under_slo(chosen: Candidate, slo: str) -> str:
    """A local worker is predicted to meet the SLO."""
    return bounded(f"{chosen.name} predicted TTFT {chosen.predicted_ttft_s:.2f}s <= {slo}")


def spill_to_paid(local: Sequence[Candidate], chosen: Candidate, slo: str) -> str:
    """Every usable local worker is predicted to miss the SLO (or none is usable)."""
    if not local:
        return bounded(f"local workers unavailable; cheapest paid meeting {slo}: {chosen.name}")
    fastest = min(c.predicted_ttft_s for c in local)
    return bounded(
        f"local workers predicted >= {fastest:.2f}s > {slo}; "
        f"cheapest paid meeting it: {chosen.name}"
    )


def cheapest(chosen: Candidate, cost_usd: float, slo: str) -> str:
    """The cheapest candidate meeting the SLO."""
    return bounded(f"{chosen.name} cheapest meeting {slo}: ${cost_usd:.6f}")


def fastest(features: RequestFeatures, chosen: Candidate, latency_s: float) -> str:
    """The fastest candidate (by TTFT when streaming, else by total)."""
    what = "TTFT" if features.stream else "total"
    return bounded(f"{chosen.name} fastest: predicted {what} {latency_s:.2f}s")


def best_effort(chosen: Candidate, slo: str) -> str:
    """Nothing meets the SLO: the least bad candidate."""
    return bounded(
        f"nothing meets {slo}; best effort: {chosen.name} "
        f"predicted TTFT {chosen.predicted_ttft_s:.2f}s"
    )


def budget_low(features: RequestFeatures, chosen: Candidate, cost_usd: float) -> str:
    """The budget is low: the cheapest candidate, local first."""
    left = features.budget_left_usd or 0.0
    total = features.budget_total_usd or 1.0
    return bounded(f"budget {100 * left / total:.0f}% left: cheapest {chosen.name} ${cost_usd:.6f}")


def weighted(chosen: Candidate, draw: float, weight: float, total: float) -> str:
    """The weighted (canary) draw."""
    return bounded(f"draw {draw:.2f} -> {chosen.name} (weight {weight:g} of {total:g})")


def configured(chosen: Candidate) -> str:
    """The alias's configured order."""
    return bounded(f"{chosen.name} first available in configured order")


def no_available(candidates: Sequence[Candidate]) -> str:
    """Refusal: no deployment that could take the request is available right now."""
    if not candidates:
        return "no deployment configured for this alias"
    circuit_open = sum(1 for c in candidates if c.circuit == "open")
    full = sum(1 for c in candidates if c.circuit != "open" and not c.available)
    excluded = len(candidates) - circuit_open - full
    parts = [f"{circuit_open} circuit open", f"{full} at max concurrency"]
    if excluded:
        parts.append(f"{excluded} too small or too dear")
    return bounded("no deployment available: " + ", ".join(parts))


def context_too_long(features: RequestFeatures, largest: int) -> str:
    """Refusal: the request fits no context window."""
    return bounded(
        f"prompt ~{features.prompt_tokens} + output {features.expected_output_tokens} tokens "
        f"exceed every context window (largest {largest})"
    )


def over_max_cost(features: RequestFeatures, cheapest_usd: float) -> str:
    """Refusal: every deployment that fits costs more than the request's ``max_cost_usd``."""
    return bounded(
        f"cheapest deployment expected ${cheapest_usd:.6f} > max_cost_usd "
        f"${features.max_cost_usd or 0.0:.6f}"
    )
