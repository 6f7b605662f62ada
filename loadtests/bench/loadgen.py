"""Built-in closed-loop load generator (asyncio + one aiohttp session) and latency statistics.

N workers each send a request, wait for the whole response, and send the next; the first
``warmup_s`` seconds are not counted, and only requests that start and end inside the
measured window are. Used for streaming time-to-first-byte and as the fallback when ``wrk``
is missing. Kept lean (pre-encoded bodies, no JSON parsing) so it is not the bottleneck.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from loadtests.bench.payload import split_template
from loadtests.percentiles import interpolated

REQUEST_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class LoadResult:
    """One measurement point: throughput, latency percentiles (ms) and failures."""

    concurrency: int
    requests: int
    errors: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    tool: str


def summarize(
    latencies_s: Sequence[float], *, concurrency: int, errors: int, duration_s: float, tool: str
) -> LoadResult:
    """A ``LoadResult`` from raw latencies in seconds over a window of ``duration_s``."""
    ordered = sorted(latencies_s)
    return LoadResult(
        concurrency=concurrency,
        requests=len(ordered),
        errors=errors,
        duration_s=duration_s,
        rps=len(ordered) / duration_s if duration_s > 0 else 0.0,
        p50_ms=interpolated(ordered, 50) * 1000.0,
        p90_ms=interpolated(ordered, 90) * 1000.0,
        p99_ms=interpolated(ordered, 99) * 1000.0,
        tool=tool,
    )


async def _worker(
    session: aiohttp.ClientSession,
    url: str,
    body: tuple[bytes, bytes],
    counter: itertools.count[int],
    window: tuple[float, float],
    latencies: list[float],
    errors: list[int],
    first_byte: bool,
    headers: dict[str, str],
) -> None:
    head, tail = body
    measure_from, stop_at = window
    clock = time.perf_counter
    while True:
        start = clock()
        if start >= stop_at:
            return
        data = head + str(next(counter)).encode() + tail
        ttfb = 0.0
        try:
            async with session.post(url, data=data, headers=headers) as resp:
                if first_byte:
                    await resp.content.readany()
                    ttfb = clock() - start
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        end = clock()
        if start >= measure_from and end <= stop_at:
            if status == 200:
                latencies.append(ttfb if first_byte else end - start)
            else:
                errors.append(status)


async def run_load(
    url: str,
    body_template: str,
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    first_byte: bool = False,
    api_key: str | None = None,
) -> LoadResult:
    """Drive ``url`` with ``concurrency`` closed-loop workers; latency to first byte if asked.

    With ``first_byte`` the latency is the time from sending the request to the first body
    chunk (streaming time-to-first-byte); otherwise to the end of the response.
    """
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    latencies: list[float] = []
    errors: list[int] = []
    counter = itertools.count()
    body = split_template(body_template)
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        now = time.perf_counter()
        window = (now + warmup_s, now + warmup_s + duration_s)
        workers = [
            _worker(session, url, body, counter, window, latencies, errors, first_byte, headers)
            for _ in range(concurrency)
        ]
        await asyncio.gather(*workers)
    return summarize(
        latencies,
        concurrency=concurrency,
        errors=len(errors),
        duration_s=duration_s,
        tool="loadgen-ttfb" if first_byte else "loadgen",
    )
