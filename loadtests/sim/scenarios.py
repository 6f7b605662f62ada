"""One scenario (trace x rate x fleet x SLO) run through every requested policy, with the
oracle bound; and the fleet-size sweep. Imports: ``loadtests.sim``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loadtests.sim.catalog import make_policy
from loadtests.sim.fleet import Fleet
from loadtests.sim.oracle import PaidBound, paid_lower_bound, request_values
from loadtests.sim.report import Summary, progress_bar, summarize
from loadtests.sim.simulation import REFUSED, SimSettings, simulate
from loadtests.sim.trace import TraceRequest


@dataclass(frozen=True, slots=True)
class Scenario:
    """What is simulated: requests (already compressed), a fleet, the settings."""

    label: str
    requests: Sequence[TraceRequest]
    fleet: Fleet
    settings: SimSettings
    gpu_hour_usd: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """Every policy's summary on one scenario, the bound, and which policies refused some."""

    scenario: Scenario
    rows: tuple[Summary, ...]
    bound: PaidBound
    refused: dict[str, int]


def run_scenario(scenario: Scenario, policies: Sequence[str], progress: bool = True) -> Outcome:
    """Simulate every policy on ``scenario``; summaries in the order given."""
    values = request_values(scenario.requests, scenario.fleet)
    s = scenario.settings
    bound = paid_lower_bound(scenario.requests, scenario.fleet, s.slo_ttft_s, s.slow_gpu)
    rows, refused = [], {}
    for name in policies:
        bar = progress_bar(f"{scenario.label} {name}") if progress else None
        result = simulate(scenario.requests, scenario.fleet, make_policy(name), s, bar)
        rows.append(summarize(result, values, scenario.gpu_hour_usd))
        refused[name] = sum(1 for w in result.served_by if w == REFUSED)
    return Outcome(scenario, tuple(rows), bound, refused)


def sweep(
    scenario: Scenario, policies: Sequence[str], max_gpus: int, progress: bool = True
) -> list[Outcome]:
    """The scenario with 0..``max_gpus`` local workers."""
    outcomes = []
    for gpus in range(max_gpus + 1):
        fleet = scenario.fleet.with_gpus(gpus)
        label = f"{scenario.label} gpus={gpus}"
        sized = Scenario(label, scenario.requests, fleet, scenario.settings, scenario.gpu_hour_usd)
        outcomes.append(run_scenario(sized, policies, progress))
    return outcomes


def sweep_table(outcomes: Sequence[Outcome], price_index: int) -> str:
    """Markdown: total cost % of all-paid (and SLO attainment) per policy per fleet size.

    Break-even: the fewest GPUs with total cost under all-paid and SLO attainment at least
    min(99%, all-paid's attainment) (``outcomes[0]`` must be the 0-GPU run)."""
    price = outcomes[0].scenario.gpu_hour_usd[price_index]
    sizes = [len(o.scenario.fleet.locals) for o in outcomes]
    head = [f"policy (@${price:g}/GPU-h)", *(f"{n} GPU" for n in sizes), "break-even"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    # Paying for GPUs only counts if latency is no worse than paying for everything.
    floor = min(0.99, max((s.attainment for s in outcomes[0].rows), default=0.0))
    for k, s0 in enumerate(outcomes[0].rows):
        cells, even = [s0.policy], "-"
        for o, n in zip(outcomes, sizes, strict=True):
            s = o.rows[k]
            if o.refused[s.policy]:
                cells.append("n/a")
                continue
            total = s.total_pct(price_index)
            cells.append(f"{total:.0f}% ({100 * s.attainment:.1f}%)")
            if even == "-" and n > 0 and total < 100 and s.attainment >= floor:
                even = f"{n} GPU"
        lines.append("| " + " | ".join([*cells, even]) + " |")
    return "\n".join(lines)
