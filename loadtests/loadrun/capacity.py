"""The capacity report: a step run split into its steps, each checked against the SLO.

The step shape adds ``step_users`` users every ``step_s``. Each step is measured over
its last three quarters (the first quarter is the spawn ramp and the queue the previous step
left), from three sources on one clock (epoch seconds):

- Locust's final entries: HTTP requests and failures finished in each second (req/s, errors);
- Locust's history CSV: each entry's last-10-s percentiles at the step's last row (TTFT p95 of
  the worst alias, latency p99 of the worst HTTP entry);
- the runner's samples, about one a second: the gateway's counters (output tokens, paid-API
  429s), the CPU time of the gateway, of Locust and of the emulators, the machine's busy
  time, and the local workers' /metrics (requests waiting and running, their own TTFT
  histogram).

The capacity is the last step before the first one that misses a threshold; where it broke is
judged from what was measured during the breaking step. Pure. Imports: ``loadtests.loadrun``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from loadtests.loadrun.counters import GatewayCounters, WorkerCounters, histogram_quantile
from loadtests.loadrun.locust_stats import TTFT, Entry, HistoryRow, http_entries
from loadtests.loadrun.scenario import Thresholds
from loadtests.loadrun.verdict import Measured, Miss, check
from loadtests.shapes.schedule import StepPlan

SETTLE_FRACTION = 0.25
"""The start of each step not measured: users still spawning, the last step's queue."""
SATURATED_CORES = 0.85
"""A single-threaded process (the gateway's event loop, Locust's gevent loop) using this
much of one core is CPU bound."""
SATURATED_MACHINE = 0.9


@dataclass(frozen=True, slots=True)
class Sample:
    """What the runner measured at one instant during the run (None: not measurable)."""

    at: float
    counters: GatewayCounters
    gateway_cpu_s: float | None = None
    client_cpu_s: float | None = None
    emulators_cpu_s: float | None = None
    """The upstream emulators' CPU seconds (they share the machine in the demo fleet)."""
    machine_busy_s: float | None = None
    """CPU seconds the whole machine spent busy (all cores)."""
    machine_cores: int | None = None
    workers: WorkerCounters | None = None
    """The local workers' queues, batches and own TTFT histogram, summed."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step's measurements and the thresholds it missed."""

    index: int
    users: int
    """Users the shape runs in this step."""
    seen_users: int
    """The most users Locust reported during the measured window."""
    rps: float
    error_ratio: float | None
    output_tokens_per_s: float | None
    ttft_p95_ms: float | None
    latency_p99_ms: float | None
    gateway_cores: float | None
    client_cores: float | None
    emulators_cores: float | None
    machine_busy: float | None
    """Fraction of all the machine's cores busy."""
    max_waiting: float | None
    """The most requests waiting in the workers' queues at one sample."""
    max_running: float | None
    """The most requests in the workers' running batches at one sample."""
    workers_ttft_mean_ms: float | None
    """The workers' own mean TTFT (their vLLM histogram's sum / count), exact."""
    workers_ttft_p95_ms: float | None
    """The workers' own TTFT p95, interpolated within vLLM's histogram buckets (coarse: one
    bucket spans 1-2.5 s), as Grafana's ``histogram_quantile`` would show it."""
    rate_limited: float | None
    misses: tuple[Miss, ...]

    @property
    def passed(self) -> bool:
        """Every threshold met."""
        return not self.misses


@dataclass(frozen=True, slots=True)
class Capacity:
    """The steps, the highest sustained one (None: even the first broke) and the breaking one
    (None: the SLO held up to the last step)."""

    steps: tuple[Step, ...]
    sustained: Step | None
    broke: Step | None


def measure_steps(
    plan: StepPlan,
    started_at: float,
    entries: Sequence[Entry],
    history: Sequence[HistoryRow],
    samples: Sequence[Sample],
    thresholds: Thresholds,
) -> Capacity:
    """Split the run that started at ``started_at`` into ``plan``'s steps and judge them."""
    http = http_entries(entries)
    requests = _per_second(e.per_second for e in http)
    failures = _per_second(e.failures_per_second for e in http)
    steps = []
    for index in range(plan.steps):
        begin = started_at + index * plan.step_s
        window = (begin + plan.step_s * SETTLE_FRACTION, begin + plan.step_s)
        users = (index + 1) * plan.step_users
        steps.append(_step(index, users, window, requests, failures, history, samples, thresholds))
    broke = next((s for s in steps if not s.passed), None)
    last_good = (broke.index if broke else len(steps)) - 1
    return Capacity(tuple(steps), steps[last_good] if last_good >= 0 else None, broke)


def _step(
    index: int,
    users: int,
    window: tuple[float, float],
    requests: Mapping[int, int],
    failures: Mapping[int, int],
    history: Sequence[HistoryRow],
    samples: Sequence[Sample],
    thresholds: Thresholds,
) -> Step:
    start, end = window
    seconds = [s for s in range(math.ceil(start), math.floor(end))]
    count = sum(requests.get(s, 0) for s in seconds)
    failed = sum(failures.get(s, 0) for s in seconds)
    rows = [r for r in history if start <= r.at <= end]
    measured = Measured(
        error_ratio=failed / count if count else None,
        ttft_p95_ms=_worst_at_end([r for r in rows if r.is_event and r.kind == TTFT], "95%"),
        latency_p99_ms=_worst_at_end([r for r in rows if r.is_http], "99%"),
        rps=count / len(seconds) if seconds else 0.0,
    )
    span = _Span.of(samples, start, end)
    workers = [s.workers for s in samples if start <= s.at < end and s.workers is not None]
    return Step(
        index=index,
        users=users,
        seen_users=max((r.users for r in rows), default=0),
        rps=measured.rps,
        error_ratio=measured.error_ratio,
        output_tokens_per_s=span.rate(lambda s: s.counters.output_tokens),
        ttft_p95_ms=measured.ttft_p95_ms,
        latency_p99_ms=measured.latency_p99_ms,
        gateway_cores=span.rate(lambda s: s.gateway_cpu_s),
        client_cores=span.rate(lambda s: s.client_cpu_s),
        emulators_cores=span.rate(lambda s: s.emulators_cpu_s),
        machine_busy=span.machine_busy(),
        max_waiting=max((w.waiting for w in workers), default=None),
        max_running=max((w.running for w in workers), default=None),
        workers_ttft_mean_ms=span.workers_ttft_mean_ms(),
        workers_ttft_p95_ms=span.workers_ttft_p95_ms(),
        rate_limited=span.delta(lambda s: s.counters.rate_limited),
        misses=tuple(check(measured, thresholds, rps=False)),
    )


@dataclass(frozen=True, slots=True)
class _Span:
    """The samples nearest a window's ends (None when there are not two distinct ones)."""

    first: Sample | None
    last: Sample | None

    @classmethod
    def of(cls, samples: Sequence[Sample], start: float, end: float) -> _Span:
        first = min(samples, key=lambda s: abs(s.at - start), default=None)
        last = min(samples, key=lambda s: abs(s.at - end), default=None)
        if first is None or last is None or last.at <= first.at:
            return cls(None, None)
        return cls(first, last)

    def delta(self, value: Callable[[Sample], float | None]) -> float | None:
        if self.first is None or self.last is None:
            return None
        before, after = value(self.first), value(self.last)
        return None if before is None or after is None else after - before

    def rate(self, value: Callable[[Sample], float | None]) -> float | None:
        change = self.delta(value)
        if change is None or self.first is None or self.last is None:
            return None
        return change / (self.last.at - self.first.at)

    def workers(self) -> tuple[WorkerCounters, WorkerCounters] | None:
        if self.first is None or self.last is None:
            return None
        if self.first.workers is None or self.last.workers is None:
            return None
        return self.first.workers, self.last.workers

    def workers_ttft_mean_ms(self) -> float | None:
        pair = self.workers()
        if pair is None or pair[1].ttft_count <= pair[0].ttft_count:
            return None
        first, last = pair
        return (last.ttft_sum_s - first.ttft_sum_s) / (last.ttft_count - first.ttft_count) * 1000

    def workers_ttft_p95_ms(self) -> float | None:
        pair = self.workers()
        if pair is None:
            return None
        seconds = histogram_quantile(0.95, pair[1].ttft_buckets, pair[0].ttft_buckets)
        return None if seconds is None else seconds * 1000

    def machine_busy(self) -> float | None:
        busy = self.rate(lambda s: s.machine_busy_s)
        cores = self.last.machine_cores if self.last else None
        return None if busy is None or not cores else busy / cores


def _per_second(counts: Iterable[Mapping[int, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for each in counts:
        for second, n in each.items():
            merged[second] = merged.get(second, 0) + n
    return merged


def _worst_at_end(rows: Sequence[HistoryRow], column: str) -> float | None:
    """The highest ``column`` among the rows of the window's last timestamp."""
    values: list[float] = []
    for at in sorted({r.at for r in rows}, reverse=True):
        values = [v for r in rows if r.at == at and (v := r.percentiles.get(column)) is not None]
        if values:
            break
    return max(values) if values else None


def _cpu_shares(step: Step) -> str:
    """``: gateway 0.43, Locust 0.45, emulators 1.02 cores`` (what was measured)."""
    shares = [
        f"{name} {cores:.2f}"
        for name, cores in (
            ("gateway", step.gateway_cores),
            ("Locust", step.client_cores),
            ("emulators", step.emulators_cores),
        )
        if cores is not None
    ]
    return f": {', '.join(shares)} cores" if shares else ""


def saturation(step: Step) -> list[str]:
    """Where the system was saturated during ``step``, most likely cause first."""
    found = []
    if step.client_cores is not None and step.client_cores >= SATURATED_CORES:
        found.append(f"client (Locust at {step.client_cores:.2f} cores)")
    if step.gateway_cores is not None and step.gateway_cores >= SATURATED_CORES:
        found.append(f"gateway CPU ({step.gateway_cores:.2f} cores)")
    if step.max_waiting:
        found.append(f"workers' queue (up to {step.max_waiting:.0f} requests waiting)")
    elif _workers_miss_the_slo(step):
        found.append(
            f"the local workers (their own TTFT p95 ~{step.workers_ttft_p95_ms:,.0f} ms, mean "
            f"{_num(step.workers_ttft_mean_ms)} ms, with up to {step.max_running or 0:.0f} "
            "requests running and none waiting)"
        )
    if step.rate_limited:
        found.append(f"paid API rate limits ({step.rate_limited:.0f} calls refused with 429)")
    if step.machine_busy is not None and step.machine_busy >= SATURATED_MACHINE:
        found.append(f"the machine's CPUs ({step.machine_busy:.0%} busy{_cpu_shares(step)})")
    return found


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _workers_miss_the_slo(step: Step) -> bool:
    """The workers alone take longer to a first token than the TTFT threshold allows."""
    limits = [m.limit for m in step.misses if m.threshold == "max_ttft_p95_ms"]
    worker = step.workers_ttft_p95_ms
    return bool(limits) and worker is not None and worker > limits[0]
