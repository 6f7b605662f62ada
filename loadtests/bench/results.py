"""What the overhead benchmark measured, and the verdict: figures as ratios to the floor.

Pure (no I/O): ``overhead.py`` fills ``TargetResult``s; ``checks`` turns the gateway's and the
floor's figures into the PASS/MISS lines of the overhead issue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from loadtests.bench.loadgen import LoadResult

# The overhead issue's bar for the gateway, measured against the floor in the same run.
MAX_ADDED_P50_RATIO_C1 = 1.5
MAX_ADDED_P50_RATIO_C1_ACCOUNTING = 2.0  # one Redis round trip before the upstream call
MIN_RPS_RATIO = 0.70
RPS_CHECK_CONCURRENCY = (16, 64)
MAX_TTFB_EXTRA_MS = 1.0
MAX_RSS_MIB = 100.0
MAX_STARTUP_S = 1.5
# The cache issue's bar: a hit end to end at c=1, and what it is compared with.
MAX_HIT_P50_MS_C1 = 1.0
LITELLM_HIT_P50_MS = 10.0
LITELLM_HIT_RPS = 100.0
"""LiteLLM proxy 1.106.2 with its Redis cache, a hit, measured on this machine kind (the cache
issue's figures: p50 ~10 ms, ~100 req/s)."""


@dataclass(frozen=True, slots=True)
class Point:
    """One concurrency level: the load result and the proxy's CPU per request (None: direct)."""

    load: LoadResult
    cpu_ms_per_request: float | None


@dataclass(frozen=True, slots=True)
class TargetResult:
    """Everything measured for one target (direct, floor or gateway)."""

    name: str
    points: tuple[Point, ...]
    ttfb_p50_ms: float
    rss_mib: float | None
    startup_s: float | None

    def point(self, concurrency: int) -> Point:
        """The point measured at ``concurrency``."""
        for each in self.points:
            if each.load.concurrency == concurrency:
                return each
        raise KeyError(f"{self.name}: no point at concurrency {concurrency}")


@dataclass(frozen=True, slots=True)
class Check:
    """One PASS/MISS line: what was measured against what limit."""

    name: str
    value: float
    limit: float
    passed: bool
    unit: str


def added_p50_ms(target: TargetResult, direct: TargetResult, concurrency: int) -> float:
    """The target's p50 latency minus the direct p50 at the same concurrency."""
    return target.point(concurrency).load.p50_ms - direct.point(concurrency).load.p50_ms


def ratio(value: float | None, base: float | None) -> float:
    """``value / base``; NaN when either is missing or the base is zero or NaN."""
    if value is None or base is None or base == 0 or math.isnan(base):
        return math.nan
    return value / base


def checks(target: TargetResult, floor: TargetResult, direct: TargetResult) -> list[Check]:
    """The overhead issue's criteria for ``target``, each against the floor of the same run
    (the cache target: the cache issue's)."""
    if target.name == "cache":
        return cache_checks(target)
    out: list[Check] = []
    added = added_p50_ms(target, direct, 1)
    floor_added = added_p50_ms(floor, direct, 1)
    ratio = (
        MAX_ADDED_P50_RATIO_C1_ACCOUNTING if target.name == "accounting" else MAX_ADDED_P50_RATIO_C1
    )
    limit = ratio * floor_added
    name = f"added p50 at c=1 <= {ratio:g}x floor"
    out.append(Check(name, added, limit, added <= limit, "ms"))
    for c in RPS_CHECK_CONCURRENCY:
        rps = target.point(c).load.rps
        limit = MIN_RPS_RATIO * floor.point(c).load.rps
        out.append(Check(f"req/s at c={c} >= 70% of floor", rps, limit, rps >= limit, "req/s"))
    ttfb, limit = target.ttfb_p50_ms, floor.ttfb_p50_ms + MAX_TTFB_EXTRA_MS
    out.append(Check("stream TTFB p50 <= floor + 1 ms", ttfb, limit, ttfb <= limit, "ms"))
    rss = math.nan if target.rss_mib is None else target.rss_mib
    out.append(Check("RSS < 100 MiB", rss, MAX_RSS_MIB, rss < MAX_RSS_MIB, "MiB"))
    start = math.nan if target.startup_s is None else target.startup_s
    out.append(Check("start-up < 1.5 s", start, MAX_STARTUP_S, start < MAX_STARTUP_S, "s"))
    return out


def cache_checks(target: TargetResult) -> list[Check]:
    """A cache hit: p50 at c=1 within 1 ms end to end, and faster than LiteLLM's hit."""
    p50 = target.point(1).load.p50_ms
    out = [Check("hit p50 at c=1 <= 1 ms", p50, MAX_HIT_P50_MS_C1, p50 <= MAX_HIT_P50_MS_C1, "ms")]
    for c in (1, 16):
        rps = target.point(c).load.rps
        name = f"hit req/s at c={c} > LiteLLM's hit (~100 req/s)"
        out.append(Check(name, rps, LITELLM_HIT_RPS, rps > LITELLM_HIT_RPS, "req/s"))
    return out


def verdict(found: list[Check]) -> str:
    """PASS when every check passed, else MISS with the names of those that did not."""
    missed = [each.name for each in found if not each.passed]
    return "PASS" if not missed else "MISS (" + "; ".join(missed) + ")"
