"""Replaying a trace slice against a live gateway: when to send what, and the prompt text.

``schedule`` turns a slice of a trace into ``ReplayItem`` s (send time from the start of the
replay, prompt and output tokens), time-compressed the same way as the simulator's
``--rate-scale``, so a live run and a simulated run of the same slice can be compared. The
sender itself (a Locust user or an asyncio loop) is the load tests'. ``chat_messages`` builds
a prompt the emulators count as exactly N prompt tokens (one word = one token, plus
``MESSAGE_OVERHEAD_TOKENS`` per message: ``loadtests.emulators.textgen``), unique per request
so the gateway's response cache never hits. Imports: stdlib, ``loadtests``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from loadtests.emulators.textgen import MESSAGE_OVERHEAD_TOKENS, VOCABULARY
from loadtests.sim.trace import TraceRequest, compressed, sliced


@dataclass(frozen=True, slots=True)
class ReplayItem:
    """One request to send ``send_at_s`` seconds after the replay starts."""

    send_at_s: float
    prompt_tokens: int
    output_tokens: int


def replay_slice(
    requests: Sequence[TraceRequest],
    start_s: float = 0.0,
    duration_s: float | None = None,
    rate_scale: float = 1.0,
    limit: int | None = None,
) -> list[TraceRequest]:
    """The requests of ``[start_s, start_s + duration_s)`` (trace seconds), compressed by
    ``rate_scale`` and cut to the first ``limit``: feed the same list to the simulator."""
    kept = compressed(sliced(requests, start_s, duration_s), rate_scale)
    return kept if limit is None else kept[:limit]


def schedule(requests: Sequence[TraceRequest]) -> Iterator[ReplayItem]:
    """Send times and token counts of an already sliced and compressed list."""
    for r in requests:
        yield ReplayItem(r.arrival_s, r.prompt_tokens, r.output_tokens)


def prompt_words(tokens: int, seed: int) -> str:
    """``tokens`` whitespace-separated words (at least one), the first unique to ``seed``."""
    count = max(1, tokens)
    rng = random.Random(seed)
    return " ".join([f"r{seed}", *rng.choices(VOCABULARY, k=count - 1)])


def chat_messages(prompt_tokens: int, seed: int) -> list[dict[str, str]]:
    """One user message that the emulators count as ``prompt_tokens`` prompt tokens
    (never fewer than ``MESSAGE_OVERHEAD_TOKENS + 1``)."""
    words = prompt_words(prompt_tokens - MESSAGE_OVERHEAD_TOKENS, seed)
    return [{"role": "user", "content": words}]
