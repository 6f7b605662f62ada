"""The overhead benchmark: direct, the floor proxy and the gateway, in one run, as ratios.

Against one zero-latency vLLM emulator it measures (a) the load generator straight at the
emulator, (b) the floor (``floor_proxy.py``: the best bare passthrough proxy of DESIGN.md) and
(c) the gateway with all its routing features on, open, and (d) the same with API keys, budgets,
rate limits and the spend ledger on a real Redis, and (e) the gateway answering every request
from its response cache on a real Redis, each at concurrency 1, 16 and 64 (req/s, p50/p99,
p50 added over direct, CPU ms per request of the proxy process), plus the proxy's RSS, its
start-up time (spawn to first 200 on /healthz) and streaming time-to-first-byte at c=1. The
proxies under test are pinned to cpu 0; this process, the load generator (``wrk`` when
installed, else ``loadgen.py``) and the emulator to cpu 1. Runs vary by 10-20 % at c>=16, so
only ratios within one run mean something: the targets are measured point by point,
interleaved, so a neighbour's load falls on all of them alike. Every process is started here,
bounded in time and stopped."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from types import FrameType

import uvloop

from loadtests.bench import procfs
from loadtests.bench.loadgen import LoadResult, run_load
from loadtests.bench.payload import CHAT_PATH, chat_body_template
from loadtests.bench.report import full_report
from loadtests.bench.results import Point, TargetResult, checks, verdict
from loadtests.bench.targets import Target, emulator, served_model, start_proxy
from loadtests.bench.wrk import find_wrk, run_wrk

CONCURRENCY = (1, 16, 64)
WARMUP_S = 1
PROXY_CPUS = {0}
LOAD_CPUS = {1}


class Driver:
    """Runs one measurement point with wrk, or with the built-in load generator."""

    def __init__(self, wrk: str | None, workdir: Path) -> None:
        self.wrk = wrk
        self.workdir = workdir
        self.tool = "wrk" if wrk else "loadgen"

    def load(self, target: Target, template: str, concurrency: int, seconds: int) -> LoadResult:
        """Closed-loop POSTs of ``template`` to ``target`` for ``seconds`` (no warm-up)."""
        url, key = target.origin + CHAT_PATH, target.api_key
        if self.wrk is None:
            job = run_load(
                url, template, concurrency=concurrency, duration_s=seconds, warmup_s=0, api_key=key
            )
            return uvloop.run(job)
        body_file = self.workdir / f"body-{abs(hash(template))}.json"
        if not body_file.exists():
            body_file.write_text(template)
        return run_wrk(
            self.wrk, url, body_file, concurrency=concurrency, duration_s=seconds, api_key=key
        )

    def ttfb_p50_ms(self, target: Target, template: str, seconds: int) -> float:
        """Streaming time to the first body chunk, p50 at c=1, after a warm-up."""
        job = run_load(
            target.origin + CHAT_PATH,
            template,
            concurrency=1,
            duration_s=seconds,
            warmup_s=WARMUP_S,
            first_byte=True,
            api_key=target.api_key,
        )
        return uvloop.run(job).p50_ms


def measure_point(driver: Driver, target: Target, concurrency: int, seconds: int) -> Point:
    """Warm up, then measure ``target`` at ``concurrency``; CPU per request of its proxy."""
    template = chat_body_template(target.model, stream=False, cacheable=target.cache_hits)
    driver.load(target, template, concurrency, WARMUP_S)
    proxy = target.proxy
    cpu_before = procfs.cpu_seconds(proxy.pid) if proxy else 0.0
    load = driver.load(target, template, concurrency, seconds)
    cpu_ms: float | None = None
    if proxy:
        used_ms = (procfs.cpu_seconds(proxy.pid) - cpu_before) * 1000.0
        cpu_ms = used_ms / max(load.requests + load.errors, 1)
    print(f"  {target.name} c={concurrency}: {load.rps:.0f} req/s", file=sys.stderr, flush=True)
    return Point(load, cpu_ms)


def interleaved(targets: list[Target], rounds: int) -> Iterator[Target]:
    """Each target once per round, the order reversed every other round, so drift in the
    machine's load falls on every target alike."""
    for index in range(rounds):
        yield from (targets if index % 2 == 0 else reversed(targets))


def measure_all(
    driver: Driver, targets: list[Target], seconds: int, rounds: int
) -> list[TargetResult]:
    """Every figure for every target, point by point, interleaved; of several rounds, the
    least disturbed one (highest req/s; lowest TTFB) counts."""
    best: dict[tuple[str, int], Point] = {}
    for concurrency in CONCURRENCY:
        for target in interleaved(targets, rounds):
            point = measure_point(driver, target, concurrency, seconds)
            kept = best.get((target.name, concurrency))
            if kept is None or point.load.rps > kept.load.rps:
                best[target.name, concurrency] = point
    ttfb: dict[str, float] = {}
    for target in interleaved(targets, rounds):
        template = chat_body_template(target.model, stream=True, cacheable=target.cache_hits)
        value = driver.ttfb_p50_ms(target, template, seconds)
        ttfb[target.name] = min(value, ttfb.get(target.name, math.inf))
    return [
        TargetResult(
            name=t.name,
            points=tuple(best[t.name, c] for c in CONCURRENCY),
            ttfb_p50_ms=ttfb[t.name],
            rss_mib=procfs.rss_mib(t.proxy.pid) if t.proxy else None,
            startup_s=t.proxy.ready_after_s if t.proxy else None,
        )
        for t in targets
    ]


def run_targets(
    args: argparse.Namespace, workdir: Path, upstream: str, pinned: bool
) -> list[TargetResult]:
    """Start the proxy targets (on cpu 0 if ``pinned``), one after the other so start-up is
    timed on a quiet machine, then measure them and direct against ``upstream``."""
    driver = Driver(None if args.builtin_loadgen else find_wrk(), workdir)
    model = args.model or served_model(upstream)
    print(f"load: {driver.tool}; model: {model}; pinned: {pinned}", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        targets = [Target("direct", upstream, model, None)]
        for name in args.targets:
            cpus = PROXY_CPUS if pinned else None
            targets.append(start_proxy(stack, name, upstream, model, workdir, cpus))
        return measure_all(driver, targets, _seconds(args), args.rounds)


def _seconds(args: argparse.Namespace) -> int:
    return 2 if args.quick else int(args.duration)


def _jsonable(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def write_json(path: Path, results: list[TargetResult], args: argparse.Namespace) -> None:
    """The raw results, the settings and each proxy target's verdict as JSON."""
    by_name = {t.name: t for t in results}
    found = {
        t.name: [asdict(c) for c in checks(t, by_name["floor"], by_name["direct"])]
        for t in results
        if t.name != "direct" and "floor" in by_name
    }
    payload = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpus": len(procfs.usable_cpus()),
        "duration_s": _seconds(args),
        "rounds": args.rounds,
        "targets": [asdict(t) for t in results],
        "checks": found,
    }
    path.write_text(json.dumps(_jsonable(payload), indent=2) + "\n")


def _alarm(budget_s: int) -> Callable[[], object]:
    """Raise TimeoutError in the main thread after ``budget_s``; returns the canceller."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"overhead benchmark took more than {budget_s} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(budget_s)
    return lambda: signal.alarm(0)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print the report; with ``--check``, 1 if a target missed."""
    if "floor" not in args.targets:
        raise SystemExit("--targets must include floor: every figure is a ratio to it")
    pinned = procfs.usable_cpus() >= PROXY_CPUS | LOAD_CPUS
    if pinned:
        os.sched_setaffinity(0, LOAD_CPUS)
    per_point = _seconds(args) + 2 * WARMUP_S + 20
    targets = len(args.targets) + 1
    cancel = _alarm((len(CONCURRENCY) + 1) * per_point * targets * args.rounds + 120)
    try:
        with tempfile.TemporaryDirectory(prefix="tg-bench-") as tmp:
            workdir = Path(tmp)
            with contextlib.ExitStack() as stack:
                upstream = args.upstream or stack.enter_context(emulator(workdir))
                results = run_targets(args, workdir, upstream.rstrip("/"), pinned)
    finally:
        cancel()
    print(full_report(results))
    if args.json:
        write_json(Path(args.json), results, args)
    by_name = {t.name: t for t in results}
    missed = [
        t.name
        for t in results
        if t.name not in ("direct", "floor")
        and verdict(checks(t, by_name["floor"], by_name["direct"])) != "PASS"
    ]
    return 1 if missed and args.check else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``overhead`` subcommand's flags."""
    parser.add_argument("--duration", type=int, default=5, help="seconds per point (default 5)")
    parser.add_argument("--quick", action="store_true", help="2 s per point")
    parser.add_argument("--json", metavar="PATH", help="also write the raw results here")
    parser.add_argument(
        "--targets",
        type=lambda s: [t for t in s.split(",") if t],
        default=["floor", "gateway", "accounting", "cache"],
        help="proxy targets after direct, comma-separated (default floor,gateway,accounting,cache)",
    )
    parser.add_argument("--upstream", help="use this running upstream instead of the emulator")
    parser.add_argument("--model", help="model name to send direct and to the floor")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every point this many times, interleaved; keep the best (default 1)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target misses")
    parser.add_argument(
        "--builtin-loadgen", action="store_true", help="use loadgen.py even if wrk is installed"
    )
