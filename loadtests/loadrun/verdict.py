"""A run's numbers and the SLO verdict: which thresholds of the scenario were missed.

``summarize`` turns Locust's final entries and the gateway's counters for the run into a
``RunSummary``; ``check`` compares what was measured with the scenario's ``Thresholds`` and
returns one ``Miss`` per threshold missed (empty = the run passed). Latency percentiles pool
every HTTP entry; TTFT percentiles pool every ``TTFT [alias]`` event (each sample counts once,
so aliases weigh by their request count), and the per-alias p95s are reported beside them.
Pure. Imports: ``loadtests.loadrun``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loadtests.loadrun.counters import GatewayCounters
from loadtests.loadrun.locust_stats import (
    TOKENS_PER_S,
    TTFT,
    Entry,
    events,
    http_entries,
    percentile,
    pooled,
)
from loadtests.loadrun.scenario import Thresholds


@dataclass(frozen=True, slots=True)
class Measured:
    """What the thresholds are checked against (None: nothing was measured)."""

    error_ratio: float | None
    ttft_p95_ms: float | None
    latency_p99_ms: float | None
    rps: float


@dataclass(frozen=True, slots=True)
class AliasTtft:
    """TTFT of one alias's streams."""

    alias: str
    samples: int
    p50_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run: Locust's client-side view and the gateway's counters for the same run."""

    requests: int
    failures: int
    duration_s: float
    """From the first to the last finished request."""
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    ttft_samples: int
    ttft_by_alias: tuple[AliasTtft, ...]
    stream_tokens_per_s_p50: float | None
    """Median per-stream output speed (the ``tokens/s`` events)."""
    gateway: GatewayCounters

    @property
    def rps(self) -> float:
        """HTTP requests per second."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_ratio(self) -> float | None:
        """Failed / all HTTP requests (None without requests)."""
        return self.failures / self.requests if self.requests else None

    @property
    def output_tokens_per_s(self) -> float:
        """Output tokens the gateway counted, per second of the run."""
        return self.gateway.output_tokens / self.duration_s if self.duration_s > 0 else 0.0

    def measured(self) -> Measured:
        """The values the thresholds apply to."""
        return Measured(self.error_ratio, self.ttft_p95_ms, self.latency_p99_ms, self.rps)


@dataclass(frozen=True, slots=True)
class Miss:
    """A threshold the run did not meet."""

    threshold: str
    measured: float | None
    limit: float

    def describe(self) -> str:
        """``max_ttft_p95_ms: measured 812.0, limit 500`` (or ``nothing measured``)."""
        got = "nothing measured" if self.measured is None else f"measured {self.measured:.4g}"
        return f"{self.threshold}: {got}, limit {self.limit:g}"


def summarize(entries: Sequence[Entry], gateway: GatewayCounters) -> RunSummary:
    """The run's numbers from Locust's final entries and the gateway's counter deltas."""
    http = http_entries(entries)
    latency = pooled(http)
    ttft_entries = events(entries, TTFT)
    ttft = pooled(ttft_entries)
    by_alias = tuple(
        AliasTtft(
            alias=e.label or e.name,
            samples=sum(e.response_times.values()),
            p50_ms=percentile(e.response_times, 0.5),
            p95_ms=percentile(e.response_times, 0.95),
        )
        for e in sorted(ttft_entries, key=lambda e: e.name)
    )
    return RunSummary(
        requests=sum(e.requests for e in http),
        failures=sum(e.failures for e in http),
        duration_s=_duration_s(entries),
        latency_p50_ms=percentile(latency, 0.5),
        latency_p95_ms=percentile(latency, 0.95),
        latency_p99_ms=percentile(latency, 0.99),
        ttft_p50_ms=percentile(ttft, 0.5),
        ttft_p95_ms=percentile(ttft, 0.95),
        ttft_samples=sum(ttft.values()),
        ttft_by_alias=by_alias,
        stream_tokens_per_s_p50=percentile(pooled(events(entries, TOKENS_PER_S)), 0.5),
        gateway=gateway,
    )


def _duration_s(entries: Sequence[Entry]) -> float:
    ends = [e.last_at for e in entries if e.last_at is not None]
    if not entries or not ends:
        return 0.0
    return max(ends) - min(e.started_at for e in entries)


def check(measured: Measured, thresholds: Thresholds, *, rps: bool = True) -> list[Miss]:
    """The thresholds ``measured`` misses; ``rps=False`` skips ``min_rps`` (a capacity
    step's rate is set by its users, not a target)."""
    misses: list[Miss] = []

    def at_most(name: str, value: float | None, limit: float | None) -> None:
        if limit is not None and (value is None or value > limit):
            misses.append(Miss(name, value, limit))

    at_most("max_error_ratio", measured.error_ratio, thresholds.max_error_ratio)
    at_most("max_ttft_p95_ms", measured.ttft_p95_ms, thresholds.max_ttft_p95_ms)
    at_most("max_latency_p99_ms", measured.latency_p99_ms, thresholds.max_latency_p99_ms)
    if rps and thresholds.min_rps is not None and measured.rps < thresholds.min_rps:
        misses.append(Miss("min_rps", measured.rps, thresholds.min_rps))
    return misses
