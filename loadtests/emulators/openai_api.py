"""Emulates the paid OpenAI API: chat completions, legacy completions, embeddings, models.

Wire format as api.openai.com sends it (2025): non-stream ``chat.completion`` bodies with
``refusal``/``annotations`` and detailed ``usage``; SSE chunks ``data: {...}\\n\\n`` with
``service_tier`` and ``system_fingerprint``, a role chunk, one chunk per token, an empty-delta
finishing chunk, with ``stream_options.include_usage`` ``"usage":null`` on every chunk plus a
``choices: []`` usage chunk, then ``data: [DONE]``. (The random ``obfuscation`` padding field
is left out.) Errors in OpenAI's envelope: 401 ``invalid_api_key`` without a Bearer token,
404 ``model_not_found``, 429 ``rate_limit_exceeded`` with ``retry-after``, 500/503
``server_error``. Every reply carries ``x-request-id``, ``openai-processing-ms`` and the
``x-ratelimit-*`` headers. Latency: ``paid`` (paid_latency.md section 4). With
``--request-log``, every request is a line in that file (``request_log``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable

from loadtests.emulators import openai_wire, textgen
from loadtests.emulators.asgi import (
    Headers,
    Request,
    Router,
    cancel_on_disconnect,
    respond,
    send_bytes,
    start_stream,
)
from loadtests.emulators.openai_request import (
    BadRequest,
    GenerationRequest,
    parse_chat,
    parse_completion,
    parse_embedding,
)
from loadtests.emulators.pacing import Pacer
from loadtests.emulators.paid import PaidBackend, PaidConfig, Plan, ProviderFault, profile_for
from loadtests.emulators.request_log import Progress

EMBEDDING_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}


class OpenAIEmulator:
    """State and handlers of the emulated OpenAI API."""

    def __init__(self, config: PaidConfig) -> None:
        self.backend = PaidBackend(config)
        self.served = set(config.models)
        self.limits = openai_wire.RateWindow()

    def app(self) -> Router:
        """The ASGI app."""
        fail = (500, openai_wire.error_body(*openai_wire.SERVER_ERROR), ())
        guard = self.backend.faults.guard
        return Router(
            {
                ("POST", "/v1/chat/completions"): guard(self.chat, fail),
                ("POST", "/v1/completions"): guard(self.completions, fail),
                ("POST", "/v1/embeddings"): guard(self.embeddings, fail),
                ("GET", "/v1/models"): self.list_models,
                ("GET", "/health"): self.health,
            },
            self.not_found,
        )

    async def health(self, request: Request) -> None:
        """200 once serving (not an OpenAI endpoint; for readiness only)."""
        await respond(request.send, 200, b"{}")

    async def not_found(self, request: Request) -> None:
        """OpenAI's answer for an unknown URL."""
        message = f"Invalid URL ({request.scope['method']} {request.scope['path']})"
        await respond(request.send, 404, openai_wire.error_body(message, "invalid_request_error"))

    async def list_models(self, request: Request) -> None:
        """``GET /v1/models``."""
        if await self._authorized(request, time.perf_counter()):
            body = openai_wire.models_body(sorted(self.served))
            await respond(request.send, 200, body, self._headers(time.perf_counter()))

    async def chat(self, request: Request) -> None:
        """``POST /v1/chat/completions``."""
        await self._generate(request, parse_chat, chat=True)

    async def completions(self, request: Request) -> None:
        """``POST /v1/completions`` (legacy text completions)."""
        await self._generate(request, parse_completion, chat=False)

    async def embeddings(self, request: Request) -> None:
        """``POST /v1/embeddings``: deterministic unit vectors."""
        started = time.perf_counter()
        if not await self._authorized(request, started):
            return
        try:
            params = parse_embedding(request.body)
        except BadRequest as exc:
            await self._error(request, started, 400, exc.message, param=exc.param)
            return
        if not await self._admitted(request, started, params.model):
            return
        dims = params.dimensions or EMBEDDING_DIMENSIONS.get(params.model, 1536)
        vectors: list[object] = []
        for text in params.inputs:
            vector = textgen.embedding_vector(text, dims)
            fmt = params.encoding_format
            vectors.append(textgen.encode_base64_floats(vector) if fmt == "base64" else vector)
        prompt = sum(textgen.text_prompt_tokens(t) for t in params.inputs)
        await asyncio.sleep(self.backend.ttft_s(profile_for(params.model), prompt))
        body = openai_wire.embeddings_body(params.model, vectors, prompt)
        await respond(request.send, 200, body, self._headers(started))
        self.backend.log.write(request, 200, prompt_tokens=prompt)

    def _headers(self, started: float, tokens: int = 0) -> Headers:
        elapsed_ms = int((time.perf_counter() - started) * 1000)
        return [
            (b"x-request-id", f"req_{secrets.token_hex(16)}".encode()),
            (b"openai-processing-ms", str(elapsed_ms).encode()),
            (b"openai-version", b"2020-10-01"),
            *self.limits.headers(tokens),
        ]

    async def _error(
        self,
        request: Request,
        started: float,
        status: int,
        message: str,
        err_type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        extra: Headers = (),
    ) -> None:
        body = openai_wire.error_body(message, err_type, param, code)
        await respond(request.send, status, body, [*self._headers(started), *extra])
        self.backend.log.write(request, status)

    async def _authorized(self, request: Request, started: float) -> bool:
        auth = request.header(b"authorization")
        if auth is not None and auth.startswith(b"Bearer ") and len(auth) > 7:
            return True
        message = openai_wire.NO_KEY if auth is None else openai_wire.BAD_KEY
        await self._error(request, started, 401, message, code="invalid_api_key")
        return False

    async def _admitted(self, request: Request, started: float, model: str) -> bool:
        """Model served, and no provider fault drawn; otherwise answer the error."""
        if model not in self.served:
            message = f"The model `{model}` does not exist or you do not have access to it."
            await self._error(request, started, 404, message, code="model_not_found")
            return False
        fault = self.backend.provider_fault()
        if fault is ProviderFault.RATE_LIMITED:
            retry_ms = max(1, int(1000 * self.backend.config.time_scale))
            await self._error(
                request,
                started,
                429,
                openai_wire.rate_limit_message(model, retry_ms),
                err_type="requests",
                code="rate_limit_exceeded",
                extra=[(b"retry-after", b"1"), (b"retry-after-ms", str(retry_ms).encode())],
            )
            return False
        if fault is ProviderFault.SERVER_ERROR:
            status, (message, err_type) = (
                (503, openai_wire.OVERLOADED)
                if self.backend.rng.random() < 0.5
                else (500, openai_wire.SERVER_ERROR)
            )
            await self._error(request, started, status, message, err_type)
            return False
        return True

    async def _generate(
        self, request: Request, parse: Callable[[bytes], GenerationRequest], *, chat: bool
    ) -> None:
        started = time.perf_counter()
        if not await self._authorized(request, started):
            return
        try:
            params = parse(request.body)
        except BadRequest as exc:
            await self._error(request, started, 400, exc.message, param=exc.param)
            return
        if not await self._admitted(request, started, params.model):
            return
        profile = profile_for(params.model)
        plan = self.backend.plan(params, profile)
        writer = openai_wire.Writer(
            openai_wire.new_id("chatcmpl-" if chat else "cmpl-"),
            int(time.time()),
            profile.snapshot,
            chat,
            params,
        )
        progress = Progress()
        work = self._reply(request, started, writer, plan, progress)
        try:
            if not self.backend.paced:
                await work
            elif await cancel_on_disconnect(request, work):
                print(f"aborted {writer.rid}: client disconnected", flush=True)
        finally:
            self.backend.log.finish(request, progress, params.prompt_tokens)

    async def _reply(
        self,
        request: Request,
        started: float,
        writer: openai_wire.Writer,
        plan: Plan,
        progress: Progress,
    ) -> None:
        tokens = writer.params.prompt_tokens + len(plan.tokens)
        await asyncio.sleep(plan.first_token_s)
        if not writer.params.stream:
            await asyncio.sleep(plan.token_interval_s * max(0, len(plan.tokens) - 1))
            body = writer.response(plan.tokens, plan.finish)
            await respond(request.send, 200, body, self._headers(started, tokens))
            progress.status, progress.completion_tokens, progress.done = 200, len(plan.tokens), True
            return
        await start_stream(request.send, self._headers(started, tokens))
        progress.status = 200
        events = writer.events(plan.tokens, plan.finish)
        first_token = 1 if writer.chat else 0
        pacer = Pacer()
        for index, event in enumerate(events):
            if first_token < index < first_token + len(plan.tokens):
                await pacer.wait(plan.token_interval_s)
            await send_bytes(request.send, event, last=index == len(events) - 1)
            if first_token <= index < first_token + len(plan.tokens):
                progress.completion_tokens += 1
        progress.done = True


def build_app(config: PaidConfig) -> Router:
    """The emulated OpenAI API as an ASGI app."""
    return OpenAIEmulator(config).app()
