"""``CacheHeavyUser``: an evaluation suite that asks the same few questions again and again.

Every user of the process draws from one pool of ``TG_CACHE_POOL`` (8) prompts, each with an
alias from ``TG_ALIASES`` and sizes from the trace (``traffic``), fixed by ``TG_SEED``; they
are sent at temperature 0, so the gateway's deterministic response cache stores the first
answer and replays it (JSON, or SSE for the ``TG_STREAM_SHARE`` that stream). The
``x-gateway-cache`` header of each answer is counted as ``cache hit [A]`` / ``cache miss [A]``
events whose response times are the requests' (``common``). Imports: locust, ``loadtests``.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from locust import task

from loadtests.locustfiles.common import LLMUser, sampler, settings


@dataclass(frozen=True, slots=True)
class PooledPrompt:
    """One repeated request: alias, sizes and the seed that makes its prompt text."""

    alias: str
    prompt_tokens: int
    output_tokens: int
    seed: int


@functools.cache
def prompt_pool() -> tuple[PooledPrompt, ...]:
    """The process's pool, the same for every user (and every run with the same TG_SEED)."""
    s = settings()
    rng = random.Random(f"{s.seed}/cache-pool")
    pool = []
    for _ in range(s.cache_pool):
        prompt, output = sampler().draw(rng)
        pool.append(PooledPrompt(rng.choice(s.chat_aliases), prompt, output, rng.getrandbits(63)))
    return tuple(pool)


class CacheHeavyUser(LLMUser):
    """Repeated temperature-0 prompts: mostly cache hits after the first round."""

    weight = 2

    @task
    def ask_again(self) -> None:
        """One of the pool's prompts, streamed or not."""
        entry = self.rng.choice(prompt_pool())
        self.send_chat(
            entry.alias,
            entry.prompt_tokens,
            entry.output_tokens,
            stream=self.pick_stream(),
            seed=entry.seed,
            temperature=0.0,
        )
