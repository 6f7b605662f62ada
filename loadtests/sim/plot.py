"""The fleet-sweep figure: total cost (% of all-paid) and SLO attainment against the number
of local GPUs, one line per policy, one row of panels per paid target. Imports: matplotlib
(Agg backend, imported lazily: a dev extra), ``loadtests.sim``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from loadtests.sim.scenarios import Outcome


def draw_sweep(sweeps: Mapping[str, Sequence[Outcome]], path: str | Path) -> None:
    """Write the PNG at ``path`` (total cost at each GPU price: solid, then dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = len(sweeps)
    fig, axes = plt.subplots(rows, 2, figsize=(12, 4.2 * rows), squeeze=False)
    for row, (target, outcomes) in enumerate(sweeps.items()):
        cost_ax, slo_ax = axes[row][0], axes[row][1]
        prices = outcomes[0].scenario.gpu_hour_usd
        for k, first in enumerate(outcomes[0].rows):
            points = [
                (len(o.scenario.fleet.locals), o.rows[k])
                for o in outcomes
                if not o.refused[first.policy]
            ]
            xs = [n for n, _ in points]
            color = f"C{k % 10}"
            for i, price in enumerate(prices):
                ys = [s.total_pct(i) for _, s in points]
                label = f"{first.policy} (USD {price:g}/h)" if i == 0 else None
                style = "-" if i == 0 else "--"
                cost_ax.plot(xs, ys, style, marker="o", color=color, label=label)
            ys = [100 * s.attainment for _, s in points]
            slo_ax.plot(xs, ys, marker="o", color=color, label=first.policy)
        cost_ax.axhline(100, color="grey", linewidth=0.8)
        cost_ax.set(
            title=f"{target}: total cost vs all-paid (solid USD {prices[0]:g}/GPU-h"
            + (f", dashed {prices[1]:g}" if len(prices) > 1 else "")
            + ")",
            xlabel="local H100s",
            ylabel="% of all-paid",
        )
        slo_ax.axhline(99, color="grey", linewidth=0.8)
        slo_ax.set(title=f"{target}: SLO attainment", xlabel="local H100s", ylabel="% TTFT <= SLO")
        slo_ax.legend(fontsize="small")
        cost_ax.set_yscale("log")
        sizes = [len(o.scenario.fleet.locals) for o in outcomes]
        cost_ax.set_xticks(sizes)
        slo_ax.set_xticks(sizes)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
