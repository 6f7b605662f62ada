"""``python -m loadtests.run --scenario FILE.yaml``: a Locust run with an SLO verdict.

Reads the scenario (``loadtests/scenarios/*.yaml``), starts the demo fleet and gateway when
the target is ``demo`` (or uses a running gateway on loopback), creates the scenario's teams
and keys, scrapes the gateway's /metrics, runs Locust headless and bounded in time, scrapes
again, and prints the run's numbers: requests, failures, req/s, latency and TTFT percentiles,
tokens, dollars billed and saved, the local share and cache hits. Locust's HTML report, CSVs,
final JSON stats and log, the processes' logs and ``summary.json`` go to the results folder.

With ``--capacity`` (or ``capacity: true``) on a step scenario it also prints one row per step
and the highest step that met the thresholds, with where the next one broke.

Exit codes: 0 every threshold met (capacity: at least one step met them); 1 a threshold
missed, each named with measured value and limit (capacity: even the first step broke);
2 a bad scenario file or a run that failed. Imports: stdlib, ``gateway.admin_client``,
``loadtests`` (never ``locust``: it runs as its own process).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from gateway.admin_client import AdminError, Unreachable
from loadtests.fleet import REPO_ROOT, metric_sum, scrape
from loadtests.loadrun.capacity import Capacity, measure_steps
from loadtests.loadrun.counters import GatewayCounters
from loadtests.loadrun.locust_process import (
    LocustExit,
    ResultFiles,
    locust_command,
    run_locust,
)
from loadtests.loadrun.locust_stats import StatsError, read_entries, read_history
from loadtests.loadrun.probe import Probe
from loadtests.loadrun.report import render_capacity, render_summary, render_verdict
from loadtests.loadrun.scenario import (
    Scenario,
    ScenarioError,
    UrlTarget,
    load_scenario,
    loopback_url,
)
from loadtests.loadrun.target import Gateway, TeamKeys, open_gateway, provision_teams, revoke_keys
from loadtests.loadrun.verdict import Miss, RunSummary, check, summarize
from loadtests.processes import ProcessStartError
from loadtests.shapes.schedule import StepPlan

SETTLE_S = 10.0
"""After Locust exits, how long to wait for the gateway to finish what is in flight."""


class RunFailed(Exception):
    """The run produced no verdict: Locust crashed, was killed, or wrote no stats."""


@dataclasses.dataclass(frozen=True, slots=True)
class Measurements:
    """What one run left behind, before any judging."""

    locust: LocustExit
    before: GatewayCounters
    after: GatewayCounters
    probe: Probe


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenario; see the module docstring for the exit codes."""
    parser = argparse.ArgumentParser(prog="python -m loadtests.run", description=__doc__)
    parser.add_argument("--scenario", type=Path, required=True, help="scenario YAML file")
    parser.add_argument("--results", type=Path, help="folder for the files (default: results/)")
    parser.add_argument("--capacity", action="store_true", help="capacity report of a step run")
    parser.add_argument("--url", help="load this running gateway instead of the scenario's target")
    args = parser.parse_args(argv)
    try:
        scenario = load_scenario(args.scenario, REPO_ROOT)
        if args.url:
            scenario = dataclasses.replace(
                scenario, target=UrlTarget(loopback_url(args.url, "--url"))
            )
        plan = scenario.step_plan(os.environ) if args.capacity or scenario.capacity else None
    except ScenarioError as exc:
        print(f"bad scenario {args.scenario}: {exc}", file=sys.stderr)
        return 2
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    files = ResultFiles(
        args.results or REPO_ROOT / "results" / "loadtests" / f"{scenario.name}-{stamp}"
    )
    files.folder.mkdir(parents=True, exist_ok=True)
    try:
        return _judge(scenario, plan, files, _measure(scenario, plan, files))
    except ScenarioError as exc:
        print(f"bad scenario {args.scenario}: {exc}", file=sys.stderr)
        return 2
    except (RunFailed, StatsError, ProcessStartError, AdminError, Unreachable, OSError) as exc:
        print(f"run failed: {exc}", file=sys.stderr)
        return 2


def _measure(scenario: Scenario, plan: StepPlan | None, files: ResultFiles) -> Measurements:
    """Start the target, run Locust against it, and scrape the gateway around the run."""
    logs = files.folder / "logs"
    logs.mkdir(exist_ok=True)
    if not isinstance(scenario.target, UrlTarget):
        print("starting the demo fleet and the gateway ...", flush=True)
    with open_gateway(scenario.target, logs, scenario.run_time_s) as gateway:
        keys = provision_teams(gateway, scenario.teams, f"loadtest-{scenario.name}")
        try:
            env = locust_env(scenario, keys)
            probe = Probe(gateway.url, gateway.pid, gateway.worker_urls, gateway.emulator_pids)
            before = GatewayCounters.parse(scrape(gateway.url))
            print(
                f"running Locust against {gateway.url} for at most {scenario.run_time_s:g} s "
                f"(files in {files.folder}) ...",
                flush=True,
            )
            command = locust_command(scenario, gateway.url, files)
            tick = probe.take if plan is not None else lambda _pid: None
            ended = run_locust(command, env, files, run_time_s=scenario.run_time_s, on_tick=tick)
            _settle(gateway)
            after = GatewayCounters.parse(scrape(gateway.url))
        finally:
            with contextlib.suppress(AdminError, Unreachable):
                revoke_keys(gateway, keys)
    return Measurements(ended, before, after, probe)


def locust_env(scenario: Scenario, keys: TeamKeys) -> dict[str, str]:
    """The scenario's TG_* settings plus the teams' keys: TG_TEAM_KEYS (JSON team -> key,
    every team but the budget team) and TG_BUDGET_KEY (the budget team's key)."""
    env = dict(scenario.env)
    team_keys = {t: k for t, k in keys.secrets.items() if t != scenario.budget_team}
    if team_keys:
        env["TG_TEAM_KEYS"] = json.dumps(team_keys)
    if scenario.budget_team is not None:
        env["TG_BUDGET_KEY"] = keys.secrets[scenario.budget_team]
    return env


def _settle(gateway: Gateway) -> None:
    """Wait until the gateway has finished and accounted every request Locust left."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        text = scrape(gateway.url)
        busy = metric_sum(text, "gateway_upstream_inflight") + metric_sum(
            text, "gateway_ledger_backlog"
        )
        if busy <= 0:
            return
        time.sleep(0.1)


def _judge(
    scenario: Scenario, plan: StepPlan | None, files: ResultFiles, measured: Measurements
) -> int:
    """Read Locust's files, print the summary and the verdict, return the exit code."""
    locust = measured.locust
    if locust.ended == "killed" or locust.returncode not in (0, 1):
        raise RunFailed(
            f"Locust {locust.ended} with exit code {locust.returncode}; the tail of "
            f"{files.log}:\n{_tail(files.log)}"
        )
    if locust.ended == "interrupted":
        print(f"Locust was stopped at the scenario's bound (run_time_s {scenario.run_time_s:g})")
    try:
        entries = read_entries(files.stats_json)
    except StatsError as exc:
        raise RunFailed(f"{exc}; the tail of {files.log}:\n{_tail(files.log)}") from None
    summary = summarize(entries, measured.after.minus(measured.before))
    print(render_summary(scenario.name, summary))
    capacity: Capacity | None = None
    if plan is not None:
        history = read_history(files.history_csv)
        if not history:
            raise RunFailed(f"{files.history_csv}: no rows")
        started = min(row.at for row in history)
        samples = measured.probe.samples()
        capacity = measure_steps(plan, started, entries, history, samples, scenario.thresholds)
        print(render_capacity(capacity))
        misses: list[Miss] = (
            [] if capacity.sustained is not None else list(capacity.steps[0].misses)
        )
    else:
        misses = check(summary.measured(), scenario.thresholds)
        print(render_verdict(scenario.thresholds, misses))
    _write_summary(files, scenario, summary, misses, capacity)
    print(f"Locust's report: {files.html}")
    return 1 if misses else 0


def _write_summary(
    files: ResultFiles,
    scenario: Scenario,
    summary: RunSummary,
    misses: Sequence[Miss],
    capacity: Capacity | None,
) -> None:
    """``summary.json``: the numbers printed, for scripts and CI."""
    document = {
        "scenario": scenario.name,
        "summary": dataclasses.asdict(summary),
        "misses": [dataclasses.asdict(m) for m in misses],
        "capacity": None if capacity is None else dataclasses.asdict(capacity),
    }
    path = files.folder / "summary.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError as exc:
        return f"(no log: {exc.strerror or exc})"


if __name__ == "__main__":
    sys.exit(main())
