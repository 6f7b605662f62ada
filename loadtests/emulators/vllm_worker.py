"""Emulates one GPU worker: Qwen/Qwen2.5-7B-Instruct behind vLLM's OpenAI-compatible server.

Endpoints as vLLM serves them: ``POST /v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings``, ``GET /v1/models``, ``/health`` (200, empty body) and ``/metrics``
(vLLM's Prometheus names, see ``vllm_metrics``). Wire format: ``vllm_wire``.

Latency: ``engine`` + ``latency``, calibrated by ``shared/data/calibration.md`` sections B
(TPOT against batch size), G (``max_num_seqs``, KV capacity) and I (prefill queue, context
cost). ``--time-scale`` multiplies every delay; ``--zero-latency`` skips the engine entirely
(the overhead benchmark's upstream). Output text and lengths: ``textgen`` (lengths from the
Azure 2023 conversation trace, PROVENANCE.md section 1a). A client that disconnects cancels
its generation: the sequence leaves the running set and ``emulator_aborted_requests_total``
counts it. With ``--request-log``, every request is a line in that file (``request_log``).
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.emulators import textgen, vllm_wire
from loadtests.emulators.asgi import (
    Request,
    Router,
    cancel_on_disconnect,
    respond,
    send_bytes,
    start_stream,
)
from loadtests.emulators.engine import Engine, Sequence
from loadtests.emulators.faults import FaultKnobs, Faults
from loadtests.emulators.openai_request import (
    BadRequest,
    GenerationRequest,
    UnknownModel,
    parse_chat,
    parse_completion,
    parse_embedding,
)
from loadtests.emulators.request_log import Progress, RequestLog
from loadtests.emulators.vllm_metrics import CONTENT_TYPE, WorkerMetrics
from policies.worker_latency import PROFILES

NON_STREAM_DECODE_BATCH = 16  # decode steps per sleep when nobody watches tokens arrive


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Options of the emulated worker (the CLI's ``vllm`` subcommand)."""

    model: str = "Qwen/Qwen2.5-7B-Instruct"
    gpu: str = "h100"
    max_num_seqs: int | None = None
    max_model_len: int = 32768
    time_scale: float = 1.0
    zero_latency: bool = False
    seed: int = 0
    trace: Path = textgen.DEFAULT_TRACE
    faults: FaultKnobs = field(default_factory=FaultKnobs)
    embedding_dimensions: int = 1024
    request_log: Path | None = None


@dataclass(frozen=True, slots=True)
class Output:
    """What one request will generate."""

    rid: str
    created: int
    tokens: list[str]
    finish: str
    request: GenerationRequest


class Worker:
    """The emulated worker's state and its ASGI handlers."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        profile = PROFILES[config.gpu]
        paced = not config.zero_latency and config.time_scale > 0
        seqs = config.max_num_seqs or profile.max_num_seqs
        self.engine = Engine(profile, seqs, config.time_scale) if paced else None
        self.metrics = WorkerMetrics(config.model, lambda: self.engine)
        self.lengths = textgen.load_output_lengths(config.trace)
        self.log = RequestLog(config.request_log)
        self.faults = Faults(config.faults, random.Random(config.seed), self.log)
        created = int(time.time())
        self.models = vllm_wire.models_body(
            config.model, created, config.max_model_len, f"modelperm-{uuid.uuid4().hex}"
        )

    def app(self) -> Router:
        """The ASGI app."""
        fail = (500, vllm_wire.error_body("Internal server error", "InternalServerError", 500), ())
        on_hang = self.metrics.aborted.inc
        routes = {
            ("POST", "/v1/chat/completions"): self.faults.guard(self.chat, fail, on_hang),
            ("POST", "/v1/completions"): self.faults.guard(self.completions, fail, on_hang),
            ("POST", "/v1/embeddings"): self.faults.guard(self.embeddings, fail, on_hang),
            ("GET", "/v1/models"): self.list_models,
            ("GET", "/health"): self.health,
            ("GET", "/metrics"): self.prometheus,
        }
        return Router(routes, self.not_found)

    async def health(self, request: Request) -> None:
        """200 with an empty body once serving."""
        await respond(request.send, 200, b"", content_type=None)

    async def prometheus(self, request: Request) -> None:
        """The Prometheus exposition."""
        await respond(request.send, 200, self.metrics.exposition(), content_type=CONTENT_TYPE)

    async def list_models(self, request: Request) -> None:
        """The one served model."""
        await respond(request.send, 200, self.models)

    async def not_found(self, request: Request) -> None:
        """FastAPI's 404."""
        await respond(request.send, 404, b'{"detail":"Not Found"}')

    async def chat(self, request: Request) -> None:
        """``POST /v1/chat/completions``."""
        await self._generate(request, parse_chat, chat=True)

    async def completions(self, request: Request) -> None:
        """``POST /v1/completions``."""
        await self._generate(request, parse_completion, chat=False)

    async def embeddings(self, request: Request) -> None:
        """``POST /v1/embeddings``: one deterministic unit vector per input."""
        try:
            params = parse_embedding(request.body)
            self._check_model(params.model)
        except BadRequest as exc:
            await self._reject(request, exc)
            return
        dims = params.dimensions or self.config.embedding_dimensions
        vectors: list[object] = [textgen.embedding_vector(t, dims) for t in params.inputs]
        if params.encoding_format == "base64":
            vectors = [textgen.encode_base64_floats(v) for v in vectors]  # type: ignore[arg-type]
        prompt = sum(textgen.text_prompt_tokens(t) for t in params.inputs)
        self.metrics.prompt_tokens.inc(prompt)
        body = vllm_wire.embeddings_body(
            f"embd-{uuid.uuid4().hex}", int(time.time()), params.model, vectors, prompt
        )
        await respond(request.send, 200, body)
        self.log.write(request, 200, prompt_tokens=prompt)

    async def _reject(self, request: Request, exc: BadRequest) -> None:
        status = 404 if isinstance(exc, UnknownModel) else 400
        err_type = "NotFoundError" if status == 404 else "BadRequestError"
        await respond(request.send, status, vllm_wire.error_body(exc.message, err_type, status))
        self.log.write(request, status)

    def _check_model(self, model: str) -> None:
        if model != self.config.model:
            raise UnknownModel(f"The model `{model}` does not exist.", "model")

    def _plan(self, params: GenerationRequest, chat: bool) -> Output:
        self._check_model(params.model)
        room = self.config.max_model_len - params.prompt_tokens
        if room < 1 or (params.max_tokens is not None and params.max_tokens > room):
            asked = params.prompt_tokens + (params.max_tokens or 0)
            raise BadRequest(
                f"This model's maximum context length is {self.config.max_model_len} tokens. "
                f"However, you requested {asked} tokens ({params.prompt_tokens} in the "
                f"messages, {params.max_tokens or 0} in the completion). Please reduce the "
                "length of the messages or completion.",
                "max_tokens",
            )
        seed = textgen.prompt_seed(params.prompt_text)
        count, finish = textgen.choose_length(
            self.lengths.draw(seed), params.max_tokens or room, ignore_eos=params.ignore_eos
        )
        prefix = "chatcmpl-" if chat else "cmpl-"
        rid = prefix + uuid.uuid4().hex
        return Output(rid, int(time.time()), textgen.generate_tokens(seed, count), finish, params)

    async def _generate(
        self, request: Request, parse: Callable[[bytes], GenerationRequest], *, chat: bool
    ) -> None:
        try:
            output = self._plan(parse(request.body), chat)
        except BadRequest as exc:
            await self._reject(request, exc)
            return
        started = time.perf_counter()
        progress = Progress()
        try:
            if self.engine is None:
                await self._emit(request, output, chat, None, progress)
            elif await cancel_on_disconnect(
                request, self._emit(request, output, chat, self.engine, progress)
            ):
                self.metrics.aborted.inc()
                self.metrics.success["abort"].inc()
                sys.stderr.write(f"aborted {output.rid}: client disconnected\n")
                return
        finally:
            self.log.finish(request, progress, output.request.prompt_tokens)
        self.metrics.e2e.observe(time.perf_counter() - started)
        self.metrics.success[output.finish].inc()

    async def _emit(
        self, request: Request, out: Output, chat: bool, engine: Engine | None, progress: Progress
    ) -> None:
        m = self.metrics
        prompt = out.request.prompt_tokens
        m.prompt_tokens.inc(prompt)
        if engine is None:
            await self._send(request, out, chat, None, None, progress)
            m.generation_tokens.inc(len(out.tokens))
            return
        async with engine.sequence(prompt) as seq:
            try:
                await self._send(request, out, chat, engine, seq, progress)
            finally:
                m.generation_tokens.inc(seq.generated)

    async def _send(
        self,
        request: Request,
        out: Output,
        chat: bool,
        engine: Engine | None,
        seq: Sequence | None,
        progress: Progress,
    ) -> None:
        started = time.perf_counter()
        if engine is not None and seq is not None:
            await engine.prefill(seq)
            self.metrics.ttft.observe(time.perf_counter() - started)
        if out.request.stream:
            await self._stream(request, out, chat, engine, seq, progress)
            return
        if engine is not None and seq is not None:
            remaining = len(out.tokens) - 1
            while remaining > 0:
                steps = min(NON_STREAM_DECODE_BATCH, remaining)
                step_s = await engine.decode(seq, steps)
                self.metrics.itl.observe(step_s * engine.time_scale)
                remaining -= steps
            self._observe_tpot(started, len(out.tokens))
        build = vllm_wire.chat_response if chat else vllm_wire.completion_response
        body = build(
            out.rid,
            out.created,
            out.request.model,
            "".join(out.tokens),
            out.finish,
            out.request.prompt_tokens,
            len(out.tokens),
        )
        await respond(request.send, 200, body)
        progress.status, progress.completion_tokens, progress.done = 200, len(out.tokens), True

    async def _stream(
        self,
        request: Request,
        out: Output,
        chat: bool,
        engine: Engine | None,
        seq: Sequence | None,
        progress: Progress,
    ) -> None:
        started = time.perf_counter()
        events = list(stream_events(out, chat))
        first_token = 1 if chat else 0
        await start_stream(request.send)
        progress.status = 200
        for index, event in enumerate(events):
            if (
                engine is not None
                and seq is not None
                and first_token < index < first_token + len(out.tokens)
            ):
                tick = time.perf_counter()
                await engine.decode(seq, 1)
                self.metrics.itl.observe(time.perf_counter() - tick)
            await send_bytes(request.send, event, last=index == len(events) - 1)
            if first_token <= index < first_token + len(out.tokens):
                progress.completion_tokens += 1
        progress.done = True
        if engine is not None:
            self._observe_tpot(started, len(out.tokens))

    def _observe_tpot(self, first_token_at: float, tokens: int) -> None:
        if tokens > 1:
            self.metrics.tpot.observe((time.perf_counter() - first_token_at) / (tokens - 1))


def stream_events(out: Output, chat: bool) -> Iterator[bytes]:
    """Every SSE event of a streamed response, ``data: [DONE]`` included."""
    params = out.request
    writer = vllm_wire.ChunkWriter(out.rid, out.created, params.model, chat)
    prompt = params.prompt_tokens

    def running(done: int) -> dict[str, object] | None:
        return vllm_wire.usage(prompt, done, details=False) if params.continuous_usage else None

    if chat:
        yield writer.role(running(0))
    last = len(out.tokens) - 1
    for i, token in enumerate(out.tokens):
        yield writer.token(token, out.finish if i == last else None, running(i + 1))
    if params.include_usage:
        yield writer.final_usage(prompt, len(out.tokens))
    yield vllm_wire.DONE


def build_app(config: WorkerConfig) -> Router:
    """The emulated worker as an ASGI app."""
    return Worker(config).app()
