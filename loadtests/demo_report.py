"""The demo's summary table: one row per deployment, then the totals and the dollars.

Pure formatting over the outcomes the demo measured; prices come from the gateway's config
(litellm's bundled price map), so the dollars are list prices, not invented.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.config import Config
from loadtests.percentiles import interpolated

CACHE = "cache"
"""The row of requests answered from the response cache (its ledger group is named so too)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one demo request went, as the client saw it."""

    alias: str
    deployment: str
    stream: bool
    latency_s: float
    ttft_s: float | None
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value * 1000:.0f}"


def render_summary(
    outcomes: Sequence[Outcome], config: Config, wall_s: float, counted: float
) -> str:
    """The table printed at the end of the demo."""
    rows: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        rows[o.deployment].append(o)
    header = (
        f"{'deployment':<26}{'reqs':>6}{'errors':>8}{'tok in':>10}{'tok out':>9}"
        f"{'p50 ms':>8}{'p95 ms':>8}{'TTFT p50':>10}{'TTFT p95':>10}{'USD':>10}"
    )
    lines = [header, "-" * len(header)]
    paid_usd = Decimal(0)
    for name in sorted(rows):
        group = rows[name]
        ok = [o for o in group if o.error is None]
        lat = sorted(o.latency_s for o in ok)
        ttft = sorted(o.ttft_s for o in ok if o.ttft_s is not None)
        tin, tout = sum(o.prompt_tokens for o in ok), sum(o.completion_tokens for o in ok)
        dep = config.deployments.get(name)
        usd = dep.price.cost(tin, tout) if dep and dep.price and not dep.local else None
        paid_usd += usd or 0
        billed = "cached" if name == CACHE else "owned" if usd is None else f"{usd:.5f}"
        lines.append(
            f"{name:<26}{len(group):>6}{len(group) - len(ok):>8}{tin:>10}{tout:>9}"
            f"{_ms(interpolated(lat, 50)):>8}{_ms(interpolated(lat, 95)):>8}"
            f"{_ms(interpolated(ttft, 50)):>10}{_ms(interpolated(ttft, 95)):>10}"
            f"{billed:>10}"
        )
    lines += ["", *_totals(outcomes, config, wall_s, counted, paid_usd)]
    return "\n".join(lines)


def _totals(
    outcomes: Sequence[Outcome], config: Config, wall_s: float, counted: float, paid: Decimal
) -> list[str]:
    ok = [o for o in outcomes if o.error is None]
    local = [
        o
        for o in ok
        if o.deployment in config.deployments and config.deployments[o.deployment].local
    ]
    cached = sum(1 for o in ok if o.deployment == CACHE)
    errors = sorted({o.error for o in outcomes if o.error})
    return [
        f"{len(outcomes)} requests in {wall_s:.1f}s ({len(outcomes) / wall_s:.0f} req/s), "
        f"{len(outcomes) - len(ok)} errors{' (' + ', '.join(errors) + ')' if errors else ''}; "
        f"the gateway's /metrics counted {counted:.0f}",
        f"served by owned Qwen workers: {len(local)}/{len(ok)} "
        f"({100 * len(local) / max(1, len(ok)):.0f}%), from the response cache: {cached}; "
        f"paid APIs billed ${paid:.5f} at list price (counted by the client from its own usage)",
    ]


def render_ledger(spend: Mapping[str, Any], reference_model: str) -> str:
    """The gateway's spend ledger per deployment (``GET /admin/spend?group_by=deployment``)."""
    header = (
        f"{'ledger: deployment':<26}{'reqs':>6}{'tok in':>10}{'tok out':>9}"
        f"{'billed $':>11}{'shadow $':>11}{'ref $':>11}{'saved $':>11}"
    )
    lines = [header, "-" * len(header)]
    for row in [*spend["data"], spend["total"]]:
        lines.append(
            f"{row['group']:<26}{row['requests']:>6}{row['input_tokens']:>10}"
            f"{row['output_tokens']:>9}{row['cost_usd']:>11.6f}{row['shadow_usd']:>11.6f}"
            f"{row['reference_usd']:>11.6f}{row['savings_usd']:>11.6f}"
        )
    total = spend["total"]
    lines.append(
        f"the ledger: billed ${total['cost_usd']:.6f}; the tokens served locally or from the "
        f"cache would have cost ${total['savings_usd']:.6f} on {reference_model} (saved), for "
        f"${total['shadow_usd']:.6f} of GPU time at measured throughput (shadow cost, not billed)"
    )
    return "\n".join(lines)


def render_reasons(exposition: str) -> str:
    """How the gateway routed: decisions per policy and reason, from its /metrics."""
    counts: dict[tuple[str, str], float] = defaultdict(float)
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "gateway_route_decisions_total":
                counts[(sample.labels["policy"], sample.labels["reason"])] += sample.value
    parts = [f"{policy}/{reason} {n:.0f}" for (policy, reason), n in sorted(counts.items())]
    return "routing decisions: " + ", ".join(parts)
