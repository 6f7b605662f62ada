"""Run ``wrk`` with ``wrk_post.lua`` and parse the latency distribution it prints.

``wrk`` (C, epoll) drives far more requests per core than any Python client, so the proxy
under test, not the load generator, is what saturates. ``find_wrk`` returns None when it is
not installed and the benchmark falls back to ``loadgen.py``.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

from loadtests.bench.loadgen import LoadResult

LUA_SCRIPT = Path(__file__).with_name("wrk_post.lua")
EXTRA_TIMEOUT_S = 20.0


class WrkError(RuntimeError):
    """wrk failed or printed no ``BENCH`` lines; the message carries its output."""


def find_wrk() -> str | None:
    """The path of the ``wrk`` binary, or None."""
    return shutil.which("wrk")


def parse_wrk_output(text: str, *, concurrency: int) -> LoadResult:
    """A ``LoadResult`` from the ``BENCH <key> <value>`` lines ``wrk_post.lua`` prints."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "BENCH":
            values[parts[1]] = float(parts[2])
    missing = {"requests", "duration_us", "errors", "p50_us", "p90_us", "p99_us"} - values.keys()
    if missing:
        raise WrkError(f"wrk output lacks {sorted(missing)}:\n{text[-2000:]}")
    duration_s = values["duration_us"] / 1e6
    errors = int(values["errors"])
    good = max(int(values["requests"]) - errors, 0)
    return LoadResult(
        concurrency=concurrency,
        requests=good,
        errors=errors,
        duration_s=duration_s,
        rps=good / duration_s if duration_s > 0 else 0.0,
        p50_ms=values["p50_us"] / 1000.0 if good else math.nan,
        p90_ms=values["p90_us"] / 1000.0 if good else math.nan,
        p99_ms=values["p99_us"] / 1000.0 if good else math.nan,
        tool="wrk",
    )


def run_wrk(
    wrk: str,
    url: str,
    body_file: Path,
    *,
    concurrency: int,
    duration_s: int,
    api_key: str | None = None,
) -> LoadResult:
    """POST the body in ``body_file`` to ``url`` for ``duration_s`` s with ``concurrency``
    connections on one wrk thread."""
    args = [
        wrk,
        "-t1",
        f"-c{concurrency}",
        f"-d{max(duration_s, 1)}s",
        "--timeout",
        "10s",
        *(["-H", f"Authorization: Bearer {api_key}"] if api_key else []),
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(body_file),
    ]
    try:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=duration_s + EXTRA_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish in {duration_s + EXTRA_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return parse_wrk_output(done.stdout + done.stderr, concurrency=concurrency)
