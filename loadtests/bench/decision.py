"""The decision microbenchmark: one routing decision over 10 candidates, as a share of the
gateway's per-request overhead.

Times ``decide`` of every built-in policy (``timeit``, the median of several repeats) on one
mixed fleet: 4 local Qwen workers (two predicted under the SLO, two over it) and 6 paid
deployments (one with its circuit open), as the gateway calls it (``explain`` off), plus
``spillover`` with every candidate scored (the explain endpoint). Targets (policy engine
issue): under ``MAX_DECISION_US`` and under ``MAX_SHARE`` of the gateway's CPU per request.
Pure CPU: no I/O beyond printing.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from dataclasses import dataclass, replace

from policies.compose import build_policy, known_policies
from policies.model import Candidate, Policy, RequestFeatures

GATEWAY_CPU_US_PER_REQUEST = 149.0
"""docs/benchmarks.md, results of 2026-11-23: gateway at c=64, 0.149 CPU ms per request."""
MAX_DECISION_US = 50.0
MAX_SHARE = 0.10


@dataclass(frozen=True, slots=True)
class Timing:
    """Median microseconds per decision of one policy (``label`` says which variant)."""

    label: str
    us_per_decision: float

    @property
    def share(self) -> float:
        """As a fraction of the gateway's CPU per request."""
        return self.us_per_decision / GATEWAY_CPU_US_PER_REQUEST

    @property
    def passed(self) -> bool:
        """Under both targets."""
        return self.us_per_decision < MAX_DECISION_US and self.share < MAX_SHARE


def fleet() -> tuple[RequestFeatures, tuple[Candidate, ...]]:
    """One request and 10 candidates that take every branch of a typical decision."""
    local = tuple(
        Candidate(
            f"qwen-7b-{i}",
            local=True,
            context_window=32_768,
            inflight=6 * i,
            max_concurrency=256,
            running=6 * i,
            waiting=2 * i,
            predicted_ttft_s=0.35 * (i + 1),
            tpot_s=0.009,
            shadow_usd_per_output_token=4e-8,
        )
        for i in range(4)
    )
    paid = tuple(
        Candidate(
            f"paid-{i}",
            local=False,
            input_usd_per_token=1.5e-7 * (i + 1),
            output_usd_per_token=6e-7 * (i + 1),
            context_window=128_000,
            circuit="open" if i == 2 else "closed",
            inflight=i,
            predicted_ttft_s=0.45 + 0.05 * i,
            tpot_s=0.011,
            weight=1.0 + i,
        )
        for i in range(6)
    )
    features = RequestFeatures(
        "chat", 900, 250, slo_ttft_s=1.0, budget_left_usd=50.0, budget_total_usd=100.0, draw=0.37
    )
    return features, local + paid


def time_decision(
    policy: Policy,
    features: RequestFeatures,
    candidates: tuple[Candidate, ...],
    number: int,
    repeat: int,
) -> float:
    """Median microseconds per ``policy.decide`` over ``repeat`` runs of ``number`` calls."""

    def once() -> object:
        return policy.decide(features, candidates)

    runs = timeit.repeat(once, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


def measure(number: int = 2000, repeat: int = 7) -> list[Timing]:
    """Every built-in policy's timing, ``budget`` with the budget low (it then decides itself
    rather than delegating), and ``spillover`` with ``explain`` on (the explain endpoint)."""
    features, candidates = fleet()
    variants = [(name, name, features) for name in known_policies()]
    variants.append(("budget+low", "budget", replace(features, budget_left_usd=5.0)))
    variants.append(("spillover+explain", "spillover", replace(features, explain=True)))
    return [
        Timing(label, time_decision(build_policy(name, {}), f, candidates, number, repeat))
        for label, name, f in variants
    ]


def report(timings: list[Timing]) -> str:
    """The table: microseconds per decision and the share of the gateway's CPU per request."""
    lines = [
        f"one decision over 10 candidates; gateway CPU per request {GATEWAY_CPU_US_PER_REQUEST:g}"
        f" us (docs/benchmarks.md); targets < {MAX_DECISION_US:g} us and < {MAX_SHARE:.0%}",
        f"{'policy':<18} {'us/decision':>11} {'of request':>10}  verdict",
    ]
    for t in timings:
        verdict = "PASS" if t.passed else "MISS"
        if t.label.endswith("+explain"):
            verdict = "(explain endpoint only, not per request)"
        lines.append(f"{t.label:<18} {t.us_per_decision:>11.1f} {t.share:>10.1%}  {verdict}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``decision`` subcommand's flags."""
    parser.add_argument("--number", type=int, default=2000, help="decisions per repeat")
    parser.add_argument("--repeat", type=int, default=7, help="repeats (the median is shown)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a policy misses")


def run(args: argparse.Namespace) -> int:
    """Measure, print the table; with ``--check``, 1 if any built-in policy missed a target."""
    timings = measure(args.number, args.repeat)
    print(report(timings))
    missed = [t for t in timings if not t.passed and not t.label.endswith("+explain")]
    return 1 if args.check and missed else 0
