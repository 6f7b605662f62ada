"""Emulates the paid Anthropic Messages API: ``POST /v1/messages``, JSON and SSE.

Requires ``x-api-key`` (401 ``authentication_error``) and ``anthropic-version`` (400).
Non-stream replies are ``message`` objects; streams are ``event: <name>\\ndata: {...}\\n\\n``
in Anthropic's order: message_start, content_block_start, ping, content_block_delta
(``text_delta``) per token, content_block_stop, message_delta (stop_reason, output_tokens),
message_stop. Errors use ``{"type":"error","error":{type, message},"request_id"}``: 404
``not_found_error``, 429 ``rate_limit_error`` with ``retry-after``, 500 ``api_error`` and
529 ``overloaded_error``. Latency: ``paid`` (paid_latency.md section 4: Claude Haiku 4.5
0.92 s / 0.25 / 53 tok/s, Claude Sonnet 4.5 1.80 s / 0.25 / 63 tok/s). With
``--request-log``, every request is a line in that file (``request_log``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

from loadtests.emulators import textgen
from loadtests.emulators.asgi import (
    Headers,
    Request,
    Router,
    cancel_on_disconnect,
    dumps,
    respond,
    send_bytes,
    start_stream,
)
from loadtests.emulators.openai_request import BadRequest, GenerationRequest, parse_object
from loadtests.emulators.pacing import Pacer
from loadtests.emulators.paid import PaidBackend, PaidConfig, Plan, ProviderFault, profile_for
from loadtests.emulators.request_log import Progress

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}
PING = b'event: ping\ndata: {"type": "ping"}\n\n'


def error_body(err_type: str, message: str) -> bytes:
    """Anthropic's error envelope."""
    return dumps(
        {
            "type": "error",
            "error": {"type": err_type, "message": message},
            "request_id": f"req_{secrets.token_hex(12)}",
        }
    )


def parse_messages(body: bytes) -> GenerationRequest:
    """A Messages API body (``system`` and every message count toward input tokens)."""
    obj = parse_object(body)
    model, max_tokens, messages = obj.get("model"), obj.get("max_tokens"), obj.get("messages")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise BadRequest("max_tokens: Field required (a positive integer)")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: at least one message is required")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest("messages: each message needs role 'user' or 'assistant'")
    text, tokens = textgen.chat_prompt(messages)
    system = textgen.message_text(obj.get("system", ""))
    return GenerationRequest(
        model=model,
        prompt_text=system + "\n" + text,
        prompt_tokens=tokens + textgen.count_words(system),
        max_tokens=max_tokens,
        ignore_eos=False,
        stream=obj.get("stream") is True,
        include_usage=True,
        continuous_usage=False,
    )


def _event(name: str, data: dict[str, object]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + dumps(data) + b"\n\n"


def _usage(prompt: int, output: int) -> dict[str, object]:
    return {
        "input_tokens": prompt,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output,
        "service_tier": "standard",
    }


def message_body(
    mid: str, model: str, text: str | None, stop: str | None, prompt: int, output: int
) -> dict[str, object]:
    """A ``message`` object (``text`` None: the empty one that opens a stream)."""
    content = [] if text is None else [{"type": "text", "text": text}]
    return {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": _usage(prompt, output),
    }


def stream_events(mid: str, model: str, prompt: int, plan: Plan) -> Iterator[bytes]:
    """Every SSE event of a streamed reply, in Anthropic's order."""
    yield _event(
        "message_start",
        {
            "type": "message_start",
            "message": message_body(mid, model, None, None, prompt, 1),
        },
    )
    yield _event(
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        },
    )
    yield PING
    for token in plan.tokens:
        yield _event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": token},
            },
        )
    yield _event("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield _event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": STOP_REASONS[plan.finish], "stop_sequence": None},
            "usage": {"output_tokens": len(plan.tokens)},
        },
    )
    yield _event("message_stop", {"type": "message_stop"})


class AnthropicEmulator:
    """State and handlers of the emulated Anthropic API."""

    def __init__(self, config: PaidConfig) -> None:
        self.backend = PaidBackend(config)
        self.served = set(config.models)

    def app(self) -> Router:
        """The ASGI app."""
        fail = (500, error_body("api_error", "Internal server error"), self._headers())
        return Router(
            {
                ("POST", "/v1/messages"): self.backend.faults.guard(self.messages, fail),
                ("GET", "/health"): self.health,
            },
            self.not_found,
        )

    async def health(self, request: Request) -> None:
        """200 once serving (readiness only)."""
        await respond(request.send, 200, b"{}")

    async def not_found(self, request: Request) -> None:
        """Anthropic's answer for an unknown URL."""
        await respond(request.send, 404, error_body("not_found_error", "Not found"))

    def _headers(self) -> Headers:
        return [
            (b"request-id", f"req_{secrets.token_hex(12)}".encode()),
            (b"anthropic-organization-id", b"00000000-0000-0000-0000-000000000000"),
        ]

    async def _error(
        self, request: Request, status: int, err_type: str, message: str, extra: Headers = ()
    ) -> None:
        body = error_body(err_type, message)
        await respond(request.send, status, body, [*self._headers(), *extra])
        self.backend.log.write(request, status)

    async def _refused(self, request: Request) -> GenerationRequest | None:
        """Check auth, body, model and provider faults; answer and return None on refusal."""
        if not request.header(b"x-api-key"):
            await self._error(request, 401, "authentication_error", "invalid x-api-key")
            return None
        if not request.header(b"anthropic-version"):
            await self._error(
                request, 400, "invalid_request_error", "anthropic-version: header is required"
            )
            return None
        try:
            params = parse_messages(request.body)
        except BadRequest as exc:
            await self._error(request, 400, "invalid_request_error", exc.message)
            return None
        if params.model not in self.served:
            await self._error(request, 404, "not_found_error", f"model: {params.model}")
            return None
        fault = self.backend.provider_fault()
        if fault is ProviderFault.RATE_LIMITED:
            await self._error(
                request,
                429,
                "rate_limit_error",
                "This request would exceed the rate limit for your organization.",
                [(b"retry-after", b"1")],
            )
            return None
        if fault is ProviderFault.SERVER_ERROR:
            if self.backend.rng.random() < 0.5:
                await self._error(request, 529, "overloaded_error", "Overloaded")
            else:
                await self._error(request, 500, "api_error", "Internal server error")
            return None
        return params

    async def messages(self, request: Request) -> None:
        """``POST /v1/messages``."""
        params = await self._refused(request)
        if params is None:
            return
        profile = profile_for(params.model)
        plan = self.backend.plan(params, profile)
        mid = "msg_01" + secrets.token_hex(11)
        progress = Progress()
        work = self._reply(request, mid, profile.snapshot, params, plan, progress)
        try:
            if not self.backend.paced:
                await work
            elif await cancel_on_disconnect(request, work):
                print(f"aborted {mid}: client disconnected", flush=True)
        finally:
            self.backend.log.finish(request, progress, params.prompt_tokens)

    async def _reply(
        self,
        request: Request,
        mid: str,
        model: str,
        params: GenerationRequest,
        plan: Plan,
        progress: Progress,
    ) -> None:
        await asyncio.sleep(plan.first_token_s)
        if not params.stream:
            await asyncio.sleep(plan.token_interval_s * max(0, len(plan.tokens) - 1))
            body = message_body(
                mid,
                model,
                "".join(plan.tokens),
                STOP_REASONS[plan.finish],
                params.prompt_tokens,
                len(plan.tokens),
            )
            await respond(request.send, 200, dumps(body), self._headers())
            progress.status, progress.completion_tokens, progress.done = 200, len(plan.tokens), True
            return
        await start_stream(request.send, [*self._headers(), (b"cache-control", b"no-cache")])
        progress.status = 200
        events = list(stream_events(mid, model, params.prompt_tokens, plan))
        first_delta = 3
        pacer = Pacer()
        for index, event in enumerate(events):
            if first_delta < index < first_delta + len(plan.tokens):
                await pacer.wait(plan.token_interval_s)
            await send_bytes(request.send, event, last=index == len(events) - 1)
            if first_delta <= index < first_delta + len(plan.tokens):
                progress.completion_tokens += 1
        progress.done = True


def build_app(config: PaidConfig) -> Router:
    """The emulated Anthropic API as an ASGI app."""
    return AnthropicEmulator(config).app()
