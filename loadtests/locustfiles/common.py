"""The base of every simulated client: a streaming-aware chat call that reports LLM measures.

Plain Locust times whole responses. ``LLMUser`` (on ``FastHttpUser``: geventhttpclient costs
the load generator a fraction of requests' CPU) reads an SSE answer line by line as it arrives
and, beside each HTTP entry, fires Locust custom events (``request_type="LLM"``) so Locust's
stats, CSVs and HTML report carry their percentiles. Entries, as Locust's Type and Name:

- POST ``chat [A]``: a non-streamed answer; response time = the whole answer (ms), length =
  body bytes. POST ``chat stream [A]``: a streamed one; response time = until ``[DONE]``
  (Locust alone would stop at the headers), length = stream bytes. POST ``embeddings [A]``.
- POST ``chat [budget refused]``: the budget user's 429 ``insufficient_quota``, a success
  (the expected outcome) under its own name.
- LLM ``TTFT [A]``: response time = ms from sending to the first content chunk (streams).
- LLM ``tokens/s [A]``: response time = output tokens per second after the first one,
  (n - 1) / (total - TTFT), the decode speed the client sees (streams of 2+ tokens, not cache
  hits: those are replayed in one write); length = output tokens.
- LLM ``output tokens [A]``: response time and length = output tokens (every chat answer).
- LLM ``cost usd [A]``: response time and length = micro-dollars billed (non-streamed answers).
- LLM ``cache hit [A]`` / ``cache miss [A]``: the ``x-gateway-cache`` header of an answer;
  response time = the request's (ms). ``bypass`` (not cacheable) fires nothing.
- LLM ``send lag [trace]``: response time = ms a trace-paced request left after its arrival.

``A`` is the alias (model name) sent. Failures (non-2xx, an error event in a stream, a stream
without ``[DONE]`` or usage, a broken connection) are failures of their HTTP entry and fire no
LLM event. Cost comes from the ``x-gateway-cost-usd`` header, which non-streamed answers and
cache hits carry; a stream's headers leave before its usage is known, so its cost is only in
the gateway's ledger and ``gateway_spend_usd_total`` (the runner reads /metrics). The run's
total cost or tokens is the event's average content size x its count.

Two things to know when reading Locust's numbers: its "Aggregated" row counts the LLM events
too (take request counts, rates and failures from the POST entries), and its percentiles are
of values rounded to whole units below 100 and to about two significant digits above (a
2.4 ms TTFT counts as 2, 147 tokens/s as 150); min, max and mean are exact.

Users think 0.1 to 0.5 s (uniform, from the user's seeded generator: Locust's
``between(0.1, 0.5)``) after each request, a client that reads its answer and asks again
(closed loop); ``ChatUser`` under the trace shape paces itself by the trace instead.
Imports: stdlib, locust, ``loadtests``.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import random
import time
from typing import TYPE_CHECKING

from locust import FastHttpUser
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, ResponseContextManager

from loadtests.locustfiles.traffic import (
    LengthSampler,
    Settings,
    StreamTally,
    chat_body,
    completion_tokens,
    describe_failure,
    embeddings_body,
    length_sampler,
    micro_usd,
    read_settings,
    refused_for_budget,
)
from loadtests.shapes.schedule import ArrivalQueue
from loadtests.sim.trace import read_trace

if TYPE_CHECKING:
    from geventhttpclient.header import Headers
    from locust.env import Environment

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
MIN_WAIT_S, MAX_WAIT_S = 0.1, 0.5
CACHE_RESULTS = frozenset({"hit", "miss"})
"""``x-gateway-cache`` values worth an event (``bypass``: not cacheable, e.g. temperature 1)."""
_INSTANCES = itertools.count()
"""User instances of this process, across classes: the index picks a team key round-robin."""


@functools.cache
def settings() -> Settings:
    """This process's settings, read once from the environment."""
    loaded = read_settings(os.environ)
    how = "TG_SEED" if loaded.seed_given else "random; set TG_SEED to repeat the run"
    log.info("load test seed %d (%s)", loaded.seed, how)
    return loaded


@functools.cache
def sampler() -> LengthSampler:
    """Request sizes from ``TG_TRACE``, read once per process."""
    s = settings()
    return length_sampler(read_trace(s.trace), s.max_prompt_tokens, s.max_output_tokens)


def paced_arrivals(environment: Environment) -> ArrivalQueue | None:
    """The trace shape's queue of arrivals once it has started, else None (other shapes)."""
    queue = getattr(environment.shape_class, "arrivals", None)
    return queue if isinstance(queue, ArrivalQueue) and queue.origin is not None else None


def _header(headers: Headers | None, name: str) -> str | None:
    value = headers.get(name) if headers is not None else None
    return value[-1] if isinstance(value, list) else value


class LLMUser(FastHttpUser):
    """A client of the gateway: chat (streamed or not) and embeddings, measured as above."""

    abstract = True
    network_timeout = 120.0
    connection_timeout = 10.0

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.settings = settings()
        self.sampler = sampler()
        index = next(_INSTANCES)
        self.rng = random.Random(f"{self.settings.seed}/{type(self).__name__}/{index}")
        self.key = self.settings.key_for(index)

    def wait_time(self) -> float:
        """Seconds to think after a request."""
        return self.rng.uniform(MIN_WAIT_S, MAX_WAIT_S)

    def pick_stream(self) -> bool:
        """Stream this request? (``TG_STREAM_SHARE`` of them.)"""
        return self.rng.random() < self.settings.stream_share

    def send_chat(
        self,
        alias: str,
        prompt_tokens: int,
        output_tokens: int,
        *,
        stream: bool,
        seed: int | None = None,
        temperature: float | None = None,
        key: str | None = None,
        refusal_name: str | None = None,
    ) -> None:
        """One chat completion; ``seed`` picks the prompt (default: a fresh one, never
        cached); a budget refusal is a success named ``refusal_name`` when one is given."""
        body = chat_body(
            alias,
            prompt_tokens,
            output_tokens,
            self.rng.getrandbits(63) if seed is None else seed,
            stream=stream,
            ignore_eos=self.settings.ignore_eos,
            temperature=temperature,
        )
        if stream:
            self._stream_chat(alias, body, key or self.key)
        else:
            self._post_json(
                CHAT_PATH, f"chat [{alias}]", alias, body, key or self.key, refusal_name
            )

    def send_embeddings(self, alias: str, tokens: int) -> None:
        """One embeddings request for about ``tokens`` tokens of fresh text."""
        body = embeddings_body(alias, tokens, self.rng.getrandbits(63))
        self._post_json(EMBEDDINGS_PATH, f"embeddings [{alias}]", alias, body, self.key, None)

    def record(self, name: str, value: float, length: int = 0) -> None:
        """Fire one LLM custom event (counted as a success)."""
        self.environment.events.request.fire(
            request_type="LLM",
            name=name,
            response_time=value,
            response_length=length,
            response=None,
            context=self.context(),
            exception=None,
        )

    def _headers(self, key: str) -> dict[str, str]:
        # identity: a compressed SSE body could not be read line by line as it arrives
        return {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
        }

    def _post_json(
        self, path: str, name: str, alias: str, body: str, key: str, refusal_name: str | None
    ) -> None:
        started = time.perf_counter()
        with self.client.post(
            path, data=body, headers=self._headers(key), name=name, catch_response=True
        ) as resp:
            elapsed_ms = (time.perf_counter() - started) * 1000
            status, content = resp.status_code, resp.content or b""
            if refusal_name is not None and refused_for_budget(status, content):
                resp.request_meta["name"] = refusal_name
                resp.success()
                return
            if not 200 <= status < 300:
                resp.failure(_failure(resp, status, content))
                return
            resp.success()
            headers = resp.headers
        if path == CHAT_PATH:
            tokens = completion_tokens(content)
            if tokens is not None:
                self.record(f"output tokens [{alias}]", tokens, tokens)
        cost = micro_usd(_header(headers, "x-gateway-cost-usd"))
        if cost is not None:
            self.record(f"cost usd [{alias}]", cost, cost)
        self._record_cache(alias, headers, elapsed_ms)

    def _stream_chat(self, alias: str, body: str, key: str) -> None:
        tally = StreamTally()
        started = time.perf_counter()
        with self.client.post(
            CHAT_PATH,
            data=body,
            headers=self._headers(key),
            name=f"chat stream [{alias}]",
            stream=True,
            catch_response=True,
        ) as resp:
            status = resp.status_code
            if not 200 <= status < 300:
                resp.failure(_failure(resp, status, resp.content or b""))
                return
            size, broken = _read_stream(resp, tally, started)
            total_s = time.perf_counter() - started
            # Locust stops its clock at the headers of a streamed request: report the whole.
            resp.request_meta["response_time"] = total_s * 1000
            resp.request_meta["response_length"] = size
            problem = broken or tally.problem()
            if problem is not None:
                resp.failure(problem)
                return
            resp.success()
            headers = resp.headers
        if tally.first_content_s is not None:
            self.record(f"TTFT [{alias}]", tally.first_content_s * 1000)
        tokens = tally.completion_tokens or 0
        speed = tally.tokens_per_s(total_s)
        replayed = _header(headers, "x-gateway-cache") == "hit"  # one write, not a decode speed
        if speed is not None and not replayed:
            self.record(f"tokens/s [{alias}]", speed, tokens)
        self.record(f"output tokens [{alias}]", tokens, tokens)
        self._record_cache(alias, headers, total_s * 1000)

    def _record_cache(self, alias: str, headers: Headers | None, elapsed_ms: float) -> None:
        result = _header(headers, "x-gateway-cache")
        if result in CACHE_RESULTS:
            self.record(f"cache {result} [{alias}]", elapsed_ms)


def _read_stream(
    resp: ResponseContextManager, tally: StreamTally, started: float
) -> tuple[int, str | None]:
    """Feed the SSE body to ``tally`` line by line; (bytes read, why it broke or None)."""
    # FastResponse.iter_content waits for full chunks and CompatResponse.readline splits on
    # CRLF only; the geventhttpclient response under it returns each line as it arrives.
    raw = resp._response
    if raw is None:
        return 0, "no response to read"
    size = 0
    try:
        while line := raw.readline(b"\n"):
            size += len(line)
            tally.feed(
                line.decode("utf-8", "replace").rstrip("\r\n"), time.perf_counter() - started
            )
    except FAILURE_EXCEPTIONS as exc:
        return size, f"the stream broke: {exc!r}"
    return size, None


def _failure(resp: ResponseContextManager, status: int, content: bytes) -> str:
    if status == 0:
        return f"no answer: {getattr(resp, 'error', None)!r}"
    return describe_failure(status, content)
