"""OpenAI-compatible deployments (vLLM, SGLang, llama.cpp, OpenAI, DashScope, OpenRouter...)
proxied natively over one pooled, keep-alive ``aiohttp.ClientSession`` per process.

aiohttp was chosen by measurement: on this machine kind plain ``httpx.AsyncClient`` collapses
to ~550 req/s where aiohttp passthrough does 3-5k (DESIGN.md). Bodies go upstream as the
client sent them, with ``model`` spliced (see ``body.py``) and the gateway's request id as
``X-Request-Id``; streams are relayed event by event. Imports: aiohttp and ``gateway.upstreams``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

import aiohttp

from gateway.config import Deployment
from gateway.upstreams.base import (
    Call,
    Reply,
    StreamBroken,
    UpstreamError,
    Usage,
    classify_status,
)
from gateway.upstreams.body import rewrite_body
from gateway.upstreams.sse import UsageTap
from gateway.upstreams.usage import usage_from_json

_CONNECT_ERRORS = (aiohttp.ClientConnectionError, ConnectionError, OSError)


class OpenAICompatUpstream:
    """Calls OpenAI-compatible deployments over a shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._targets: dict[str, _Target] = {}

    async def send(self, deployment: Deployment, call: Call) -> Reply:
        """Non-streaming call: the upstream's JSON is returned byte for byte."""
        body = rewrite_body(call.body, call.parsed, deployment.model, want_usage=False)
        resp = await self._post(deployment, call, body)
        try:
            data = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise as_upstream_error(deployment, exc) from exc
        finally:
            resp.release()
        if resp.status != 200:
            raise _status_error(deployment, resp, data)
        return Reply(body=data, usage=usage_from_json(data), content_type=resp.content_type)

    async def open_stream(self, deployment: Deployment, call: Call) -> SSERelay:
        """Streaming call; errors before the first byte are raised as UpstreamError."""
        body = rewrite_body(call.body, call.parsed, deployment.model, want_usage=True)
        resp = await self._post(deployment, call, body)
        if resp.status != 200:
            try:
                data = await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                data = b""
            finally:
                resp.release()
            raise _status_error(deployment, resp, data)
        return SSERelay(deployment, resp, UsageTap(call.client_wants_usage))

    async def _post(
        self, deployment: Deployment, call: Call, body: bytes
    ) -> aiohttp.ClientResponse:
        target = self._targets.get(deployment.name)
        if target is None:
            target = self._targets[deployment.name] = _Target.of(deployment)
        try:
            return await self._session.post(
                target.urls[call.endpoint],
                data=body,
                # vLLM takes X-Request-Id as its own request id: logs on both sides match.
                headers={**target.headers, "X-Request-Id": call.request_id},
                timeout=target.timeout,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise as_upstream_error(deployment, exc) from exc


@dataclass(frozen=True, slots=True)
class _Target:
    """What every request to one deployment shares, built once."""

    urls: dict[str, str]
    headers: dict[str, str]
    timeout: aiohttp.ClientTimeout

    @classmethod
    def of(cls, deployment: Deployment) -> _Target:
        headers = {"Content-Type": "application/json"}
        key = deployment.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        endpoints = ("chat/completions", "completions", "embeddings")
        return cls(
            urls={e: f"{deployment.base_url}/{e}" for e in endpoints},
            headers=headers,
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=deployment.timeouts.connect_s,
                sock_read=deployment.timeouts.read_s,
            ),
        )


class SSERelay:
    """An upstream SSE response relayed event by event, its usage read on the way."""

    def __init__(self, deployment: Deployment, resp: aiohttp.ClientResponse, tap: UsageTap) -> None:
        self._deployment, self._resp, self._tap = deployment, resp, tap
        self._events = self._run()

    @property
    def usage(self) -> Usage | None:
        """Token counts from the upstream's usage chunk, once it has arrived."""
        return self._tap.usage

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events

    async def aclose(self) -> None:
        """Stop relaying; an unfinished upstream response is aborted, not pooled."""
        await self._events.aclose()
        self._resp.release()

    async def _run(self) -> AsyncGenerator[bytes, None]:
        try:
            async for data in self._resp.content.iter_any():
                out = self._tap.feed(data)
                if out:
                    yield out
            tail = self._tap.flush()
            if tail:
                yield tail
        except (aiohttp.ClientError, TimeoutError) as exc:
            name = self._deployment.name
            raise StreamBroken(f"deployment {name} broke off the stream: {exc!r}") from exc
        finally:
            self._resp.release()


def _status_error(deployment: Deployment, resp: aiohttp.ClientResponse, data: bytes) -> Exception:
    return classify_status(
        deployment.name, resp.status, data, resp.content_type, resp.headers.get("Retry-After")
    )


def as_upstream_error(deployment: Deployment, exc: BaseException) -> UpstreamError:
    """Translate a client-side failure into the dispatcher's vocabulary."""
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts subclass TimeoutError
        return UpstreamError(deployment.name, "timeout", f"timed out ({type(exc).__name__})")
    if isinstance(exc, _CONNECT_ERRORS):
        return UpstreamError(deployment.name, "connect", f"cannot connect: {exc}")
    return UpstreamError(deployment.name, "protocol", f"{type(exc).__name__}: {exc}")
