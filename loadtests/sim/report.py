"""Numbers of a run (spend, local share, TTFT percentiles, SLO attainment, total cost) and
the Markdown tables the CLI prints and ``docs/simulator.md`` quotes.

Total cost = every local GPU for the whole trace period (idle or not) at a GPU-hour price,
plus paid USD; it is shown as a percentage of sending everything to the cheapest paid
deployment. Imports: stdlib and ``loadtests.sim``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadtests.percentiles import nearest_rank
from loadtests.sim.oracle import PaidBound, charged_usd
from loadtests.sim.simulation import RunResult

WARMUP_SHARE = 0.05
"""Attainment "after warm-up" ignores the first 5% of requests (the correction is learning)."""


@dataclass(frozen=True, slots=True)
class Summary:
    """One policy on one scenario."""

    policy: str
    requests: int
    paid_usd: float
    local_share: float
    ttft_p50_s: float
    ttft_p95_s: float
    ttft_p99_s: float
    attainment: float
    attainment_after_warmup: float
    gpu_usd: tuple[float, ...]
    """GPU cost of the period at each GPU-hour price."""
    all_paid_usd: float
    charged_usd: float
    """Paid USD + the cheapest paid value of late local requests (what the bound bounds)."""

    @property
    def usd_per_1k(self) -> float:
        """Paid USD per 1,000 requests."""
        return 1000 * self.paid_usd / self.requests if self.requests else 0.0

    def total_pct(self, price_index: int) -> float:
        """GPU + paid cost as a percentage of all-paid."""
        total = self.gpu_usd[price_index] + self.paid_usd
        return 100 * total / self.all_paid_usd if self.all_paid_usd else math.inf


def summarize(result: RunResult, values: Sequence[float], gpu_hour_usd: Sequence[float]) -> Summary:
    """Summarise ``result``; ``values`` are the cheapest paid USD per request."""
    n, slo = len(result.requests), result.settings.slo_ttft_s
    local_names = {w.name for w in result.fleet.locals}
    local = sum(1 for w in result.served_by if w >= 0 and result.fleet.order[w] in local_names)
    ttft = result.ttft_s
    warm = ttft[int(n * WARMUP_SHARE) :]
    hours = result.period_s / 3600
    gpus = len(result.fleet.locals)
    return Summary(
        policy=result.policy,
        requests=n,
        paid_usd=result.paid_usd,
        local_share=local / n if n else 0.0,
        ttft_p50_s=nearest_rank(ttft, 50),
        ttft_p95_s=nearest_rank(ttft, 95),
        ttft_p99_s=nearest_rank(ttft, 99),
        attainment=_share_within(ttft, slo),
        attainment_after_warmup=_share_within(warm, slo),
        gpu_usd=tuple(gpus * hours * price for price in gpu_hour_usd),
        all_paid_usd=sum(values),
        charged_usd=charged_usd(result, values),
    )


def _share_within(ttft: Sequence[float], slo: float) -> float:
    return sum(1 for t in ttft if t <= slo) / len(ttft) if ttft else 0.0


def _ms(seconds: float) -> str:
    return "inf" if math.isinf(seconds) else f"{seconds * 1000:,.0f}"


def table(
    rows: Sequence[Summary], gpu_hour_usd: Sequence[float], bound: PaidBound | None = None
) -> str:
    """The Markdown table of one scenario, with the oracle row and spillover / bound."""
    price_cols = [f"total % all-paid @${p:g}/GPU-h" for p in gpu_hour_usd]
    head = ["policy", "paid $", "$/1k req", "local %", "TTFT p50/p95/p99 ms", "SLO att. %"]
    lines = [_row([*head, *price_cols]), _row(["---"] * (len(head) + len(price_cols)))]
    for s in rows:
        ttft = "/".join(_ms(t) for t in (s.ttft_p50_s, s.ttft_p95_s, s.ttft_p99_s))
        cells = [
            s.policy,
            f"{s.paid_usd:,.2f}",
            f"{s.usd_per_1k:.4f}",
            f"{100 * s.local_share:.1f}",
            ttft,
            f"{100 * s.attainment:.2f}",
            *(f"{s.total_pct(i):.0f}%" for i in range(len(gpu_hour_usd))),
        ]
        lines.append(_row(cells))
    if bound is not None:
        lines.append(
            _row(
                ["**oracle bound**", f"{bound.usd:,.2f}", *[""] * (len(head) - 2 + len(price_cols))]
            )
        )
    return "\n".join(lines)


def bound_note(rows: Sequence[Summary], bound: PaidBound) -> str:
    """One line: spillover's paid $ / bound, and any violation (a bug)."""
    parts = [
        f"oracle lower bound on paid $: {bound.usd:,.2f} (window {bound.window_s:g} s, "
        f"{bound.never_local} prompts too long for any GPU within the SLO)"
    ]
    tolerance = 1e-9 * max((s.all_paid_usd for s in rows), default=0.0)
    for s in rows:
        if s.policy == "spillover" and bound.usd > tolerance:
            parts.append(f"spillover paid $ / bound = {s.paid_usd / bound.usd:.2f}")
        if s.charged_usd < bound.usd - tolerance:
            parts.append(f"BUG: {s.policy} beats the bound ({s.charged_usd:.4f})")
    return "; ".join(parts)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def progress_bar(label: str) -> Callable[[int, int], None]:
    """A callable ``(done, total)`` drawing a text progress bar on stderr."""

    def draw(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(1, total)
        end = "\n" if done >= total else ""
        sys.stderr.write(
            f"\r{label:<32} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}"
        )
        sys.stderr.flush()

    return draw
