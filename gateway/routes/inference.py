"""POST /v1/chat/completions, /v1/completions and /v1/embeddings: the hot path.

One raw ASGI handler class serves all three: read the body (bounded), parse what routing
needs, hand it to the dispatcher, relay the answer (JSON as the upstream sent it, or SSE event
by event). A client that disconnects cancels the upstream call. Imports: ``gateway``.
"""

from __future__ import annotations

import asyncio
import logging

from gateway import metrics
from gateway.asgi import (
    EVENT_STREAM,
    DisconnectWatch,
    Receive,
    Scope,
    Send,
    read_body,
    request_id,
    send_bytes,
    send_error,
)
from gateway.dispatch import Dispatcher, OpenStream
from gateway.errors import GatewayError, ModelNotFound, UpstreamFailed
from gateway.features import RequestFeatures, parse_request
from gateway.upstreams.base import Call, Endpoint, StreamBroken, UpstreamRejected
from gateway.upstreams.sse import error_event

log = logging.getLogger("gateway")
_SSE_HEADERS = [
    (b"content-type", EVENT_STREAM),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class InferenceRoute:
    """Raw ASGI app for one OpenAI inference endpoint."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome = _Outcome(asyncio.get_running_loop().time())
        rid = request_id(scope)
        headers = [(b"x-request-id", rid)]
        dispatcher: Dispatcher = scope["state"]["dispatcher"]
        try:
            body = await read_body(scope, receive, dispatcher.config.server.max_body_bytes)
            features = parse_request(self.endpoint, body)
            if features.model not in dispatcher.config.aliases:
                known = ", ".join(sorted(dispatcher.config.aliases))
                raise ModelNotFound(
                    f"the model '{features.model}' does not exist; known models: {known}",
                    param="model",
                )
            outcome.model = features.model
            call = Call(
                self.endpoint,
                body,
                features.parsed,
                features.stream,
                features.client_wants_usage,
                rid.decode(),
            )
            await self._serve(dispatcher, features, call, headers, send, receive, outcome)
        except GatewayError as err:
            outcome.status = err.status
            await send_error(send, err, headers)
        except asyncio.CancelledError:
            if outcome.status == 0:
                outcome.status = 499  # nginx's "client closed request", for the metric only
            raise
        finally:
            outcome.record(self.endpoint)

    async def _serve(
        self,
        dispatcher: Dispatcher,
        features: RequestFeatures,
        call: Call,
        headers: list[tuple[bytes, bytes]],
        send: Send,
        receive: Receive,
        outcome: _Outcome,
    ) -> None:
        watch = DisconnectWatch(receive)
        try:
            if features.stream:
                opened = await dispatcher.open_stream(features.model, call)
                await self._relay(dispatcher, features.model, opened, headers, send, watch, outcome)
            else:
                await self._reply(dispatcher, features.model, call, headers, send, watch, outcome)
        except UpstreamRejected as rej:
            outcome.status = rej.status
            watch.stop()
            await send_bytes(send, rej.status, rej.body, headers, rej.content_type.encode())
        except asyncio.CancelledError:
            if not watch.absorb():
                raise
            outcome.status = 499
            metrics.CLIENT_DISCONNECTS.labels(self.endpoint).inc()
        finally:
            watch.stop()

    async def _reply(
        self,
        dispatcher: Dispatcher,
        alias: str,
        call: Call,
        headers: list[tuple[bytes, bytes]],
        send: Send,
        watch: DisconnectWatch,
        outcome: _Outcome,
    ) -> None:
        reply, dep = await dispatcher.complete(alias, call)
        outcome.deployment, outcome.status = dep.name, reply.status
        watch.stop()
        headers.append((b"x-gateway-deployment", dep.name.encode()))
        await send_bytes(send, reply.status, reply.body, headers, reply.content_type.encode())

    async def _relay(
        self,
        dispatcher: Dispatcher,
        alias: str,
        opened: OpenStream,
        headers: list[tuple[bytes, bytes]],
        send: Send,
        watch: DisconnectWatch,
        outcome: _Outcome,
    ) -> None:
        dep = opened.deployment
        outcome.deployment, outcome.status = dep.name, 200
        headers = _SSE_HEADERS + headers + [(b"x-gateway-deployment", dep.name.encode())]
        end = "aborted"
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            first = True
            async for chunk in opened.stream:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if first:
                    first = False
                    outcome.first_event_at = asyncio.get_running_loop().time()
            end = "ok"
        except StreamBroken as exc:
            end = "broken"
            log.warning("stream %s broke: %s", dep.name, exc)
            err = UpstreamFailed(f"the upstream stream broke off: {exc}")
            await send(
                {"type": "http.response.body", "body": error_event(err.encode()), "more_body": True}
            )
        finally:
            await dispatcher.close_stream(alias, opened, end)
        watch.stop()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Outcome:
    """What the metrics need to know about how a request went."""

    __slots__ = ("deployment", "first_event_at", "model", "started", "status")

    def __init__(self, started: float) -> None:
        self.started = started
        self.model = "unknown"  # never the client's raw string: labels stay bounded
        self.deployment = "none"
        self.status = 0
        self.first_event_at: float | None = None

    def record(self, route: str) -> None:
        duration = asyncio.get_running_loop().time() - self.started
        metrics.REQUESTS.labels(route, self.model, self.deployment, str(self.status)).inc()
        metrics.REQUEST_DURATION.labels(route, self.model).observe(duration)
        if self.first_event_at is not None:
            ttft = self.first_event_at - self.started
            metrics.TIME_TO_FIRST_TOKEN.labels(self.model, self.deployment).observe(ttft)
