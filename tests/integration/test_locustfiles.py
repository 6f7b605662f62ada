"""The Locust user classes and shapes, run headless against a real gateway and the emulators.

Each test runs ``python -m locust -f ... --headless`` as its own process (Locust's gevent must
not patch the test process), bounded by a timeout, against the demo gateway (emulators at
time scale 0.05, a team with a budget of a few requests), and reads Locust's stats CSV: no
failures, the LLM events beside the HTTP entries they measure, and the budget refusals
recorded as the expected outcome they are.
"""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.admin_client import MASTER_KEY_ENV, AdminClient
from loadtests.fleet import DEMO_CONFIG, OFFLINE_ENV, REPO_ROOT, start_demo_fleet, start_gateway
from loadtests.shapes.schedule import trace_items_from_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOCUSTFILES = REPO_ROOT / "loadtests" / "locustfiles"
SHAPES = REPO_ROOT / "loadtests" / "shapes"
TIME_SCALE = 0.05
RUN_TIMEOUT_S = 90.0
BUDGET_USD = 0.001
"""A few gpt-4o-mini requests of trace size (a request's worst case is about $0.0005)."""


@dataclass(frozen=True, slots=True)
class Target:
    """The gateway under test and the key of its tiny-budget team."""

    url: str
    budget_key: str


@dataclass(frozen=True, slots=True)
class Row:
    """One line of Locust's ``_stats.csv``."""

    type: str
    name: str
    requests: int
    failures: int
    average_size: float


@dataclass(frozen=True, slots=True)
class Run:
    """A finished Locust run: its stats rows (by Type and Name) and its output."""

    rows: dict[tuple[str, str], Row]
    output: str

    def count(self, kind: str, prefix: str = "") -> int:
        """Requests of the rows of Type ``kind`` whose Name starts with ``prefix``."""
        return sum(r.requests for r in self.select(kind, prefix))

    def select(self, kind: str, prefix: str = "") -> list[Row]:
        """The rows of Type ``kind`` whose Name starts with ``prefix``."""
        return [r for r in self.rows.values() if r.type == kind and r.name.startswith(prefix)]

    @property
    def failures(self) -> int:
        """Failed requests over every row (the Aggregated row left out)."""
        return sum(r.failures for r in self.rows.values() if r.type)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The demo gateway in front of the emulated fleet, and a team that can barely pay."""
    logs = tmp_path_factory.mktemp("locust-fleet")
    with contextlib.ExitStack() as stack:
        fleet = start_demo_fleet(stack, logs, time_scale=TIME_SCALE)
        master_key = "sk-locust-" + secrets.token_urlsafe(16)
        env = {**fleet.env(), MASTER_KEY_ENV: master_key}
        gateway = start_gateway(stack, DEMO_CONFIG, env, log_dir=logs)
        admin = AdminClient(gateway.url, master_key)
        admin.call("POST", "/admin/teams", {"team_id": "tiny", "budget_usd": {"day": BUDGET_USD}})
        key = admin.call("POST", "/admin/keys", {"team_id": "tiny", "name": "locust"})
        yield Target(gateway.url, str(key["key"]))


def run_locust(
    files: list[Path], url: str, prefix: Path, env: Mapping[str, str], *extra: str
) -> Run:
    """``python -m locust -f FILES --headless`` in its own process; its stats CSV."""
    args = [sys.executable, "-m", "locust", "-f", ",".join(str(f) for f in files)]
    args += ["--headless", "--host", url, "--csv", str(prefix), "--stop-timeout", "5", *extra]
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=REPO_ROOT,
        env={**os.environ, **OFFLINE_ENV, "TG_SEED": "5", **env},
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    with Path(f"{prefix}_stats.csv").open(newline="", encoding="utf-8") as handle:
        rows = {
            (r["Type"], r["Name"]): Row(
                r["Type"],
                r["Name"],
                int(r["Request Count"]),
                int(r["Failure Count"]),
                float(r["Average Content Size"]),
            )
            for r in csv.DictReader(handle)
        }
    return Run(rows, output)


def run_user(target: Target, tmp_path: Path, locustfile: str, **env: str) -> Run:
    """One user class, 4 users for 6 seconds."""
    timed = ("-u", "4", "-r", "4", "--run-time", "6s")
    return run_locust([LOCUSTFILES / locustfile], target.url, tmp_path / "run", env, *timed)


def test_chat_user_reports_ttft_tokens_per_second_output_tokens_and_cost(
    target: Target, tmp_path: Path
) -> None:
    run = run_user(target, tmp_path, "chat.py")

    assert run.failures == 0, run.output[-4000:]
    streams, answers = run.count("POST", "chat stream ["), run.count("POST", "chat [")
    assert streams > 0 and answers > 0
    # one TTFT per stream, output tokens per chat answer, a cost per non-streamed answer
    assert run.count("LLM", "TTFT [") == streams
    assert 0 < run.count("LLM", "tokens/s [") <= streams
    assert run.count("LLM", "output tokens [") == streams + answers
    assert run.count("LLM", "cost usd [") == answers
    aliases = {r.name for r in run.select("POST", "chat")}
    assert {"chat [gpt-4o-mini]", "chat stream [qwen2.5-7b-instruct]"} <= aliases
    paid = run.rows[("LLM", "cost usd [gpt-4o-mini]")]
    assert paid.average_size > 0  # micro-dollars a paid answer was billed


def test_cache_heavy_user_is_answered_from_the_cache(target: Target, tmp_path: Path) -> None:
    run = run_user(target, tmp_path, "cache_heavy.py", TG_CACHE_POOL="4")

    assert run.failures == 0, run.output[-4000:]
    hits, misses = run.count("LLM", "cache hit ["), run.count("LLM", "cache miss [")
    assert hits + misses == run.count("POST")  # every answer says hit or miss
    assert hits > misses > 0  # four prompts asked again and again


def test_budget_user_refusals_are_expected_not_failures(target: Target, tmp_path: Path) -> None:
    run = run_user(target, tmp_path, "budget.py", TG_BUDGET_KEY=target.budget_key)

    assert run.failures == 0, run.output[-4000:]
    assert run.count("POST", "chat [gpt-4o-mini]") > 0  # it spent first
    assert run.count("POST", "chat [budget refused]") > 0  # then the budget ran out


def test_mixed_user_spreads_over_every_alias_and_embeddings(target: Target, tmp_path: Path) -> None:
    run = run_user(target, tmp_path, "mixed.py")

    assert run.failures == 0, run.output[-4000:]
    assert run.count("POST", "embeddings [text-embedding-3-small]") > 0
    served = {r.name.rsplit("[", 1)[1].rstrip("]") for r in run.select("POST")}
    assert served == {
        "qwen2.5-7b-instruct",
        "auto",
        "gpt-4o-mini",
        "claude-haiku-4-5",
        "text-embedding-3-small",
    }


@pytest.mark.parametrize(
    ("shape", "env"),
    [
        ("steady.py", {"TG_USERS": "3", "TG_DURATION_S": "3"}),
        ("step.py", {"TG_STEP_USERS": "2", "TG_STEP_S": "1.5", "TG_STEPS": "2"}),
        (
            "spike.py",
            {"TG_USERS": "2", "TG_SPIKE_USERS": "4", "TG_SPIKE_AT_S": "1", "TG_SPIKE_S": "1.5"}
            | {"TG_DURATION_S": "4"},
        ),
    ],
)
def test_each_shape_drives_the_chat_user_and_stops_by_itself(
    target: Target, tmp_path: Path, shape: str, env: dict[str, str]
) -> None:
    run = run_locust([LOCUSTFILES / "chat.py", SHAPES / shape], target.url, tmp_path / "r", env)

    assert run.failures == 0, run.output[-4000:]
    assert run.count("POST") > 0
    assert "Shape test stopping" in run.output


def test_trace_shape_sends_every_request_of_the_slice_at_its_arrival(
    target: Target, tmp_path: Path
) -> None:
    env = {"TG_DURATION_S": "4", "TG_TRACE_RATE_SCALE": "8", "TG_TRACE_START_S": "600"}
    expected = len(trace_items_from_env(env))

    run = run_locust(
        [LOCUSTFILES / "chat.py", SHAPES / "trace.py"], target.url, tmp_path / "r", env
    )

    assert run.failures == 0, run.output[-4000:]
    assert run.count("POST") == run.count("LLM", "send lag [trace]") == expected
    assert "Shape test stopping" in run.output
