"""``running_process``: waits for readiness, reports early exits, always stops the process."""

from __future__ import annotations

import os
import sys

import pytest

from loadtests.processes import ProcessStartError, free_port, running_process

pytestmark = pytest.mark.integration


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_running_process_yields_once_the_url_answers_and_stops_it_afterwards() -> None:
    port = free_port()
    args = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with running_process(args, f"http://127.0.0.1:{port}/", timeout_s=10) as process:
        pid = process.pid
        assert process.proc.poll() is None
    assert not _pid_alive(pid)


def test_a_process_that_exits_early_raises_with_the_tail_of_its_log() -> None:
    args = [sys.executable, "-c", "import sys; print('boom at start'); sys.exit(3)"]
    with (
        pytest.raises(ProcessStartError, match="boom at start"),
        running_process(args, f"http://127.0.0.1:{free_port()}/", timeout_s=10),
    ):
        pass


def test_a_process_that_never_becomes_ready_raises_after_the_timeout() -> None:
    args = [sys.executable, "-c", "import time; print('sleeping'); time.sleep(60)"]
    with (
        pytest.raises(ProcessStartError, match="not ready"),
        running_process(args, f"http://127.0.0.1:{free_port()}/", timeout_s=0.5),
    ):
        pass


def test_the_watchdog_kills_a_process_that_outlives_its_lifetime() -> None:
    args = [sys.executable, "-c", "import time; time.sleep(60)"]
    with running_process(args, None, max_lifetime_s=0.3) as process:
        assert process.proc.wait(timeout=10) == -9
