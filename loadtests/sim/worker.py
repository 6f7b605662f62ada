"""One simulated vLLM worker: the vLLM emulator's engine, event-driven instead of sleeping.

The same rules as ``loadtests/emulators/engine.py`` (and the same numbers, from
``policies.worker_latency``): a sequence is admitted while fewer than ``max_num_seqs`` run
(else it waits, FIFO); on admission its prompt joins one FIFO prefill queue per GPU and its
first token comes at ``prefill done + one decode step``; after that every running sequence
advances one token per decode step, whose length depends on how many run and their mean
context. Decode is tracked in *virtual tokens* ``V`` (``dV/dt = 1 / step``, piecewise constant
between events), so a sequence finishes when ``V`` reaches its start plus its remaining tokens,
and the cost per event is O(log n) however many tokens are generated.
Imports: stdlib and ``policies.worker_latency``.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

from policies import worker_latency as latency
from policies.worker_latency import GpuProfile

_EPS = 1e-9


@dataclass(slots=True)
class WorkerState:
    """Mutable state of one simulated GPU; the simulation loop owns the clock."""

    profile: GpuProfile
    """The *true* profile (possibly slower than the calibration the predictor uses)."""
    running: int = 0
    waiting: deque[tuple[int, int]] = field(default_factory=deque)
    """(request id, prompt tokens) not yet admitted."""
    prefill_free_at: float = 0.0
    pending_prompt_tokens: int = 0
    """Prompt tokens of requests sent here without a first token yet (the gateway can count)."""
    inflight: int = 0
    """Requests sent here and not finished (the gateway's own count)."""
    version: int = 0
    """Bumped whenever the next finish time changes; stale wake-ups are ignored."""
    _prompts_running: int = 0
    _decoding: list[tuple[float, int, int, float]] = field(default_factory=list)
    """Heap of (virtual finish, request id, prompt tokens, virtual start)."""
    _v0_sum: float = 0.0
    _virtual: float = 0.0
    _last_t: float = 0.0
    _step_s: float = 0.0

    def mean_context(self) -> float:
        """Mean tokens in the KV cache per running sequence (prompt + generated so far)."""
        if not self.running:
            return 0.0
        decoding = len(self._decoding)
        generated = decoding * (1.0 + self._virtual) - self._v0_sum
        return (self._prompts_running + generated) / self.running

    def kv_cache_usage(self) -> float:
        """Fraction of the KV cache held by running sequences."""
        tokens = int(self.mean_context() * self.running)
        return latency.kv_cache_usage(self.profile, tokens)

    def advance(self, now: float) -> None:
        """Move the decode clock to ``now`` at the current step time."""
        if self._step_s > 0 and now > self._last_t:
            self._virtual += (now - self._last_t) / self._step_s
        self._last_t = now

    def submit(self, now: float, rid: int, prompt_tokens: int) -> list[tuple[float, int]]:
        """A request arrives; returns [(first token time, id)] for what was admitted."""
        self.advance(now)
        self.inflight += 1
        self.pending_prompt_tokens += prompt_tokens
        self.waiting.append((rid, prompt_tokens))
        return self._admit(now)

    def first_token(self, now: float, rid: int, prompt_tokens: int, output_tokens: int) -> None:
        """The request's prefill and first decode step are done; it decodes the rest."""
        self.advance(now)
        self.pending_prompt_tokens -= prompt_tokens
        remaining = output_tokens - 1
        if remaining <= 0:
            self._release(prompt_tokens)
            return
        v0 = self._virtual
        heapq.heappush(self._decoding, (v0 + remaining, rid, prompt_tokens, v0))
        self._v0_sum += v0
        self._retime()

    def wake(self, now: float) -> tuple[list[int], list[tuple[float, int]]]:
        """Finish every sequence done by ``now``; returns (finished ids, newly admitted)."""
        self.advance(now)
        done = []
        while self._decoding and self._decoding[0][0] <= self._virtual + _EPS:
            _, rid, prompt, v0 = heapq.heappop(self._decoding)
            self._v0_sum -= v0
            done.append(rid)
            self._release(prompt)
        if not self._decoding:
            self._v0_sum = 0.0  # no float drift across idle periods
        return done, self._admit(now)

    def next_finish_s(self, now: float) -> float | None:
        """When the next decoding sequence finishes at the current step time."""
        if not self._decoding:
            return None
        return now + max(0.0, self._decoding[0][0] - self._virtual) * self._step_s

    def _release(self, prompt_tokens: int) -> None:
        self.running -= 1
        self.inflight -= 1
        self._prompts_running -= prompt_tokens
        self._retime()

    def _admit(self, now: float) -> list[tuple[float, int]]:
        admitted = []
        while self.waiting and latency.may_admit(self.running, self.profile.max_num_seqs):
            rid, prompt = self.waiting.popleft()
            self.running += 1
            self._prompts_running += prompt
            start = max(now, self.prefill_free_at)
            self.prefill_free_at = start + latency.prefill_s(self.profile, prompt)
            step = latency.decode_step_s(self.profile, self.running, self.mean_context())
            admitted.append((self.prefill_free_at + step, rid))
        if admitted:
            self._retime()
        return admitted

    def _retime(self) -> None:
        self._step_s = latency.decode_step_s(
            self.profile, max(1, self.running), self.mean_context()
        )
        self.version += 1
