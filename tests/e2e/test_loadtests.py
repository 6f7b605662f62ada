"""``python -m loadtests.run``: real Locust runs against a real gateway, and the verdict.

The smoke scenario runs against a gateway this test starts (with the emulated fleet and a
master key), so the test reads the gateway's /metrics itself: the requests Locust reports
must be the requests the gateway counted for the run, give or take the users in flight when
Locust stopped, and the teams the runner created must be the ones billed. The impossible
scenario runs against the demo fleet the runner starts itself and must fail naming its
threshold. Every process is bounded in time and stopped.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.admin_client import MASTER_KEY_ENV, AdminClient
from loadtests.fleet import DEMO_CONFIG, REPO_ROOT, metric_sum, scrape, start_demo_fleet
from loadtests.fleet import start_gateway as start_demo_gateway
from loadtests.loadrun.locust_stats import http_entries, read_entries
from loadtests.loadrun.scenario import DemoTarget, load_scenario

pytestmark = pytest.mark.e2e

SCENARIOS = REPO_ROOT / "loadtests" / "scenarios"
RUN_TIMEOUT_S = 120.0
"""Start-up of the fleet and of Locust, the run (at most 20 s) and the shutdown."""


@dataclass(frozen=True, slots=True)
class Ran:
    """One ``python -m loadtests.run`` process that has exited."""

    returncode: int
    output: str


def _run(*args: str, env: dict[str, str] | None = None) -> Ran:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.run", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    return Ran(done.returncode, done.stdout + done.stderr)


@dataclass(frozen=True, slots=True)
class Gateway:
    url: str
    master_key: str


@pytest.fixture
def smoke_gateway(tmp_path: Path) -> Iterator[Gateway]:
    """The demo fleet at the smoke scenario's time scale and a gateway with a master key."""
    target = load_scenario(SCENARIOS / "smoke.yaml", REPO_ROOT).target
    assert isinstance(target, DemoTarget)
    master_key = "sk-e2e-" + secrets.token_urlsafe(16)
    with contextlib.ExitStack() as stack:
        fleet = start_demo_fleet(stack, tmp_path, time_scale=target.time_scale)
        env = {**fleet.env(), MASTER_KEY_ENV: master_key}
        service = start_demo_gateway(stack, DEMO_CONFIG, env, log_dir=tmp_path, max_lifetime_s=300)
        yield Gateway(service.url, master_key)


def _by_team(text: str, team: str) -> float:
    """What ``team`` was billed and saved (every request bills one or the other)."""
    return sum(
        metric_sum(text, name, lambda labels: labels.get("team") == team)
        for name in ("gateway_spend_usd_total", "gateway_savings_usd_total")
    )


@pytest.mark.slow
def test_a_smoke_run_counts_what_the_gateway_counts_and_passes(
    smoke_gateway: Gateway, tmp_path: Path
) -> None:
    scenario = load_scenario(SCENARIOS / "smoke.yaml", REPO_ROOT)
    before = scrape(smoke_gateway.url)
    results = tmp_path / "results"
    ran = _run(
        "--scenario",
        str(SCENARIOS / "smoke.yaml"),
        "--url",
        smoke_gateway.url,
        "--results",
        str(results),
        env={MASTER_KEY_ENV: smoke_gateway.master_key},
    )
    after = scrape(smoke_gateway.url)
    assert ran.returncode == 0, ran.output
    assert "verdict: PASS" in ran.output
    http = http_entries(read_entries(results / "locust.json"))
    requests = sum(e.requests for e in http)
    assert requests > 50, ran.output
    assert sum(e.failures for e in http) == 0
    counted = metric_sum(after, "gateway_requests_total") - metric_sum(
        before, "gateway_requests_total"
    )
    users = int(scenario.env["TG_USERS"])
    assert abs(counted - requests) <= users, (counted, requests)
    for team in scenario.teams:
        assert _by_team(after, team) > 0, team
    assert _by_team(after, "default") == _by_team(before, "default")
    for name in ("report.html", "locust_stats.csv", "locust_stats_history.csv", "summary.json"):
        assert (results / name).is_file(), name
    keys = AdminClient(smoke_gateway.url, smoke_gateway.master_key).call("GET", "/admin/keys")
    assert keys["data"] and all(key["disabled"] for key in keys["data"])


@pytest.mark.slow
def test_a_threshold_nobody_meets_fails_the_run_and_is_named(tmp_path: Path) -> None:
    ran = _run(
        "--scenario", str(SCENARIOS / "impossible.yaml"), "--results", str(tmp_path / "results")
    )
    assert ran.returncode == 1, ran.output
    assert "verdict: FAIL, 1 threshold(s) missed" in ran.output
    assert "missed max_ttft_p95_ms: measured" in ran.output
    assert "limit 0.001" in ran.output


CAPACITY = """\
name: tiny-capacity
locustfiles: [loadtests/locustfiles/chat.py, loadtests/shapes/step.py]
user_classes: [ChatUser]
env: {TG_STEP_USERS: 2, TG_STEP_S: 10, TG_STEPS: 2, TG_MAX_OUTPUT_TOKENS: 32, TG_SEED: 3}
run_time_s: 25
target: {demo: {time_scale: 0.1}}
capacity: true
thresholds: {max_error_ratio: 0.01, max_ttft_p95_ms: 5000}
"""


@pytest.mark.slow
def test_a_capacity_run_reports_every_step_with_what_the_runner_measured(tmp_path: Path) -> None:
    scenario = tmp_path / "capacity.yaml"
    scenario.write_text(CAPACITY)
    ran = _run("--scenario", str(scenario), "--results", str(tmp_path / "results"))
    assert ran.returncode == 0, ran.output
    lines = ran.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("step users"))
    rows = [line.split() for line in lines[header + 1 : header + 3]]
    assert [row[:2] for row in rows] == [["1", "2"], ["2", "4"]]
    for row in rows:
        assert float(row[2]) > 0  # req/s
        assert "-" not in row[7:14], row  # CPU, machine and worker columns were measured
        assert row[-1] == "ok"
    assert "capacity: sustained" in ran.output and "at 4 users" in ran.output
    assert "the SLO held up to the last step" in ran.output


def test_a_gateway_off_loopback_is_refused_before_anything_runs(tmp_path: Path) -> None:
    ran = _run(
        "--scenario",
        str(SCENARIOS / "smoke.yaml"),
        "--url",
        "http://192.0.2.10:8080",
        "--results",
        str(tmp_path / "results"),
    )
    assert ran.returncode == 2
    assert "--url: load tests run against loopback only" in ran.output
    assert not (tmp_path / "results").exists()


def test_a_bad_scenario_file_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((SCENARIOS / "smoke.yaml").read_text() + "\nthreshold: {}\n")
    ran = _run("--scenario", str(bad), "--results", str(tmp_path / "results"))
    assert ran.returncode == 2
    assert "threshold: unknown field" in ran.output
