"""The emulated vLLM engine: admission up to ``max_num_seqs``, a FIFO prefill queue, decode pacing.

A small asyncio scheduler around the pure model in ``latency`` (calibration.md section I): it
owns the clock and the queue, the model owns the numbers. Every delay is multiplied by
``time_scale``; the running set, the waiting queue and the KV use feed ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from loadtests.emulators.pacing import Pacer
from policies import worker_latency as latency
from policies.worker_latency import GpuProfile


@dataclass(slots=True, eq=False)
class Sequence:
    """One running request: its prompt and how many tokens it has generated so far."""

    prompt_tokens: int
    generated: int = 0
    pacer: Pacer = field(default_factory=Pacer)
    """Its decode steps' schedule (steps under 1 ms add up, see ``pacing``)."""

    @property
    def context(self) -> int:
        """Tokens held in the KV cache for this sequence."""
        return self.prompt_tokens + self.generated


class Engine:
    """Admission, prefill queue and decode steps of one emulated GPU worker."""

    def __init__(self, profile: GpuProfile, max_num_seqs: int, time_scale: float) -> None:
        self.profile = profile
        self.max_num_seqs = max_num_seqs
        self.time_scale = time_scale
        self.running: set[Sequence] = set()
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.context_tokens = 0
        self._granted = 0  # slots handed to waiters that have not resumed yet
        self._prefill_free_at = 0.0

    def kv_cache_usage(self) -> float:
        """Fraction of the KV cache used by the running sequences."""
        return latency.kv_cache_usage(self.profile, self.context_tokens)

    def mean_context(self) -> float:
        """Mean context of the running sequences (tokens)."""
        return self.context_tokens / len(self.running) if self.running else 0.0

    @contextlib.asynccontextmanager
    async def sequence(self, prompt_tokens: int) -> AsyncIterator[Sequence]:
        """Admit a sequence (waiting for a slot if needed); release it on exit or cancel."""
        await self._admit()
        seq = Sequence(prompt_tokens)
        self.running.add(seq)
        self.context_tokens += seq.context
        try:
            yield seq
        finally:
            self.running.discard(seq)
            self.context_tokens -= seq.context
            self._wake_next()

    async def prefill(self, seq: Sequence) -> None:
        """Wait behind the prompts ahead, prefill ours, and run the first decode step."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        backlog_s = max(0.0, self._prefill_free_at - now) / self.time_scale
        tokens_ahead = backlog_s * self.profile.prefill_tokens_per_s
        delay = latency.ttft_s(
            self.profile, tokens_ahead, seq.prompt_tokens, len(self.running), self.mean_context()
        )
        own = latency.prefill_s(self.profile, seq.prompt_tokens) * self.time_scale
        self._prefill_free_at = max(now, self._prefill_free_at) + own
        await asyncio.sleep(delay * self.time_scale)
        self._add_tokens(seq, 1)

    async def decode(self, seq: Sequence, steps: int) -> float:
        """Run ``steps`` decode steps for ``seq``; return the model seconds per step."""
        step = latency.decode_step_s(self.profile, len(self.running), self.mean_context())
        await seq.pacer.wait(step * steps * self.time_scale)
        self._add_tokens(seq, steps)
        return step

    def _add_tokens(self, seq: Sequence, count: int) -> None:
        seq.generated += count
        self.context_tokens += count

    async def _admit(self) -> None:
        occupied = len(self.running) + self._granted
        if not self.waiting and latency.may_admit(occupied, self.max_num_seqs):
            return
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(slot)
        try:
            await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():
                self._granted -= 1  # granted, then cancelled before resuming: pass it on
                self._wake_next()
            else:
                with contextlib.suppress(ValueError):
                    self.waiting.remove(slot)
            raise
        self._granted -= 1

    def _wake_next(self) -> None:
        while self.waiting and latency.may_admit(
            len(self.running) + self._granted, self.max_num_seqs
        ):
            slot = self.waiting.popleft()
            if not slot.done():
                slot.set_result(None)
                self._granted += 1
