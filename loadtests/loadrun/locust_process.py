"""Locust as a bounded subprocess: its command line, and a run that always ends.

Locust runs headless against loopback, writes its CSVs, HTML report, final JSON stats and log
into the results folder, and is never imported here (it patches the standard library with
gevent). Shapes ignore ``--run-time`` unless they read it, so the runner enforces the bound
itself, from the moment Locust opens its CSV files (its imports done, its test starting):
SIGINT once ``run_time_s`` has passed (as on Ctrl+C, Locust stops its users and writes its
files; its SIGTERM handler is not installed while a shape runs headless), SIGKILL if it is
still alive after the stop timeout and a grace period. Imports: stdlib, ``loadtests``.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from loadtests.fleet import REPO_ROOT
from loadtests.loadrun.scenario import Scenario
from loadtests.processes import start_process

STOP_TIMEOUT_S = 10
"""Users get this long to finish the request they are in when the run stops."""
STARTUP_ALLOWANCE_S = 5.0
"""Locust's import and start-up, before its clock starts."""
KILL_GRACE_S = 15.0
TICK_S = 1.0

Ended = Literal["finished", "interrupted", "killed"]


@dataclass(frozen=True, slots=True)
class ResultFiles:
    """Where one run's files go."""

    folder: Path

    @property
    def prefix(self) -> Path:
        """``--csv`` and ``--json-file`` prefix (Locust adds ``_stats.csv``, ``.json`` ...)."""
        return self.folder / "locust"

    @property
    def stats_json(self) -> Path:
        """Final stats of every entry, written at shutdown."""
        return self.folder / "locust.json"

    @property
    def history_csv(self) -> Path:
        """Per-second history of every entry."""
        return self.folder / "locust_stats_history.csv"

    @property
    def html(self) -> Path:
        """Locust's HTML report."""
        return self.folder / "report.html"

    @property
    def log(self) -> Path:
        """Locust's stdout and stderr."""
        return self.folder / "locust.log"


@dataclass(frozen=True, slots=True)
class LocustExit:
    """How the Locust process ended."""

    returncode: int | None
    ended: Ended
    """``finished`` by itself, ``interrupted`` at the bound (its files written), ``killed``."""
    wall_s: float


def locust_command(scenario: Scenario, host: str, files: ResultFiles) -> list[str]:
    """``python -m locust -f a.py,b.py --headless --host URL ...`` for ``scenario``."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        ",".join(scenario.locustfiles),
        "--headless",
        "--host",
        host,
        "--csv",
        str(files.prefix),
        "--csv-full-history",
        "--html",
        str(files.html),
        "--json-file",
        str(files.prefix),
        "--only-summary",
        "--run-time",
        f"{math.ceil(scenario.run_time_s)}s",
        "--stop-timeout",
        str(STOP_TIMEOUT_S),
        *scenario.user_classes,
    ]


def run_locust(
    command: list[str],
    env: Mapping[str, str],
    files: ResultFiles,
    *,
    run_time_s: float,
    on_tick: Callable[[int], None] = lambda _pid: None,
) -> LocustExit:
    """Run ``command`` from the repository's root until it exits or its bound passes;
    ``on_tick(pid)`` about once a second meanwhile."""
    spawned = time.monotonic()
    process = start_process(command, files.log, env=dict(env), cwd=REPO_ROOT)
    started: float | None = None
    ended: Ended = "finished"
    try:
        while process.proc.poll() is None:
            now = time.monotonic()
            if started is None and files.history_csv.exists():
                started = now
            interrupt_at = (started or spawned + STARTUP_ALLOWANCE_S) + run_time_s
            if now >= interrupt_at + STOP_TIMEOUT_S + KILL_GRACE_S:
                process.kill()
                ended = "killed"
                break
            if now >= interrupt_at and ended == "finished":
                process.proc.send_signal(signal.SIGINT)
                ended = "interrupted"
            on_tick(process.pid)
            time.sleep(max(0.0, TICK_S - (time.monotonic() - now)))
    finally:
        process.stop()
    return LocustExit(process.proc.returncode, ended, time.monotonic() - spawned)
