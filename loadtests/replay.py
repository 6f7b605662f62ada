"""``python -m loadtests.replay``: send a time-compressed slice of a trace to a running gateway.

Open loop: request i leaves at its (compressed) arrival time whether or not earlier ones have
answered, through the official openai SDK (``AsyncOpenAI``, no retries), streaming, with
``max_tokens`` = the trace's output tokens and ``ignore_eos`` so a vLLM worker generates exactly
that many. Per request it records the deployment that served it (``x-gateway-deployment``),
the client-measured TTFT (first content token) and total time, the usage and any error; the
result gives the local share, paid $ (usage x the deployment's price in the gateway config,
local = 0), TTFT percentiles and SLO attainment. ``replay`` is the same as a function, for
the tests and the load tests; ``loadtests.sim.replay.replay_slice`` cuts the slice, so the
simulator can be run on the very same list (docs/simulator.md).

Two things make a replayed request the one the simulator sees:

- **Prompt size as the gateway estimates it.** The gateway guesses prompt tokens as request
  bytes / 4 (no tokenizer on the hot path), which holds for real text. The emulators count one
  word as one token, so the prompt is N - 4 words (4 per message: ``textgen``) whose lengths
  are chosen to make the whole JSON body 4 x N bytes: the gateway's guess is the trace's N.
- **Output length on paid deployments.** The paid emulators, like the real APIs, ignore
  ``ignore_eos`` (the emulators accept and drop it; a real provider may refuse an unknown
  parameter: ``--no-ignore-eos`` there): a reply stops at its natural length, which the
  emulators draw from the conv trace by a hash of the prompt text (``textgen``). With
  ``natural_lengths`` (the emulators' table, loaded by default) the sender picks, per
  request, the first prompt variant whose natural length is at least the trace's output, so
  ``max_tokens`` makes every deployment generate exactly the trace's output tokens.

Prompts shorter than the JSON envelope (about 40 tokens) come out larger than 4 x N bytes.
The send lag (how late requests left) is reported: if it grows, the client machine is the
bottleneck and the TTFTs measure it too.

Imports: ``gateway.config``, ``loadtests``, ``openai``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import string
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai

from gateway.config import Config, load_config
from loadtests.emulators import textgen
from loadtests.percentiles import nearest_rank
from loadtests.sim.replay import replay_slice
from loadtests.sim.trace import TraceRequest, read_trace

BYTES_PER_TOKEN = 4
"""The gateway's prompt estimate: request body bytes per token (``gateway.dispatch``)."""
MAX_VARIANTS = 200_000
"""Prompt variants tried for a natural length (about 10 on average: 1/P(length >= n))."""
TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Sent:
    """What happened to one replayed request (times in seconds)."""

    index: int
    scheduled_s: float
    lag_s: float
    """How late the request left against its schedule (the sender's own delay)."""
    deployment: str | None
    reason: str | None
    ttft_s: float | None
    total_s: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Every request's record, with the config's view of deployments and prices."""

    sent: tuple[Sent, ...]
    config: Config
    slo_ttft_s: float

    def _local(self, s: Sent) -> bool:
        dep = self.config.deployments.get(s.deployment or "")
        return dep is not None and dep.local

    @property
    def local_share(self) -> float:
        """Share of all requests (errors included) that a local deployment served."""
        return sum(1 for s in self.sent if self._local(s)) / len(self.sent) if self.sent else 0.0

    @property
    def paid_usd(self) -> Decimal:
        """Usage x the serving deployment's price, over every paid answer."""
        total = Decimal(0)
        for s in self.sent:
            dep = self.config.deployments.get(s.deployment or "")
            if dep is None or dep.local or dep.price is None:
                continue
            total += dep.price.cost(s.prompt_tokens or 0, s.completion_tokens or 0)
        return total

    @property
    def errors(self) -> int:
        """Requests that failed (no answer, or a broken stream)."""
        return sum(1 for s in self.sent if s.error is not None)

    def attainment(self, skip: int = 0) -> float:
        """Share of requests after the first ``skip`` with TTFT <= the SLO (errors miss)."""
        rest = self.sent[skip:]
        met = sum(1 for s in rest if s.ttft_s is not None and s.ttft_s <= self.slo_ttft_s)
        return met / len(rest) if rest else 0.0

    def ttft_percentile(self, q: float) -> float:
        """Nearest-rank percentile of TTFT (a failed request counts as infinite)."""
        return nearest_rank([math.inf if s.ttft_s is None else s.ttft_s for s in self.sent], q)

    def by_deployment(self) -> dict[str, int]:
        """Requests per serving deployment (``error`` for failures)."""
        counts: dict[str, int] = {}
        for s in self.sent:
            key = s.deployment or "error"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def lag_p99_s(self) -> float:
        """How late the sender's p99 request left (nearest rank): the client machine's delay."""
        lags = sorted(s.lag_s for s in self.sent)
        return lags[max(0, math.ceil(0.99 * len(lags)) - 1)] if lags else 0.0

    def summary(self) -> str:
        """A few lines for people."""
        ms = "/".join(f"{1000 * self.ttft_percentile(q):,.0f}" for q in (50, 95, 99))
        lags = sorted(s.lag_s for s in self.sent)
        lag_p99 = self.lag_p99_s()
        return "\n".join(
            [
                f"requests: {len(self.sent)} ({self.errors} errors), by deployment: "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.by_deployment().items())),
                f"local share: {100 * self.local_share:.1f}%",
                f"paid $: {self.paid_usd:.6f}",
                f"TTFT p50/p95/p99 ms: {ms}",
                f"SLO attainment (TTFT <= {1000 * self.slo_ttft_s:g} ms): "
                f"{100 * self.attainment():.2f}%",
                f"send lag p99/max ms: {1000 * lag_p99:.0f}/{1000 * max(lags, default=0):.0f}",
                *[f"error: {s.error}" for s in self.sent if s.error is not None][:3],
            ]
        )


def _words(letters: int, count: int, rng: random.Random) -> list[str]:
    """``count`` words of lowercase letters, ``letters`` in all (at least one each)."""
    if count <= 0:
        return []
    base, extra = divmod(max(letters, count), count)
    lowercase = string.ascii_lowercase
    return ["".join(rng.choices(lowercase, k=base + (i < extra))) for i in range(count)]


def _first_long_enough(
    head: str, rest: str, output_tokens: int, lengths: textgen.OutputLengths
) -> str:
    """``head``+variant+``rest`` for the first variant whose natural length covers the output."""
    best, best_length = f"{head}0{rest}", -1
    for variant in range(MAX_VARIANTS):
        text = f"{head}{variant}{rest}"
        natural = lengths.draw(textgen.prompt_seed(text))
        if natural >= output_tokens:
            return text
        if natural > best_length:
            best, best_length = text, natural
    return best


def prompt_text(
    prompt_tokens: int,
    output_tokens: int,
    seed: int,
    envelope_bytes: int,
    natural_lengths: textgen.OutputLengths | None = None,
) -> str:
    """One user message's text: ``prompt_tokens`` tokens to the emulators (with the message
    overhead) in a body of about ``BYTES_PER_TOKEN`` x ``prompt_tokens`` bytes, given the
    body's other ``envelope_bytes``; unique per ``seed`` so the response cache never hits."""
    count = max(1, prompt_tokens - textgen.MESSAGE_OVERHEAD_TOKENS)
    head = f"r{seed}v"
    head_len = len(head) + 1  # one variant digit, usually
    content_bytes = BYTES_PER_TOKEN * prompt_tokens - envelope_bytes
    letters = content_bytes - (count - 1) - head_len  # spaces between words, then the head
    rest = "".join(" " + w for w in _words(letters, count - 1, random.Random(seed)))
    if natural_lengths is None:
        return f"{head}0{rest}"
    return _first_long_enough(head, rest, output_tokens, natural_lengths)


def request_body(
    r: TraceRequest,
    seed: int,
    alias: str,
    *,
    stream: bool,
    ignore_eos: bool,
    natural_lengths: textgen.OutputLengths | None,
) -> dict[str, Any]:
    """The JSON body for one trace request, in the openai SDK's field order."""
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": ""}],
        "model": alias,
        "max_tokens": r.output_tokens,
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    if ignore_eos:
        body["ignore_eos"] = True
    envelope = len(json.dumps(body, separators=(",", ":")))
    text = prompt_text(r.prompt_tokens, r.output_tokens, seed, envelope, natural_lengths)
    body["messages"] = [{"role": "user", "content": text}]
    return body


@dataclass(slots=True)
class _Seen:
    """What one request's reply showed so far."""

    started: float
    ttft_s: float | None = None
    usage: tuple[int, int] | None = None
    error: str | None = None


def _read_event(line: str, seen: _Seen) -> None:
    """Note what one SSE line says: the first content token, usage, an error event."""
    if not line.startswith("data: ") or line == "data: [DONE]":
        return
    event = json.loads(line[6:])
    if "error" in event:
        seen.error = str(event["error"])
    if seen.ttft_s is None and any(
        (c.get("delta") or {}).get("content") for c in event.get("choices") or ()
    ):
        seen.ttft_s = time.perf_counter() - seen.started
    usage = event.get("usage")
    if usage:
        seen.usage = (usage["prompt_tokens"], usage["completion_tokens"])


async def _send(
    client: openai.AsyncOpenAI, index: int, body: dict[str, Any], scheduled_s: float, lag: float
) -> Sent:
    # Raw SSE lines and json.loads rather than the SDK's typed stream: building a pydantic
    # object per token would make this sender, not the fleet, the bottleneck at ~5k tokens/s.
    seen = _Seen(time.perf_counter())
    deployment = reason = None
    stream = bool(body.get("stream"))
    try:
        async with client.chat.completions.with_streaming_response.create(
            messages=body["messages"],
            model=body["model"],
            max_tokens=body["max_tokens"],
            stream=stream,
            stream_options=body.get("stream_options", openai.NOT_GIVEN),
            extra_body={"ignore_eos": True} if body.get("ignore_eos") else None,
        ) as response:
            deployment = response.headers.get("x-gateway-deployment")
            reason = response.headers.get("x-gateway-route-reason")
            if stream:
                async for line in response.iter_lines():
                    _read_event(line, seen)
            else:
                _read_event("data: " + (await response.text()), seen)
                seen.ttft_s = time.perf_counter() - seen.started
    except (openai.OpenAIError, httpx.HTTPError, ValueError) as exc:
        seen.error = repr(exc)  # refused, timed out, or the stream broke or was garbled
    total = time.perf_counter() - seen.started
    prompt, completion = seen.usage or (None, None)
    error = seen.error or (None if seen.usage else "no usage in the reply")
    return Sent(
        index, scheduled_s, lag, deployment, reason, seen.ttft_s, total, prompt, completion, error
    )


async def replay(
    requests: Sequence[TraceRequest],
    gateway_url: str,
    alias: str,
    config: Config,
    *,
    stream: bool = True,
    slo_ttft_s: float = 1.0,
    ignore_eos: bool = True,
    natural_lengths: textgen.OutputLengths | None = None,
    api_key: str = "sk-replay",
    timeout_s: float = TIMEOUT_S,
) -> ReplayResult:
    """Send ``requests`` (a slice from ``replay_slice``) to ``gateway_url`` (no /v1) at their
    arrival times, open loop, and wait for every answer. ``config`` is the gateway's (which
    deployments are local, their prices); ``natural_lengths``: see the module docstring."""
    bodies = [
        request_body(
            r, i, alias, stream=stream, ignore_eos=ignore_eos, natural_lengths=natural_lengths
        )
        for i, r in enumerate(requests)
    ]
    client = openai.AsyncOpenAI(
        base_url=f"{gateway_url}/v1", api_key=api_key, max_retries=0, timeout=timeout_s
    )
    tasks: list[asyncio.Task[Sent]] = []
    async with client, asyncio.TaskGroup() as group:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, (r, body) in enumerate(zip(requests, bodies, strict=True)):
            wait = start + r.arrival_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            lag = max(0.0, loop.time() - start - r.arrival_s)
            tasks.append(group.create_task(_send(client, i, body, r.arrival_s, lag)))
    return ReplayResult(tuple(t.result() for t in tasks), config, slo_ttft_s)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m loadtests.replay", description=__doc__)
    p.add_argument("--trace", required=True, help="Azure 2023 .csv or Mooncake .jsonl")
    p.add_argument("--gateway", required=True, help="gateway base URL, e.g. http://127.0.0.1:8080")
    p.add_argument("--alias", required=True, help="the model name to send")
    p.add_argument("--config", required=True, help="the gateway's config (prices, locality)")
    p.add_argument("--rate-scale", type=float, default=1.0, help="compress arrivals K-fold")
    p.add_argument("--start-s", type=float, default=0.0, help="slice start (trace seconds)")
    p.add_argument("--duration-s", type=float, default=None, help="slice length (trace s)")
    p.add_argument("--limit", type=int, default=None, help="at most N requests")
    p.add_argument("--stream", action="store_true", default=True, help="stream (default)")
    p.add_argument("--no-stream", dest="stream", action="store_false")
    p.add_argument("--slo-ttft-ms", type=float, default=1000.0)
    p.add_argument(
        "--no-ignore-eos", action="store_true", help="for real providers that refuse ignore_eos"
    )
    p.add_argument(
        "--natural-lengths",
        default=str(textgen.DEFAULT_TRACE),
        help="the paid emulators' --trace (output lengths); 'none' to skip the length match",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Replay, print the summary; exit status 1 if any request failed."""
    args = parse_args(argv)
    requests = replay_slice(
        read_trace(args.trace), args.start_s, args.duration_s, args.rate_scale, args.limit
    )
    if not requests:
        sys.stderr.write("the slice is empty\n")
        return 2
    lengths = None
    if args.natural_lengths != "none":
        lengths = textgen.load_output_lengths(Path(args.natural_lengths))
    result = asyncio.run(
        replay(
            requests,
            args.gateway.rstrip("/"),
            args.alias,
            load_config(args.config),
            stream=args.stream,
            slo_ttft_s=args.slo_ttft_ms / 1000,
            ignore_eos=not args.no_ignore_eos,
            natural_lengths=lengths,
        )
    )
    print(result.summary())
    return 1 if result.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
