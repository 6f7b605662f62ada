"""The runner's printed output: the run's summary, the verdict and the capacity table.

Pure text from ``RunSummary``, ``Miss`` and ``Capacity``. Imports: ``loadtests.loadrun``.
"""

from __future__ import annotations

from collections.abc import Sequence

from loadtests.loadrun.capacity import Capacity, Step, saturation
from loadtests.loadrun.scenario import Thresholds
from loadtests.loadrun.verdict import Miss, RunSummary


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _num(value: float | None, spec: str = ",.1f") -> str:
    return "-" if value is None else format(value, spec)


def render_summary(name: str, summary: RunSummary) -> str:
    """The run's numbers: Locust's (client side) and the gateway's counters."""
    g = summary.gateway
    ratio = summary.error_ratio
    lines = [
        f"scenario {name}: {summary.requests:,} requests, {summary.failures:,} failures "
        f"({_num(None if ratio is None else ratio * 100, '.2f')}%) in "
        f"{summary.duration_s:.1f} s = {summary.rps:,.1f} req/s",
        f"  latency    p50 {_ms(summary.latency_p50_ms)}, p95 {_ms(summary.latency_p95_ms)}, "
        f"p99 {_ms(summary.latency_p99_ms)} (every HTTP request, streams to their last byte)",
        f"  TTFT       p50 {_ms(summary.ttft_p50_ms)}, p95 {_ms(summary.ttft_p95_ms)} "
        f"({summary.ttft_samples:,} streams, every alias's samples pooled)",
    ]
    lines += [
        f"    {a.alias:<24} {a.samples:>6,} streams, p50 {_ms(a.p50_ms)}, p95 {_ms(a.p95_ms)}"
        for a in summary.ttft_by_alias
    ]
    lines += [
        f"  tokens     {g.input_tokens:,.0f} in, {g.output_tokens:,.0f} out "
        f"= {summary.output_tokens_per_s:,.1f} output tokens/s (gateway counters); "
        f"per stream p50 {_num(summary.stream_tokens_per_s_p50, ',.0f')} tokens/s",
        f"  spend      ${g.spend_usd:,.4f} billed; ${g.savings_usd:,.4f} saved against the "
        "reference model (local workers and cache)",
        f"  local      {_num(None if g.local_share is None else g.local_share * 100)}% of tokens "
        f"served by owned workers; cache {g.cache_hits:,.0f} hits of "
        f"{g.cache_hits + g.cache_misses:,.0f} lookups",
        f"  gateway    counted {g.requests:,.0f} requests (Locust {summary.requests:,}); "
        f"{g.rate_limited:,.0f} paid-API 429s",
    ]
    return "\n".join(lines)


def render_verdict(thresholds: Thresholds, misses: Sequence[Miss]) -> str:
    """``PASS`` with the thresholds checked, or ``FAIL`` and one line per miss."""
    checked = {
        "max_error_ratio": thresholds.max_error_ratio,
        "max_ttft_p95_ms": thresholds.max_ttft_p95_ms,
        "max_latency_p99_ms": thresholds.max_latency_p99_ms,
        "min_rps": thresholds.min_rps,
    }
    limits = ", ".join(f"{k} {v:g}" for k, v in checked.items() if v is not None)
    if not misses:
        return f"verdict: PASS ({limits or 'no thresholds set'})"
    return "\n".join(
        [f"verdict: FAIL, {len(misses)} threshold(s) missed"]
        + [f"  missed {m.describe()}" for m in misses]
    )


_COLUMNS = (
    ("step", 4),
    ("users", 5),
    ("req/s", 7),
    ("out tok/s", 9),
    ("err %", 6),
    ("TTFT p95", 8),
    ("lat p99", 7),
    ("gw cpu", 6),
    ("locust", 6),
    ("emul.", 6),
    ("box %", 5),
    ("queue", 5),
    ("batch", 5),
    ("wrk mean", 8),
    ("wrk p95", 7),
    ("429s", 5),
)


def render_capacity(capacity: Capacity) -> str:
    """One row per step, then the capacity sentence. Times in ms, CPU in cores; ``queue``
    and ``batch`` are the most requests waiting and running in the workers, ``wrk mean`` and
    ``wrk p95`` the workers' own TTFT (ms; the p95 interpolated in vLLM's buckets)."""
    header = " ".join(f"{name:>{width}}" for name, width in _COLUMNS) + "  SLO"
    return "\n".join([header, *(_row(step) for step in capacity.steps), capacity_verdict(capacity)])


def _row(step: Step) -> str:
    err = None if step.error_ratio is None else step.error_ratio * 100
    machine = None if step.machine_busy is None else step.machine_busy * 100
    cells = (
        str(step.index + 1),
        str(step.users),
        f"{step.rps:.1f}",
        _num(step.output_tokens_per_s, ",.0f"),
        _num(err, ".2f"),
        _num(step.ttft_p95_ms, ",.0f"),
        _num(step.latency_p99_ms, ",.0f"),
        _num(step.gateway_cores, ".2f"),
        _num(step.client_cores, ".2f"),
        _num(step.emulators_cores, ".2f"),
        _num(machine, ".0f"),
        _num(step.max_waiting, ".0f"),
        _num(step.max_running, ".0f"),
        _num(step.workers_ttft_mean_ms, ",.0f"),
        _num(step.workers_ttft_p95_ms, ",.0f"),
        _num(step.rate_limited, ".0f"),
    )
    slo = "ok" if step.passed else "missed " + ", ".join(m.threshold for m in step.misses)
    row = " ".join(f"{cell:>{width}}" for cell, (_, width) in zip(cells, _COLUMNS, strict=True))
    return f"{row}  {slo}"


def capacity_verdict(capacity: Capacity) -> str:
    """``capacity: sustained N req/s and M output tokens/s at U users; broke at U' users:
    <where> (<thresholds missed>)``."""
    good, broke = capacity.sustained, capacity.broke
    if good is None:
        head = "capacity: no step met the SLO"
    else:
        head = (
            f"capacity: sustained {good.rps:,.1f} req/s and "
            f"{_num(good.output_tokens_per_s, ',.0f')} output tokens/s at {good.users} users"
        )
    if broke is None:
        return f"{head}; the SLO held up to the last step (raise TG_STEPS or TG_STEP_USERS)"
    where = ", ".join(saturation(broke)) or "no saturation measured"
    if broke.gateway_cores is None:
        where += " (the gateway's CPU and the workers' queues are measured for target demo only)"
    missed = "; ".join(m.describe() for m in broke.misses)
    return f"{head}; broke at {broke.users} users: {where} ({missed})"
