"""POST /v1/chat/completions, /v1/completions and /v1/embeddings: the hot path.

One raw ASGI handler class serves all three: read the body (bounded), parse what routing
needs, admit it against the caller's limits and budgets, hand it to the dispatcher, relay the
answer (JSON as the upstream sent it, or SSE event by event), and hand how it ended to
accounting, whatever happened. A client that disconnects cancels the upstream call; what was
generated until then is still counted. Imports: ``gateway``.
"""

from __future__ import annotations

import asyncio
import logging
from time import monotonic

from gateway import metrics
from gateway.accounting.service import Accounting, Outcome, Ticket
from gateway.asgi import (
    EVENT_STREAM,
    DisconnectWatch,
    Receive,
    Scope,
    Send,
    client_request_id,
    request_id,
    send_bytes,
    send_error,
)
from gateway.config import Deployment
from gateway.dispatch import Dispatcher, OpenStream, Routing
from gateway.errors import GatewayError, UpstreamFailed
from gateway.routes.intake import take_request
from gateway.upstreams.base import Call, Endpoint, StreamBroken, UpstreamRejected, Usage
from gateway.upstreams.sse import error_event
from policies.model import Decision

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
        exchange = _Exchange(self.endpoint, scope, send)
        try:
            call, routing = await exchange.read(receive)
            await exchange.serve(call, routing, receive)
        except GatewayError as err:
            await exchange.fail(err)
        except asyncio.CancelledError:
            exchange.status = exchange.status or 499  # nginx's "client closed request"
            raise
        except Exception:
            # This route is served outside Starlette's error middleware (see app.py), so
            # a bug here is answered here: logged with its traceback, never shown.
            log.exception("unhandled error on %s", self.endpoint)
            if not exchange.responded:
                await exchange.fail(GatewayError("internal error in the gateway; it is logged"))
            exchange.status = 500
        finally:
            exchange.record()


class _Exchange:
    """One request and its answer: what was asked, who answered, how it went (for metrics)."""

    __slots__ = (
        "accounting",
        "alias",
        "call",
        "deployment",
        "dispatcher",
        "endpoint",
        "first_event_at",
        "headers",
        "relayed",
        "responded",
        "scope",
        "send",
        "served_by",
        "started",
        "status",
        "ticket",
        "usage",
    )

    def __init__(self, endpoint: Endpoint, scope: Scope, send: Send) -> None:
        self.started = monotonic()
        self.endpoint, self.scope, self.send = endpoint, scope, send
        self.dispatcher: Dispatcher = scope["state"]["dispatcher"]
        self.accounting: Accounting = scope["state"]["accounting"]
        self.ticket: Ticket | None = None
        self.call: Call | None = None
        self.served_by: Deployment | None = None
        self.usage: Usage | None = None
        self.relayed: list[bytes] = []  # stream events sent, for a count if usage never came
        self.headers = [(b"x-request-id", request_id())]
        given = client_request_id(scope)
        if given is not None:
            self.headers.append((b"x-client-request-id", given))
        self.alias = "unknown"  # never the client's raw string: metric labels stay bounded
        self.deployment = "none"
        self.status = 0
        self.first_event_at: float | None = None
        self.responded = False  # http.response.start has been sent

    async def read(self, receive: Receive) -> tuple[Call, Routing]:
        """The request, checked, routed and admitted; its headers are set for the reply."""
        intake = await take_request(self.scope, receive, self.endpoint, self.dispatcher)
        parsed, routing = intake.parsed, intake.routing
        decision = routing.decision
        self.alias = parsed.model
        request_id = self.headers[0][1].decode()
        self.ticket = await self.accounting.admit(
            intake.principal,
            request_id,
            self.alias,
            self.dispatcher.plan(routing),
            prompt_bound=len(intake.body),  # a token is at least a byte of the body
            tokens_estimate=routing.features.prompt_tokens,
            output_bound=_output_bound(self.endpoint, parsed.parsed),
            now_mono=self.started,
        )
        self.headers += self.ticket.headers
        self.headers += [
            (b"x-gateway-policy", decision.policy.encode()),
            (b"x-gateway-route-reason", route_reason(decision)),
        ]
        call = Call(
            self.endpoint,
            intake.body,
            parsed.parsed,
            parsed.stream,
            parsed.client_wants_usage,
            request_id,
        )
        self.call = call
        return call, routing

    async def serve(self, call: Call, routing: Routing, receive: Receive) -> None:
        """Answer ``call``; a client that goes away meanwhile aborts the upstream call."""
        watch = DisconnectWatch(receive)
        try:
            if call.stream:
                await self._relay(await self.dispatcher.open_stream(routing, call), watch)
            else:
                await self._reply(call, routing, watch)
        except UpstreamRejected as rej:
            watch.stop()
            await self._respond(rej.status, rej.body, rej.content_type)
        except asyncio.CancelledError:
            if not watch.absorb():
                raise
            self.status = 499
            metrics.child(metrics.CLIENT_DISCONNECTS, self.endpoint).inc()
        finally:
            watch.stop()

    async def _reply(self, call: Call, routing: Routing, watch: DisconnectWatch) -> None:
        reply, dep = await self.dispatcher.complete(routing, call)
        self.deployment, self.served_by, self.usage = dep.name, dep, reply.usage
        watch.stop()
        self.headers.append((b"x-gateway-deployment", dep.name.encode()))
        await self._respond(reply.status, reply.body, reply.content_type)

    async def fail(self, err: GatewayError) -> None:
        """Answer with an OpenAI error envelope."""
        self.status, self.responded = err.status, True
        await send_error(self.send, err, self.headers)

    async def _respond(self, status: int, body: bytes, content_type: str) -> None:
        self.status, self.responded = status, True
        await send_bytes(self.send, status, body, self.headers, content_type.encode())

    async def _relay(self, opened: OpenStream, watch: DisconnectWatch) -> None:
        self.deployment, self.status, self.responded = opened.deployment.name, 200, True
        self.served_by = opened.deployment
        headers = [
            *_SSE_HEADERS,
            *self.headers,
            (b"x-gateway-deployment", self.deployment.encode()),
        ]
        end = "aborted"
        try:
            await self.send({"type": "http.response.start", "status": 200, "headers": headers})
            async for chunk in opened.stream:
                self.relayed.append(chunk)
                await self.send({"type": "http.response.body", "body": chunk, "more_body": True})
                if self.first_event_at is None:
                    self.first_event_at = monotonic()
                    self.dispatcher.first_event(opened)
            end = "ok"
        except StreamBroken as exc:
            end = "broken"
            log.warning("stream from %s broke: %s", self.deployment, exc)
            event = error_event(UpstreamFailed(f"the upstream stream broke off: {exc}").encode())
            await self.send({"type": "http.response.body", "body": event, "more_body": True})
        finally:
            await self.dispatcher.close_stream(self.alias, opened, end)
            self.usage = opened.stream.usage
        watch.stop()
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    def record(self) -> None:
        """Count the request in the metrics and the ledger, whatever happened to it."""
        ended = monotonic()
        duration = ended - self.started
        labels = (self.endpoint, self.alias, self.deployment, str(self.status))
        metrics.child(metrics.REQUESTS, *labels).inc()
        metrics.child(metrics.REQUEST_DURATION, self.endpoint, self.alias).observe(duration)
        ttft = None
        if self.first_event_at is not None:
            ttft = self.first_event_at - self.started
            metrics.child(metrics.TIME_TO_FIRST_TOKEN, self.alias, self.deployment).observe(ttft)
        if self.ticket is None:
            return  # refused before admission: nothing was reserved or spent
        outcome = Outcome(
            request_id=self.headers[0][1].decode(),
            alias=self.alias,
            deployment=self.served_by,
            usage=self.usage,
            estimated=False,
            status=self.status,
            latency_s=duration,
            ttft_s=ttft,
            started_at=self.started,
            ended_at=ended,
        )
        if self.usage is None and self.relayed and self.call is not None:
            self.accounting.finish_estimated(self.ticket, outcome, self.call.parsed, self.relayed)
        else:
            self.accounting.finish(self.ticket, outcome)


def _output_bound(endpoint: Endpoint, parsed: dict[str, object]) -> int | None:
    """The most tokens the request lets the model generate, if it says (None: unbounded)."""
    if endpoint == "embeddings":
        return 0
    asked = parsed.get("max_completion_tokens") or parsed.get("max_tokens")
    if not isinstance(asked, int) or isinstance(asked, bool):
        return None
    n = parsed.get("n")
    return asked * (n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1)


def route_reason(decision: Decision) -> bytes:
    """``reason; detail`` as a header value: printable ASCII, at most 200 bytes."""
    text = f"{decision.reason}; {decision.detail}"
    return text.encode("ascii", "replace")[:200].replace(b"\r", b" ").replace(b"\n", b" ")
