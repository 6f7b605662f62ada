"""POST /v1/chat/completions, /v1/completions and /v1/embeddings: the hot path.

One raw ASGI handler class serves all three: read the body (bounded), parse what routing
needs, ask the response cache (a hit is answered from it: JSON, or replayed as SSE), admit it
against the caller's limits and budgets, hand it to the dispatcher, relay the answer (JSON as
the upstream sent it, or SSE event by event), and hand how it ended to accounting and to the
cache, whatever happened. A client that disconnects cancels the upstream call; what was
generated until then is still counted. Cache hits skip routing and admission: they use no
upstream and cost nothing (they are in the ledger, at $0). Imports: ``gateway``.
"""

from __future__ import annotations

import asyncio
import logging
from time import monotonic, time

from gateway import metrics
from gateway.accounting.model import Source
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
from gateway.cache.entry import Entry
from gateway.cache.service import Lease, ResponseCache
from gateway.cache.stream import assemble, replay
from gateway.config import Deployment
from gateway.dispatch import Dispatcher, OpenStream, Routing
from gateway.errors import GatewayError, UpstreamFailed
from gateway.privacy.audit import audit
from gateway.privacy.classes import DATA_CLASS_HEADER
from gateway.routes.intake import Intake, route_waiting, take_request
from gateway.upstreams.base import Call, Endpoint, StreamBroken, UpstreamRejected, Usage
from gateway.upstreams.sse import error_event
from policies.model import Decision

log = logging.getLogger("gateway")
CACHE_HEADER = b"x-gateway-cache"
COST_HEADER = b"x-gateway-cost-usd"
"""What the answer was billed (non-streaming answers: a stream's headers leave before its
usage is known; its cost is in the ledger and in ``gateway_spend_usd_total``)."""
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
            intake, call = await exchange.read(receive)
            if exchange.hit is not None:
                await exchange.serve_hit(exchange.hit)
            else:
                await exchange.serve(call, await exchange.admit(intake, call), receive)
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
        "answer",
        "billed",
        "cache",
        "call",
        "decision_reason",
        "deployment",
        "dispatcher",
        "endpoint",
        "first_event_at",
        "headers",
        "hit",
        "intake",
        "lease",
        "relayed",
        "replayed",
        "responded",
        "scope",
        "send",
        "served_by",
        "started",
        "status",
        "streamed",
        "ticket",
        "usage",
        "waited_s",
    )

    def __init__(self, endpoint: Endpoint, scope: Scope, send: Send) -> None:
        self.started = monotonic()
        self.endpoint, self.scope, self.send = endpoint, scope, send
        self.dispatcher: Dispatcher = scope["state"]["dispatcher"]
        self.accounting: Accounting = scope["state"]["accounting"]
        self.cache: ResponseCache | None = scope["state"]["cache"]
        self.intake: Intake | None = None
        self.hit: Entry | None = None
        self.lease: Lease | None = None
        self.replayed: list[bytes] | None = None  # a hit's SSE events
        self.answer: bytes | None = None  # the upstream's complete non-streaming answer
        self.streamed = False  # a stream that ended as the upstream meant it to
        self.ticket: Ticket | None = None
        self.billed: int | None = None  # priced once for the cost header, reused by accounting
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
        self.decision_reason = "none"  # the routing decision's, once routed
        self.waited_s = 0.0  # queued for a deployment the request's data class allows

    async def read(self, receive: Receive) -> tuple[Intake, Call]:
        """The request, checked, and what the cache has for it (``hit``, or a ``lease``)."""
        intake = self.intake = await take_request(
            self.scope, receive, self.endpoint, self.dispatcher
        )
        parsed = intake.parsed
        self.alias = parsed.model
        call = self.call = Call(
            self.endpoint,
            intake.body,
            parsed.parsed,
            parsed.stream,
            parsed.client_wants_usage,
            self.headers[0][1].decode(),
        )
        if self.cache is not None:
            await self._look_up(self.cache, intake, call)
        return intake, call

    async def _look_up(self, cache: ResponseCache, intake: Intake, call: Call) -> None:
        plan = cache.plan(self.scope, self.endpoint, call.parsed, intake.alias, intake.principal)
        if plan is None:
            cache.bypassed(self.alias)
            self.headers.append((CACHE_HEADER, b"bypass"))
            return
        found = await cache.lookup(plan, call.request_id)
        hit, self.lease = found.entry, found.lease
        if hit is not None and call.stream:
            try:
                self.replayed = replay(
                    self.endpoint, hit.body, include_usage=call.client_wants_usage
                )
            except ValueError as exc:  # stored by another version, or damaged: go upstream
                cache.discard(plan, exc)
                self.headers.append((CACHE_HEADER, b"miss"))
                return
        self.hit = hit
        self.headers.append((CACHE_HEADER, found.result.encode()))
        if hit is not None:
            self.headers.append((b"age", str(max(0, int(time() - hit.created_at))).encode()))

    async def admit(self, intake: Intake, call: Call) -> Routing:
        """Route the request and admit it; its headers are set for the reply."""
        routing, self.waited_s = await route_waiting(intake, self.dispatcher, self.accounting)
        decision = routing.decision
        self.decision_reason = decision.reason
        self.ticket = await self.accounting.admit(
            intake.principal,
            call.request_id,
            self.alias,
            self.dispatcher.plan(routing),
            prompt_bound=len(intake.body),  # a token is at least a byte of the body
            tokens_estimate=routing.features.prompt_tokens,
            output_bound=_output_bound(self.endpoint, call.parsed),
            now_mono=self.started,
        )
        self.headers += self.ticket.headers
        self.headers += [
            (b"x-gateway-policy", decision.policy.encode()),
            (b"x-gateway-route-reason", route_reason(decision)),
        ]
        if intake.classification.pinned:
            self.headers.append((DATA_CLASS_HEADER, intake.classification.data_class.encode()))
        return routing

    async def serve_hit(self, entry: Entry) -> None:
        """Answer from the cache: the stored JSON, or the same answer replayed as SSE."""
        self.deployment = "cache"
        self.headers.append((COST_HEADER, _usd(0)))
        if self.replayed is None:
            await self._respond(200, entry.body, "application/json")
            return
        self.status, self.responded = 200, True
        headers = [*_SSE_HEADERS, *self.headers]
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})
        await self.send({"type": "http.response.body", "body": b"".join(self.replayed)})
        self.first_event_at = monotonic()

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
        self.answer = reply.body
        watch.stop()
        self.headers.append((b"x-gateway-deployment", dep.name.encode()))
        if reply.usage is not None:
            usage = reply.usage
            self.billed = self.accounting.costing.billed_micros(
                dep, usage.prompt_tokens, usage.completion_tokens
            )
            self.headers.append((COST_HEADER, _usd(self.billed)))
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
        self.streamed = end == "ok"
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
        if self.cache is not None and self.lease is not None:
            self._offer(self.cache, self.lease)
        if self.intake is not None:
            audit(
                self.accounting,
                request_id=self.headers[0][1].decode(),
                principal=self.intake.principal,
                alias=self.alias,
                classification=self.intake.classification,
                reason="cache_hit" if self.hit is not None else self.decision_reason,
                served_by=self.deployment if self.deployment != "none" else None,
                status=self.status,
                waited_s=self.waited_s,
            )
        ticket, usage = self.ticket, self.usage
        source: Source | None = None
        if self.hit is not None and self.intake is not None:  # free: billed to no deployment
            ticket = Ticket(self.intake.principal, None, [])
            usage, source = self.hit.usage, "cache"
        if ticket is None:
            return  # refused before admission: nothing was reserved or spent
        outcome = Outcome(
            request_id=self.headers[0][1].decode(),
            alias=self.alias,
            deployment=self.served_by,
            usage=usage,
            estimated=False,
            status=self.status,
            latency_s=duration,
            ttft_s=ttft,
            started_at=self.started,
            ended_at=ended,
            source=source,
            billed_micros=self.billed,
        )
        if usage is None and self.relayed and self.call is not None:
            self.accounting.finish_estimated(ticket, outcome, self.call.parsed, self.relayed)
        else:
            self.accounting.finish(ticket, outcome)

    def _offer(self, cache: ResponseCache, lease: Lease) -> None:
        """The upstream's answer to the cache if it is complete and successful, else give
        up the lease (identical requests waiting on this one stop waiting). A stream's
        answer is assembled here, after its client has it all."""
        answer, served_by, usage = self.answer, self.served_by, self.usage or Usage()
        if self.streamed:
            counts = (usage.prompt_tokens, usage.completion_tokens) if self.usage else None
            answer = assemble(self.endpoint, self.relayed, counts)
        if self.status != 200 or answer is None or served_by is None:
            cache.abandon(lease)
            return
        entry = Entry(answer, usage.prompt_tokens, usage.completion_tokens, time(), served_by.name)
        cache.fulfil(lease, entry)


def _output_bound(endpoint: Endpoint, parsed: dict[str, object]) -> int | None:
    """The most tokens the request lets the model generate, if it says (None: unbounded)."""
    if endpoint == "embeddings":
        return 0
    asked = parsed.get("max_completion_tokens") or parsed.get("max_tokens")
    if not isinstance(asked, int) or isinstance(asked, bool):
        return None
    n = parsed.get("n")
    return asked * (n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1)


def _usd(micros: int) -> bytes:
    return f"{micros / 1_000_000:.6f}".encode()


def route_reason(decision: Decision) -> bytes:
    """``reason; detail`` as a header value: printable ASCII, at most 200 bytes."""
    text = f"{decision.reason}; {decision.detail}"
    return text.encode("ascii", "replace")[:200].replace(b"\r", b" ").replace(b"\n", b" ")
