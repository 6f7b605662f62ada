"""classify_status: which upstream statuses let the dispatcher try another deployment and
which are the client's own fault; parse_retry_after reads delta-seconds only."""

from __future__ import annotations

import pytest

from gateway.upstreams.base import (
    UpstreamError,
    UpstreamRejected,
    classify_status,
    parse_retry_after,
    summarize,
)

BODY = b'{"error": {"message": "slow down", "type": "rate_limit"}}'


def test_429_is_a_rate_limit_with_retry_after_parsed() -> None:
    err = classify_status("paid", 429, BODY, "application/json", "7")
    assert isinstance(err, UpstreamError)
    assert (err.deployment, err.kind, err.status, err.retry_after_s) == (
        "paid",
        "rate_limited",
        429,
        7.0,
    )
    assert "slow down" in err.detail


def test_429_without_retry_after_has_no_wait() -> None:
    err = classify_status("paid", 429, b"", "text/plain", None)
    assert isinstance(err, UpstreamError)
    assert err.retry_after_s is None


@pytest.mark.parametrize("status", [401, 403])
def test_credential_failures_are_ours_not_the_clients(status: int) -> None:
    secret_echo = b'{"error": "invalid key sk-live-123"}'
    err = classify_status("paid", status, secret_echo, "application/json", None)
    assert isinstance(err, UpstreamError)
    assert (err.kind, err.status) == ("status", status)
    assert "sk-live-123" not in str(err)


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504, 599])
def test_timeouts_and_server_errors_let_another_deployment_try(status: int) -> None:
    err = classify_status("local-a", status, b"Bad Gateway", "text/plain", "3")
    assert isinstance(err, UpstreamError)
    assert (err.kind, err.status, err.retry_after_s) == ("status", status, None)
    assert "Bad Gateway" in err.detail


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_other_4xx_is_the_request_rejected_and_relayed_as_is(status: int) -> None:
    body = b'{"error": {"message": "context too long", "param": "messages"}}'
    err = classify_status("local-a", status, body, "application/json; charset=utf-8", None)
    assert isinstance(err, UpstreamRejected)
    assert (err.status, err.body, err.content_type) == (
        status,
        body,
        "application/json; charset=utf-8",
    )


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("120", 120.0, id="seconds"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("1.5", 1.5, id="float"),
        pytest.param(" 3 ", 3.0, id="padded"),
        pytest.param("-5", 0.0, id="negative-is-zero"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", None, id="http-date"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("inf", None, id="infinity"),
        pytest.param("1e999", None, id="overflows-to-infinity"),
        pytest.param("nan", None, id="not-a-number"),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_summarize_makes_one_short_line() -> None:
    assert summarize(b"  a\n\tb  c ") == "a b c"
    assert summarize(b"x" * 300, limit=10) == "x" * 10 + "..."
    assert summarize(b"\xff ok") == "\ufffd ok"
