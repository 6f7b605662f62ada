"""Accounting's 429s and the x-ratelimit-* headers, as OpenAI shapes them."""

from __future__ import annotations

import pytest

from gateway.accounting.model import RateState, Verdict
from gateway.accounting.refusals import QuotaExceeded, RateLimited, duration, refusal


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250ms"), (1.5, "1.5s"), (6.0, "6s"), (90.0, "1m30s"), (360.0, "6m0s")],
)
def test_reset_durations_use_openai_format(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_a_budget_refusal_is_insufficient_quota_naming_the_budget() -> None:
    verdict = Verdict(
        admitted=False,
        refusal="budget",
        detail="team 'research' daily budget of $5.000000 is used up",
        retry_after_s=3600.2,
    )
    err = refusal(verdict)
    assert isinstance(err, QuotaExceeded)
    assert err.status == 429
    body = err.body()["error"]
    assert isinstance(body, dict)
    assert body["type"] == "insufficient_quota"
    assert "team 'research' daily budget" in body["message"]
    assert err.headers["Retry-After"] == "3601"


def test_a_rate_refusal_carries_retry_after_and_window_headers() -> None:
    verdict = Verdict(
        admitted=False,
        refusal="tokens",
        detail="key 'key_1' limit of 1000 tokens per minute reached",
        retry_after_s=0.2,
        tokens=RateState(limit=1000, remaining=0, reset_s=12.0),
    )
    err = refusal(verdict)
    assert isinstance(err, RateLimited)
    assert err.error_type == "tokens"
    assert err.headers["Retry-After"] == "1"
    assert err.headers["x-ratelimit-limit-tokens"] == "1000"
    assert err.headers["x-ratelimit-remaining-tokens"] == "0"
    assert err.headers["x-ratelimit-reset-tokens"] == "12s"
