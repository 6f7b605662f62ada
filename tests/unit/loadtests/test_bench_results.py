"""Ratios to the floor and the PASS/MISS verdict of the overhead benchmark (results.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from loadtests.bench.loadgen import LoadResult
from loadtests.bench.report import full_report
from loadtests.bench.results import Point, TargetResult, added_p50_ms, checks, ratio, verdict


def _target(
    name: str,
    rps: tuple[float, float, float],
    p50_ms: tuple[float, float, float],
    *,
    ttfb_ms: float = 0.5,
    rss_mib: float | None = 40.0,
    startup_s: float | None = 0.4,
) -> TargetResult:
    points = tuple(
        Point(LoadResult(c, int(r * 5), 0, 5.0, r, p, p * 1.2, p * 2.0, "wrk"), 0.2)
        for c, r, p in zip((1, 16, 64), rps, p50_ms, strict=True)
    )
    return TargetResult(name, points, ttfb_ms, rss_mib, startup_s)


DIRECT = _target("direct", (20000, 24000, 22000), (0.05, 0.6, 2.6), rss_mib=None, startup_s=None)
FLOOR = _target("floor", (3000, 8000, 6000), (0.25, 1.8, 9.4), ttfb_ms=0.65)


def test_added_p50_is_the_difference_to_direct_at_the_same_concurrency() -> None:
    assert added_p50_ms(FLOOR, DIRECT, 1) == pytest.approx(0.20)
    assert added_p50_ms(FLOOR, DIRECT, 64) == pytest.approx(6.8)


@pytest.mark.parametrize(("value", "base"), [(1.0, None), (None, 1.0), (1.0, 0.0), (1.0, math.nan)])
def test_ratio_is_nan_when_a_side_is_missing_or_the_base_is_zero(
    value: float | None, base: float | None
) -> None:
    assert math.isnan(ratio(value, base))


def test_a_gateway_within_every_bar_passes() -> None:
    gateway = _target("gateway", (2500, 6000, 4300), (0.33, 2.5, 13.0), ttfb_ms=1.6)
    found = checks(gateway, FLOOR, DIRECT)
    assert [c.passed for c in found] == [True] * 6
    assert verdict(found) == "PASS"


def test_a_slow_fat_gateway_misses_each_bar_it_breaks() -> None:
    gateway = _target(
        "gateway", (1000, 5000, 4300), (0.40, 3.0, 14.0), ttfb_ms=1.7, rss_mib=120.0, startup_s=2
    )
    found = {c.name: c for c in checks(gateway, FLOOR, DIRECT)}
    assert not found["added p50 at c=1 <= 1.5x floor"].passed  # +0.35 ms > 1.5 * 0.20 ms
    assert not found["req/s at c=16 >= 70% of floor"].passed  # 5000 < 5600
    assert found["req/s at c=64 >= 70% of floor"].passed  # 4300 >= 4200
    assert not found["stream TTFB p50 <= floor + 1 ms"].passed
    assert not found["RSS < 100 MiB"].passed
    assert not found["start-up < 1.5 s"].passed
    assert verdict(list(found.values())).startswith("MISS (added p50 at c=1")


def test_a_missing_rss_or_start_up_is_a_miss_not_a_pass() -> None:
    gateway = replace(FLOOR, name="gateway", rss_mib=None, startup_s=None)
    found = {c.name: c.passed for c in checks(gateway, FLOOR, DIRECT)}
    assert found["RSS < 100 MiB"] is False
    assert found["start-up < 1.5 s"] is False


def test_full_report_shows_every_target_the_gateway_ratios_and_verdicts() -> None:
    gateway = _target("gateway", (1500, 4000, 3000), (0.5, 3.6, 18.8))
    text = full_report([DIRECT, FLOOR, gateway])
    assert "== direct" in text and "== floor" in text and "== gateway" in text
    assert "-- gateway / floor --" in text
    assert "x0.50" in text  # req/s at every concurrency is half the floor's
    assert "gateway: MISS" in text and "floor: PASS" in text


def test_the_cache_target_is_judged_by_the_cache_bar_and_reported_against_litellm() -> None:
    fast = _target("cache", (1800, 6600, 5600), (0.52, 2.3, 9.9))
    slow = _target("cache", (90, 95, 99), (1.4, 160.0, 640.0))
    assert verdict(checks(fast, FLOOR, DIRECT)) == "PASS"
    missed = [c.name for c in checks(slow, FLOOR, DIRECT) if not c.passed]
    assert missed == [
        "hit p50 at c=1 <= 1 ms",
        "hit req/s at c=1 > LiteLLM's hit (~100 req/s)",
        "hit req/s at c=16 > LiteLLM's hit (~100 req/s)",
    ]
    report = full_report([DIRECT, FLOOR, fast])
    assert "-- cache hits / direct emulator call, and / LiteLLM's Redis cache hit" in report
    # c=1: 0.52 ms against LiteLLM's 10 ms and 1,800 req/s against its 100.
    assert "x0.05" in report and "x18.00" in report
