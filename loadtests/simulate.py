"""``python -m loadtests.simulate``: the what-if simulator (docs/simulator.md).

Replays a trace through the gateway's policies and the baselines on a simulated fleet and
prints, per scenario, a Markdown table (paid $, local share, TTFT percentiles, SLO attainment,
total cost against all-paid) with the oracle lower bound; ``--fleet-sweep N`` adds total cost
against fleet size, ``--png`` draws it. ``--rate-scale`` and ``--gpus`` take comma-separated
lists to run several scenarios at once. Imports: ``gateway.config``, ``loadtests.sim``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from gateway.config import load_config
from loadtests.sim.catalog import DEFAULT
from loadtests.sim.fleet import fleet_from_config, mixed_aliases
from loadtests.sim.plot import draw_sweep
from loadtests.sim.report import bound_note, table
from loadtests.sim.scenarios import Outcome, Scenario, run_scenario, sweep, sweep_table
from loadtests.sim.simulation import SimSettings
from loadtests.sim.trace import compressed, read_trace, span_s


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m loadtests.simulate", description=__doc__)
    p.add_argument("--trace", required=True, help="Azure 2023 .csv or Mooncake .jsonl")
    p.add_argument("--config", required=True, help="gateway YAML config with the fleet")
    p.add_argument(
        "--alias",
        action="append",
        help="alias to simulate (default: every alias "
        "mixing local and paid deployments; one per paid target)",
    )
    p.add_argument("--policy", action="append", help=f"default: {', '.join(DEFAULT)}")
    p.add_argument("--rate-scale", type=_floats, default=(1.0,), help="K or K1,K2,...")
    p.add_argument("--gpus", type=_ints, default=None, help="local workers: N or N1,N2,...")
    p.add_argument("--slo-ttft-ms", type=float, default=1000.0)
    p.add_argument(
        "--target-ttft-ms",
        type=float,
        default=None,
        help="the TTFT SLO the policies are told (headroom); attainment is still measured "
        "against --slo-ttft-ms",
    )
    p.add_argument(
        "--gpu-hour-usd",
        type=_floats,
        default=None,
        help="GPU-hour prices for total cost (default: the config's)",
    )
    p.add_argument(
        "--slow-gpu",
        type=float,
        default=1.0,
        help="simulated GPUs F times slower than the predictor's calibration",
    )
    p.add_argument("--fleet-sweep", type=int, default=None, metavar="N")
    p.add_argument("--png", default=None, help="with --fleet-sweep: write the figure here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every scenario and print the tables; returns the exit status."""
    args = parse_args(argv)
    config = load_config(args.config)
    aliases = args.alias or mixed_aliases(config)
    policies = args.policy or list(DEFAULT)
    trace = read_trace(args.trace)
    sweeps: dict[str, list[Outcome]] = {}
    started = time.perf_counter()
    for alias in aliases:
        base = fleet_from_config(config, alias)
        default = (base.locals[0].gpu_hour_usd,) if base.locals else (0.0,)
        prices = args.gpu_hour_usd or default
        for rate in args.rate_scale:
            requests = compressed(trace, rate)
            settings = SimSettings(
                args.slo_ttft_ms / 1000,
                args.seed,
                args.slow_gpu,
                alias=alias,
                target_ttft_s=args.target_ttft_ms / 1000 if args.target_ttft_ms else None,
            )
            for gpus in args.gpus or (len(base.locals),):
                label = f"{alias} x{rate:g} gpus={gpus}"
                scenario = Scenario(label, requests, base.with_gpus(gpus), settings, prices)
                _print_outcome(run_scenario(scenario, policies, not args.no_progress), rate)
            if args.fleet_sweep is not None:
                scenario = Scenario(f"{alias} x{rate:g}", requests, base, settings, prices)
                sweeps[f"{alias} x{rate:g}"] = outs = sweep(
                    scenario, policies, args.fleet_sweep, not args.no_progress
                )
                for i in range(len(prices)):
                    print(f"\n### fleet sweep: {alias}, rate x{rate:g}\n")
                    print(sweep_table(outs, i))
    if args.png and sweeps:
        draw_sweep(sweeps, args.png)
    sys.stderr.write(f"simulated in {time.perf_counter() - started:.1f} s\n")
    return 0


def _print_outcome(outcome: Outcome, rate: float) -> None:
    s = outcome.scenario
    period_h = span_s(s.requests) / 3600
    print(
        f"\n### {s.fleet.alias}: rate x{rate:g}, {len(s.fleet.locals)} local GPU(s), "
        f"SLO TTFT {s.settings.slo_ttft_s * 1000:g} ms, {len(s.requests)} requests over "
        f"{period_h:.2f} h, slow GPU x{s.settings.slow_gpu:g}\n"
    )
    print(table(outcome.rows, s.gpu_hour_usd, outcome.bound))
    print("\n" + bound_note(outcome.rows, outcome.bound))
    if s.settings.slow_gpu != 1:
        warm = ", ".join(f"{r.policy} {100 * r.attainment_after_warmup:.2f}%" for r in outcome.rows)
        print(f"\nSLO attainment after warm-up (first 5% of requests ignored): {warm}")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
