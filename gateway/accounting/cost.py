"""Tokens -> micro-dollars: billed cost, local shadow cost, reference cost, worst case.

- Billed: a paid deployment's price (litellm's map or config) times the tokens; local workers
  and cache hits bill nothing.
- Shadow (local workers only, recorded, not billed): the GPUs' hourly price over the worker's
  measured output throughput, i.e. the GPU-seconds a token takes at the rate the worker really
  runs. Throughput = output tokens / busy seconds, both decayed with a 5-minute half-life, busy
  time being the union of the worker's request intervals (processed in order of their ends; a
  gap left before an earlier end is not seen, so throughput is slightly high when idle gaps
  interleave - when the worker is busy, which is when the number matters, there are none).
- Reference: the same tokens on the configured reference paid model (what savings are
  measured against).
- Worst case (reservations): the priciest paid deployment of the plan, a prompt bound and
  the output bound. Imports: stdlib, ``gateway.config``, ``gateway.roster`` (meters follow
  discovered members) and ``model``/``pricing``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal

from gateway.accounting.model import to_micros
from gateway.accounting.pricing import Price
from gateway.config import Deployment
from gateway.roster import Change

_HALF_LIFE_S = 300.0
_SECONDS_PER_HOUR = Decimal(3600)


class ThroughputMeter:
    """Output tokens per busy second of one local worker, decayed over minutes."""

    __slots__ = ("_busy_s", "_busy_until", "_tokens", "_updated_at")

    def __init__(self) -> None:
        self._tokens = 0.0
        self._busy_s = 0.0
        self._busy_until = -math.inf
        self._updated_at = 0.0

    def observe(self, started_at: float, ended_at: float, output_tokens: int) -> None:
        """One request that ran on the worker from ``started_at`` to ``ended_at``."""
        if self._updated_at:
            decay = 0.5 ** (max(0.0, ended_at - self._updated_at) / _HALF_LIFE_S)
            self._tokens *= decay
            self._busy_s *= decay
        self._updated_at = ended_at
        self._tokens += output_tokens
        self._busy_s += max(0.0, ended_at - max(started_at, self._busy_until))
        self._busy_until = max(self._busy_until, ended_at)

    def tokens_per_s(self) -> float | None:
        """The measured rate, or None before anything was measured."""
        if self._busy_s <= 0 or self._tokens <= 0:
            return None
        return self._tokens / self._busy_s


class Costing:
    """Prices every answer; keeps one throughput meter per local deployment."""

    def __init__(self, reference: Price, deployments: Iterable[Deployment]) -> None:
        self.reference = reference
        self._meters = {d.name: ThroughputMeter() for d in deployments if d.local}

    def roster_changed(self, change: Change) -> None:
        """A joined local deployment gets a meter (one still known keeps its own); one that
        left loses it."""
        for dep in change.joined:
            if dep.local:
                self._meters.setdefault(dep.name, ThroughputMeter())
        for dep in change.left:
            self._meters.pop(dep.name, None)

    def billed_micros(self, dep: Deployment, input_tokens: int, output_tokens: int) -> int:
        """What the provider bills for these tokens (0 for a local worker)."""
        if dep.local or dep.price is None:
            return 0
        return to_micros(dep.price.cost(input_tokens, output_tokens))

    def reference_micros(self, input_tokens: int, output_tokens: int) -> int:
        """These tokens on the reference model."""
        return to_micros(self.reference.cost(input_tokens, output_tokens))

    def shadow_micros(
        self, dep: Deployment, output_tokens: int, started_at: float, ended_at: float
    ) -> int:
        """A local worker's GPU cost for this answer at its measured throughput."""
        meter = self._meters.get(dep.name)
        if meter is None or dep.gpu_hour_usd is None:
            return 0
        meter.observe(started_at, ended_at, output_tokens)
        rate = meter.tokens_per_s()
        if rate is None:
            return 0
        usd_per_s = dep.gpu_hour_usd * dep.gpus / _SECONDS_PER_HOUR
        return to_micros(usd_per_s * Decimal(output_tokens) / Decimal(repr(rate)))

    def worst_case_micros(
        self, plan: Iterable[Deployment], prompt_tokens: int, output_tokens: int
    ) -> int:
        """The most any deployment of ``plan`` can bill for a request within these bounds."""
        return max((self.billed_micros(d, prompt_tokens, output_tokens) for d in plan), default=0)
