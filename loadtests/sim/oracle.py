"""A true lower bound on paid spend for a fleet and a TTFT SLO: no schedule can pay less.

Fluid relaxation of the local workers' prefill capacity (docs/simulator.md explains why it is
a bound). A request served locally within the SLO ``S`` must have its whole prompt prefilled
between its arrival ``a`` and ``a + D``, with ``D = S - (the shortest possible decode step)``,
on one GPU's FIFO prefill queue of rate ``R`` tokens/s. So:

1. a prompt longer than ``R_max x D`` can never be local within the SLO;
2. the requests arriving in any window ``[t, t + W)`` that are local within the SLO are all
   prefilled inside ``[t, t + W + D]``, so their prompts sum to at most ``R_total x (W + D)``.

Every request not served locally within the SLO costs at least its cheapest paid price ``v``
if it is paid, and if it was served locally but late we charge it ``v`` too (see
``lower_bound_holds``). The most value the local fleet can absorb under constraint 2 in each
window (disjoint windows are independent constraints) is a *fractional knapsack*: take
requests by ``v / prompt tokens``, best first, until the window's capacity is full. The bound
is the total ``v`` minus that, maximised over several window lengths (each is a valid bound).
Imports: stdlib and ``loadtests.sim``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from loadtests.sim.fleet import Fleet
from loadtests.sim.simulation import RunResult
from loadtests.sim.trace import TraceRequest

WINDOWS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, math.inf)


@dataclass(frozen=True, slots=True)
class PaidBound:
    """The lower bound on paid USD and how it was reached."""

    usd: float
    window_s: float
    """The window length that gave the tightest bound."""
    never_local: int
    """Requests whose prompt alone cannot be prefilled within the SLO on any GPU."""


def request_values(requests: Sequence[TraceRequest], fleet: Fleet) -> list[float]:
    """The cheapest paid USD of each request (what sending it to paid costs at least)."""
    return [fleet.cheapest_paid(r.prompt_tokens, r.output_tokens) for r in requests]


def paid_lower_bound(
    requests: Sequence[TraceRequest], fleet: Fleet, slo_ttft_s: float, slow_gpu: float = 1.0
) -> PaidBound:
    """The least paid USD any schedule on ``fleet`` needs to meet ``slo_ttft_s`` locally."""
    values = request_values(requests, fleet)
    total = sum(values)
    rates = [w.profile.prefill_tokens_per_s / slow_gpu for w in fleet.locals]
    steps = [w.profile.tpot_points[0][1] * slow_gpu for w in fleet.locals]
    deadline_s = slo_ttft_s - min(steps, default=math.inf)
    if not rates or deadline_s <= 0:
        return PaidBound(total, math.inf, len(requests))
    longest = max(rates) * deadline_s
    eligible = [i for i, r in enumerate(requests) if r.prompt_tokens <= longest]
    best = PaidBound(-1.0, math.inf, len(requests) - len(eligible))
    for window in WINDOWS_S:
        absorbed = _absorbed(requests, values, eligible, window, sum(rates), deadline_s)
        if total - absorbed > best.usd:
            best = PaidBound(total - absorbed, window, best.never_local)
    usd = best.usd if best.usd > 1e-9 * total else 0.0  # float residue of total - absorbed
    return PaidBound(usd, best.window_s, best.never_local)


def _absorbed(
    requests: Sequence[TraceRequest],
    values: Sequence[float],
    eligible: Sequence[int],
    window_s: float,
    rate: float,
    deadline_s: float,
) -> float:
    """The most paid value local prefill can take over, window by window (fractional)."""
    groups: dict[float, list[int]] = defaultdict(list)
    for i in eligible:
        key = 0.0 if math.isinf(window_s) else math.floor(requests[i].arrival_s / window_s)
        groups[key].append(i)
    absorbed = 0.0
    for members in groups.values():
        if math.isinf(window_s):
            span = requests[members[-1]].arrival_s - requests[members[0]].arrival_s
            capacity = rate * (span + deadline_s)
        else:
            capacity = rate * (window_s + deadline_s)
        members.sort(key=lambda i: values[i] / requests[i].prompt_tokens, reverse=True)
        for i in members:
            tokens = requests[i].prompt_tokens
            take = min(1.0, capacity / tokens)
            absorbed += take * values[i]
            capacity -= take * tokens
            if capacity <= 0:
                break
    return absorbed


def charged_usd(result: RunResult, values: Sequence[float]) -> float:
    """Paid USD plus the cheapest paid value of every request not served within the SLO
    locally or paid: what the bound is a lower bound of (equal to paid USD at 100% local
    attainment)."""
    slo = result.settings.slo_ttft_s
    paid_names = {p.name for p in result.fleet.paid}
    late_local = 0.0
    for i, (ttft, where) in enumerate(zip(result.ttft_s, result.served_by, strict=True)):
        is_paid = where >= 0 and result.fleet.order[where] in paid_names
        if not is_paid and ttft > slo:
            late_local += values[i]
    return result.paid_usd + late_local


def lower_bound_holds(result: RunResult, bound: PaidBound, values: Sequence[float]) -> bool:
    """Whether ``result`` respects the bound (a False is a bug in the bound or the DES)."""
    return charged_usd(result, values) >= bound.usd - 1e-9 * sum(values)
