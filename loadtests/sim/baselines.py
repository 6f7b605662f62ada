"""Baseline routers the simulator compares the product policies with (not product policies).

Each is a ``policies.model.Policy``, so the simulator drives it exactly like ``spillover``:

- ``all-paid``: everything to the cheapest paid deployment (what you pay with no GPUs).
- ``all-local``: everything to the local worker with the fewest requests in flight.
- ``round-robin``: every deployment of the alias in turn (LiteLLM's ``simple-shuffle`` in
  spirit), local or paid.
- ``least-inflight``: the deployment with the fewest requests in flight (LiteLLM's
  ``least-busy``), local or paid.
- ``cost-only``: the cheapest expected cost, whatever the load (LiteLLM's
  ``cost-based-routing``): a local worker bills 0, so the first local worker takes everything.

Every baseline, like the product policies, skips a deployment whose context window the
prompt plus expected output does not fit (``policies.filters.fits_context``): a request
that fits none is refused, as the gateway would.

Imports: stdlib, ``policies.model`` and ``policies.filters``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from policies.filters import fits_context
from policies.model import Candidate, Decision, Policy, Reason, RequestFeatures


class _Baseline:
    """A policy that orders candidates by one key (ties keep the configured order)."""

    def __init__(
        self,
        name: str,
        reason: Reason,
        key: Callable[[Candidate, RequestFeatures], float],
        keep: Callable[[Candidate], bool] = lambda c: True,
    ) -> None:
        self.name, self._reason, self._key, self._keep = name, reason, key, keep
        self.predicts = True  # the simulator always computes predictions

    def decide(self, features: RequestFeatures, candidates: Sequence[Candidate]) -> Decision:
        """Eligible candidates sorted by the key; empty plan if none is eligible."""
        kept = [
            c for c in candidates if c.available and fits_context(features, c) and self._keep(c)
        ]
        kept.sort(key=lambda c: self._key(c, features))
        detail = self.name if kept else f"{self.name}: no eligible deployment"
        reason: Reason = self._reason if kept else "no_available_deployment"
        return Decision(self.name, tuple(c.name for c in kept), reason, detail)


class RoundRobin:
    """Each available deployment in turn."""

    name = "round-robin"
    predicts = False

    def __init__(self) -> None:
        self._turn = 0

    def decide(self, features: RequestFeatures, candidates: Sequence[Candidate]) -> Decision:
        """The next deployment in turn first, the rest after it."""
        kept = [c.name for c in candidates if c.available and fits_context(features, c)]
        if not kept:
            return Decision(self.name, (), "no_available_deployment", "round-robin: none")
        start = self._turn % len(kept)
        self._turn += 1
        return Decision(
            self.name, tuple(kept[start:] + kept[:start]), "configured_order", "round-robin"
        )


def _cost(c: Candidate, f: RequestFeatures) -> float:
    return c.expected_cost_usd(f)


def _inflight(c: Candidate, f: RequestFeatures) -> float:
    return float(c.inflight)


def baseline(name: str) -> Policy:
    """A fresh baseline policy by name (see ``BASELINES``)."""
    if name == "round-robin":
        return RoundRobin()
    if name == "all-paid":
        return _Baseline(name, "cheapest_meeting_slo", _cost, lambda c: not c.local)
    if name == "all-local":
        return _Baseline(name, "local_under_slo", _inflight, lambda c: c.local)
    if name == "least-inflight":
        return _Baseline(name, "configured_order", _inflight)
    if name == "cost-only":
        return _Baseline(name, "cheapest_meeting_slo", _cost)
    raise KeyError(name)


BASELINES = ("all-paid", "all-local", "round-robin", "least-inflight", "cost-only")
