"""Deployments of kind ``litellm``: providers with another protocol (Anthropic Messages,
Bedrock, Vertex, ...), translated by litellm. The only module that imports litellm.

litellm is imported once, when the first such deployment is built (not on the hot path, and
not at all when no deployment needs it: it costs seconds of start-up). Its price map is used
offline (``LITELLM_LOCAL_MODEL_COST_MAP``), its own retries are off (the dispatcher falls
back across deployments), and its exceptions are translated here into the dispatcher's.
Streams are re-emitted as OpenAI chunks through the same usage tap as native streams.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator, AsyncIterator
from types import ModuleType
from typing import Any

from gateway.config import Deployment
from gateway.upstreams.base import (
    Call,
    Reply,
    StreamBroken,
    UpstreamError,
    Usage,
    classify_status,
)
from gateway.upstreams.sse import DONE, UsageTap
from gateway.upstreams.usage import usage_from_json

# Fields the gateway passes itself, or that must not reach litellm as provider params.
_OWN_FIELDS = frozenset({"model", "messages", "prompt", "input", "stream", "stream_options"})


def load_litellm() -> ModuleType:
    """Import litellm with its network price-map fetch disabled."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


class LiteLLMUpstream:
    """Calls ``litellm.acompletion`` / ``atext_completion`` / ``aembedding``."""

    def __init__(self) -> None:
        self._litellm = load_litellm()

    async def send(self, deployment: Deployment, call: Call) -> Reply:
        """Non-streaming call, answered as OpenAI JSON."""
        response = await self._call(deployment, call, stream=False)
        body = response.model_dump_json().encode()
        return Reply(body=body, usage=usage_from_json(body))

    async def open_stream(self, deployment: Deployment, call: Call) -> LiteLLMStream:
        """Streaming chat; the first chunk is awaited here so early failures fall back."""
        response = await self._call(deployment, call, stream=True)
        chunks: AsyncIterator[Any] = response.__aiter__()
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = None
        except Exception as exc:
            raise self._translate(deployment, exc) from exc
        return LiteLLMStream(deployment, first, chunks, UsageTap(call.client_wants_usage), self)

    async def _call(self, deployment: Deployment, call: Call, *, stream: bool) -> Any:
        params = {k: v for k, v in call.parsed.items() if k not in _OWN_FIELDS}
        common: dict[str, Any] = {
            "model": deployment.model,
            "api_base": deployment.base_url,
            "api_key": deployment.api_key(),
            "timeout": deployment.timeouts.read_s,
            "num_retries": 0,
            "max_retries": 0,
            "drop_params": True,
        }
        lit = self._litellm
        try:
            if call.endpoint == "embeddings":
                return await lit.aembedding(input=call.parsed["input"], **common, **params)
            if call.endpoint == "completions":
                return await lit.atext_completion(prompt=call.parsed["prompt"], **common, **params)
            if stream:
                params["stream_options"] = {"include_usage": True}
            return await lit.acompletion(
                messages=call.parsed["messages"], stream=stream, **common, **params
            )
        except Exception as exc:
            raise self._translate(deployment, exc) from exc

    def _translate(self, deployment: Deployment, exc: Exception) -> Exception:
        errors = self._litellm.exceptions
        if isinstance(exc, errors.Timeout):
            return UpstreamError(deployment.name, "timeout", f"timed out: {_short(exc)}")
        if isinstance(exc, errors.APIConnectionError):
            return UpstreamError(deployment.name, "connect", f"cannot connect: {_short(exc)}")
        status = getattr(exc, "status_code", None)
        if isinstance(status, int):
            body = json.dumps(
                {
                    "error": {
                        "message": _short(exc),
                        "type": type(exc).__name__,
                        "param": None,
                        "code": None,
                    }
                }
            ).encode()
            headers = getattr(getattr(exc, "response", None), "headers", None) or {}
            return classify_status(
                deployment.name, status, body, "application/json", headers.get("retry-after")
            )
        return UpstreamError(deployment.name, "protocol", f"{type(exc).__name__}: {_short(exc)}")


class LiteLLMStream:
    """litellm's chunk objects, relayed as OpenAI SSE events."""

    def __init__(
        self,
        deployment: Deployment,
        first: Any,
        chunks: AsyncIterator[Any],
        tap: UsageTap,
        owner: LiteLLMUpstream,
    ) -> None:
        self._deployment, self._first, self._chunks = deployment, first, chunks
        self._tap, self._owner = tap, owner
        self._events = self._run()

    @property
    def usage(self) -> Usage | None:
        """Token counts from the final chunk, once it has arrived."""
        return self._tap.usage

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events

    async def aclose(self) -> None:
        """Stop relaying and close litellm's stream."""
        await self._events.aclose()
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            await close()

    async def _run(self) -> AsyncGenerator[bytes, None]:
        chunk = self._first
        try:
            while chunk is not None:
                out = self._tap.feed(b"data: " + chunk.model_dump_json().encode() + b"\n\n")
                if out:
                    yield out
                chunk = await anext(self._chunks, None)
        except Exception as exc:
            err = self._owner._translate(self._deployment, exc)
            raise StreamBroken(f"deployment {self._deployment.name}: {err}") from exc
        yield DONE


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text[:limit]
