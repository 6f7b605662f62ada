"""Percentiles and summaries of the built-in load generator (loadtests/bench/loadgen.py)."""

from __future__ import annotations

import json
import math

import pytest

from loadtests.bench.loadgen import summarize
from loadtests.bench.payload import COUNTER_MARK, chat_body_template, split_template
from loadtests.percentiles import interpolated as percentile


def test_percentile_of_no_values_is_nan() -> None:
    assert math.isnan(percentile([], 50))


def test_percentile_of_one_value_is_that_value_at_any_rank() -> None:
    assert percentile([7.0], 0) == percentile([7.0], 50) == percentile([7.0], 100) == 7.0


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0, 1.0), (50, 3.0), (100, 5.0), (25, 2.0), (90, 4.6), (99, 4.96)],
)
def test_percentile_interpolates_linearly_between_ranks(q: float, expected: float) -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], q) == pytest.approx(expected)


def test_percentile_rejects_a_rank_outside_0_to_100() -> None:
    with pytest.raises(ValueError, match="out of range"):
        percentile([1.0], 101)


def test_summarize_sorts_latencies_and_reports_milliseconds_and_rate() -> None:
    result = summarize(
        [0.003, 0.001, 0.002, 0.004], concurrency=4, errors=1, duration_s=2.0, tool="loadgen"
    )
    assert result.requests == 4
    assert result.errors == 1
    assert result.rps == 2.0
    assert result.p50_ms == pytest.approx(2.5)
    assert result.p99_ms == pytest.approx(3.97)


def test_body_template_splits_around_the_counter_into_valid_json_per_request() -> None:
    template = chat_body_template("bench-qwen", stream=True)
    head, tail = split_template(template)
    body = (head + b"42" + tail).decode()
    assert COUNTER_MARK not in body
    assert '"model":"bench-qwen"' in body
    assert '"stream":true' in body
    assert '"max_tokens":16' in body


def test_the_cacheable_template_varies_only_the_user_field() -> None:
    head, tail = split_template(chat_body_template("bench-qwen", stream=False, cacheable=True))
    first, second = (json.loads(head + str(n).encode() + tail) for n in (1, 2))
    assert first["user"] != second["user"]
    assert {**first, "user": ""} == {**second, "user": ""}
