"""The errors accounting answers with, and the ``x-ratelimit-*`` headers.

429 ``insufficient_quota`` for a budget that cannot fit the request, 429
``rate_limit_exceeded`` for RPM, TPM and parallel limits (with ``Retry-After``), 503 when the
store is down and budgets fail closed. The header names and duration format (``1m30s``,
``250ms``) follow OpenAI's. Imports: ``gateway.errors`` and ``model``.
"""

from __future__ import annotations

import math

from gateway.accounting.model import RateState, Verdict
from gateway.errors import GatewayError


class QuotaExceeded(GatewayError):
    """A key's or team's budget cannot fit the request's worst-case cost."""

    status, error_type, code = 429, "insufficient_quota", "insufficient_quota"


class RateLimited(GatewayError):
    """A key's or team's RPM, TPM or parallel-request limit is reached."""

    status, error_type, code = 429, "requests", "rate_limit_exceeded"


class AccountingUnavailable(GatewayError):
    """The accounting store is unreachable and this gateway is set to fail closed."""

    status, error_type, code = 503, "server_error", "accounting_unavailable"


def refusal(verdict: Verdict) -> GatewayError:
    """The error for a verdict that did not admit the request."""
    err: GatewayError
    if verdict.refusal == "budget":
        err = QuotaExceeded(f"budget exceeded: {verdict.detail}")
    else:
        err = RateLimited(f"rate limit reached: {verdict.detail}")
        if verdict.refusal == "tokens":
            err.error_type = "tokens"
    if verdict.retry_after_s is not None:
        err.headers["Retry-After"] = str(max(1, math.ceil(verdict.retry_after_s)))
    for name, value in rate_headers(verdict):
        err.headers[name.decode()] = value.decode()
    return err


def rate_headers(verdict: Verdict) -> list[tuple[bytes, bytes]]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` for the tightest windows."""
    headers: list[tuple[bytes, bytes]] = []
    for kind, state in (("requests", verdict.requests), ("tokens", verdict.tokens)):
        if state is not None:
            headers += _window(kind, state)
    return headers


def _window(kind: str, state: RateState) -> list[tuple[bytes, bytes]]:
    return [
        (f"x-ratelimit-limit-{kind}".encode(), str(state.limit).encode()),
        (f"x-ratelimit-remaining-{kind}".encode(), str(max(0, state.remaining)).encode()),
        (f"x-ratelimit-reset-{kind}".encode(), duration(state.reset_s).encode()),
    ]


def duration(seconds: float) -> str:
    """OpenAI's reset format: ``6m0s``, ``1.5s``, ``250ms``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text
