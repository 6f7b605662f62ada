"""The seam between the dispatcher and the upstreams: what a call is, what comes back, and
how an upstream fails.

Failures are translated here, at the boundary: ``UpstreamError`` means "this deployment did
not serve the request and nothing reached the client", so the dispatcher may try the next one;
``UpstreamRejected`` is the upstream saying the *request* is wrong (a 4xx other than 401, 403,
408, 429), which is passed to the client unchanged instead of being retried elsewhere.
Imports: stdlib and ``gateway.config``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gateway.config import Deployment

Endpoint = Literal["chat/completions", "completions", "embeddings"]
MAX_RETRY_AFTER_S = 3600.0
FailureKind = Literal["connect", "timeout", "status", "rate_limited", "protocol", "saturated"]


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the client sent it, plus what routing parsed out of it."""

    endpoint: Endpoint
    body: bytes
    parsed: dict[str, Any]
    stream: bool
    client_wants_usage: bool
    request_id: str


@dataclass(slots=True)
class Usage:
    """Token counts as the upstream reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(slots=True)
class Reply:
    """A complete, successful non-streaming answer."""

    body: bytes
    usage: Usage | None
    status: int = 200
    content_type: str = "application/json"


class Stream(Protocol):
    """An open, successful stream: iterate it for SSE bytes ready for the client.

    ``usage`` is known once the upstream has reported it (at the end). ``aclose`` releases
    the upstream connection; called early, it aborts the upstream request.
    """

    @property
    def usage(self) -> Usage | None:
        """Token counts, once the upstream has sent them."""
        ...

    def __aiter__(self) -> AsyncIterator[bytes]:
        """The events, in order, as they arrive."""
        ...

    async def aclose(self) -> None:
        """Release (or abort) the upstream request; safe to call twice."""
        ...


class UpstreamError(Exception):
    """The deployment failed before any byte reached the client; another may be tried."""

    def __init__(
        self,
        deployment: str,
        kind: FailureKind,
        detail: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{deployment}: {detail}")
        self.deployment, self.kind, self.detail = deployment, kind, detail
        self.status, self.retry_after_s = status, retry_after_s


class UpstreamRejected(Exception):
    """The upstream refused the request itself (4xx); relayed to the client as it came."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        super().__init__(f"upstream rejected the request with {status}")
        self.status, self.body, self.content_type = status, body, content_type


class StreamBroken(Exception):
    """The upstream failed after the stream had started; the client gets one error event."""


class Upstream(Protocol):
    """A client for one kind of deployment (OpenAI-compatible, or via litellm)."""

    async def send(self, deployment: Deployment, call: Call) -> Reply:
        """Make a non-streaming call."""
        ...

    async def open_stream(self, deployment: Deployment, call: Call) -> Stream:
        """Start a streaming call; raise UpstreamError if it fails before the first byte."""
        ...


def classify_status(
    deployment: str, status: int, body: bytes, content_type: str, retry_after: str | None
) -> Exception:
    """Map an upstream's non-2xx status to the error the dispatcher acts on."""
    detail = summarize(body)
    if status == 429:
        return UpstreamError(
            deployment,
            "rate_limited",
            f"rate limited (429): {detail}",
            status=status,
            retry_after_s=parse_retry_after(retry_after),
        )
    if status in (401, 403):
        # Our credentials for this deployment are wrong: not the client's fault.
        return UpstreamError(
            deployment, "status", f"rejected the gateway's credentials ({status})", status=status
        )
    if status == 408 or status >= 500:
        return UpstreamError(deployment, "status", f"answered {status}: {detail}", status=status)
    return UpstreamRejected(status, body, content_type)


def summarize(body: bytes, limit: int = 200) -> str:
    """A short, single-line excerpt of an upstream error body for messages and logs."""
    text = body[: limit * 2].decode("utf-8", "replace")
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form), at most an hour.

    None if absent, an HTTP date, or not a finite number (``inf`` would bench a deployment
    for the life of the process).
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)
