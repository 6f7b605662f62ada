"""Plain-text tables for the overhead benchmark: one per target, the gateway as ratios to the
floor, and the PASS/MISS lines. Pure: returns strings."""

from __future__ import annotations

import math

from loadtests.bench.results import (
    LITELLM_HIT_P50_MS,
    LITELLM_HIT_RPS,
    Check,
    TargetResult,
    added_p50_ms,
    checks,
    ratio,
    verdict,
)

COLUMNS = f"{'c':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'CPU ms/req':>11}"


def _num(value: float | None, digits: int = 2) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.{digits}f}"


def _times(value: float) -> str:
    return "-" if math.isnan(value) else f"x{value:.2f}"


def target_table(target: TargetResult, direct: TargetResult) -> str:
    """The target's figures at each concurrency, plus start-up, RSS and streaming TTFB."""
    tool = target.points[0].load.tool if target.points else "-"
    lines = [
        f"== {target.name} (load: {tool}) == start-up {_num(target.startup_s, 3)} s | "
        f"RSS {_num(target.rss_mib, 1)} MiB | stream TTFB p50 {_num(target.ttfb_p50_ms, 3)} ms",
        COLUMNS,
    ]
    for point in target.points:
        load = point.load
        added = added_p50_ms(target, direct, load.concurrency)
        lines.append(
            f"{load.concurrency:>4} {load.rps:>9.0f} {_num(load.p50_ms, 3):>8} "
            f"{_num(load.p99_ms, 3):>8} {_num(added, 3):>8} "
            f"{_num(point.cpu_ms_per_request, 3):>11}"
            + (f"  ({load.errors} errors)" if load.errors else "")
        )
    return "\n".join(lines)


def ratio_table(target: TargetResult, floor: TargetResult, direct: TargetResult) -> str:
    """Each of the target's figures divided by the floor's (lower is better except req/s)."""
    lines = [f"-- {target.name} / floor --", COLUMNS]
    for point in target.points:
        c = point.load.concurrency
        base = floor.point(c)
        cells = [
            ratio(point.load.rps, base.load.rps),
            ratio(point.load.p50_ms, base.load.p50_ms),
            ratio(point.load.p99_ms, base.load.p99_ms),
            ratio(added_p50_ms(target, direct, c), added_p50_ms(floor, direct, c)),
            ratio(point.cpu_ms_per_request, base.cpu_ms_per_request),
        ]
        widths = (9, 8, 8, 8, 11)
        row = " ".join(f"{_times(v):>{w}}" for v, w in zip(cells, widths, strict=True))
        lines.append(f"{c:>4} {row}")
    lines.append(
        f"start-up {_times(ratio(target.startup_s, floor.startup_s))} | "
        f"RSS {_times(ratio(target.rss_mib, floor.rss_mib))} | "
        f"stream TTFB p50 {_times(ratio(target.ttfb_p50_ms, floor.ttfb_p50_ms))}"
    )
    return "\n".join(lines)


def cache_table(target: TargetResult, direct: TargetResult) -> str:
    """Cache hits against a direct call of the zero-latency emulator and LiteLLM's hit."""
    lines = [
        "-- cache hits / direct emulator call, and / LiteLLM's Redis cache hit "
        f"(p50 {LITELLM_HIT_P50_MS:g} ms, {LITELLM_HIT_RPS:g} req/s) --",
        f"{'c':>4} {'hit p50 ms':>10} {'/ direct':>9} {'/ LiteLLM':>10} "
        f"{'hit req/s':>10} {'/ direct':>9} {'/ LiteLLM':>10}",
    ]
    for point in target.points:
        c, load = point.load.concurrency, point.load
        base = direct.point(c).load
        lines.append(
            f"{c:>4} {_num(load.p50_ms, 3):>10} {_times(ratio(load.p50_ms, base.p50_ms)):>9} "
            f"{_times(ratio(load.p50_ms, LITELLM_HIT_P50_MS)):>10} {load.rps:>10.0f} "
            f"{_times(ratio(load.rps, base.rps)):>9} {_times(ratio(load.rps, LITELLM_HIT_RPS)):>10}"
        )
    return "\n".join(lines)


def check_lines(target: TargetResult, found: list[Check]) -> str:
    """``<target>: PASS|MISS`` and one line per criterion."""
    lines = [f"{target.name}: {verdict(found)}"]
    for each in found:
        mark = "PASS" if each.passed else "MISS"
        lines.append(
            f"  {mark}  {each.name}: {_num(each.value, 3)} {each.unit}"
            f" (limit {_num(each.limit, 3)} {each.unit})"
        )
    return "\n".join(lines)


def full_report(targets: list[TargetResult]) -> str:
    """Every table and verdict, for targets named ``direct``, ``floor`` and others."""
    by_name = {t.name: t for t in targets}
    direct, floor = by_name["direct"], by_name["floor"]
    parts = [target_table(t, direct) for t in targets]
    for target in targets:
        if target.name == "cache":
            parts.append(cache_table(target, direct))
        elif target.name not in ("direct", "floor"):
            parts.append(ratio_table(target, floor, direct))
    for target in targets:
        if target.name != "direct":
            parts.append(check_lines(target, checks(target, floor, direct)))
    return "\n\n".join(parts)
