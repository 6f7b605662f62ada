"""Parsing what wrk_post.lua makes wrk print (loadtests/bench/wrk.py)."""

from __future__ import annotations

import pytest

from loadtests.bench.wrk import WrkError, parse_wrk_output

WRK_OUTPUT = """\
Running 5s test @ http://127.0.0.1:8100/v1/chat/completions
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.97ms  318.44us   9.21ms   80.03%
    Req/Sec     8.12k   402.31     8.61k    88.00%
  40388 requests in 5.00s, 21.30MB read
Requests/sec:   8077.01
Transfer/sec:      4.26MB
BENCH requests 40388
BENCH duration_us 5000350
BENCH errors 388
BENCH mean_us 1967.1
BENCH p50_us 1828
BENCH p90_us 2454
BENCH p99_us 3975
"""


def test_parse_reads_percentiles_in_milliseconds_and_rate_of_good_responses() -> None:
    result = parse_wrk_output(WRK_OUTPUT, concurrency=16)
    assert result.concurrency == 16
    assert result.requests == 40000
    assert result.errors == 388
    assert result.duration_s == pytest.approx(5.00035)
    assert result.rps == pytest.approx(40000 / 5.00035)
    assert (result.p50_ms, result.p90_ms, result.p99_ms) == (1.828, 2.454, 3.975)
    assert result.tool == "wrk"


def test_parse_fails_loudly_when_the_lua_script_printed_nothing() -> None:
    with pytest.raises(WrkError, match="lacks"):
        parse_wrk_output("Running 5s test @ http://127.0.0.1:1/\n", concurrency=1)
