"""Start real processes (emulators, the gateway), wait until they serve, always stop them.

Used by the demo, the benchmarks and the tests. Imports only the standard library. Every
process gets its own process group, a log file (stdout and stderr together) and a watchdog
that kills it after ``max_lifetime_s``, so nothing outlives its bound.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

LOG_TAIL_CHARS = 4000
POLL_INTERVAL_S = 0.005  # fine enough to time a start-up in the benchmark


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ProcessStartError(RuntimeError):
    """A process exited or did not become ready in time; the message ends with its log."""


class ManagedProcess:
    """A running subprocess in its own process group, with its log in a file."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path
        self.spawned_at = time.perf_counter()
        self.ready_after_s: float | None = None  # spawn to ready, once ready

    @property
    def pid(self) -> int:
        """The process id (also its process group id)."""
        return self.proc.pid

    def log_text(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        """The last ``chars`` characters of the log."""
        return self.log_text()[-chars:]

    def kill(self) -> None:
        """SIGKILL the whole process group at once (for fault tests) and reap the process."""
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5.0)

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the group, wait up to ``grace_s``, then SIGKILL it."""
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        # Children of the leader may outlive it (uvicorn workers): kill what is left.
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace_s)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


def _http_status(url: str, timeout_s: float) -> int | None:
    """The HTTP status of GET ``url``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response's socket
        return exc.code
    except (OSError, ValueError):
        return None


def wait_until_ready(
    process: ManagedProcess, ready_url: str | None, *, timeout_s: float, ready_status: int
) -> None:
    """Poll ``ready_url`` until it answers ``ready_status``; raise with the log tail if not.

    With ``ready_url`` None, only check that the process is still alive.
    """
    deadline = time.monotonic() + timeout_s
    last_status: int | None = None
    while True:
        code = process.proc.poll()
        if code is not None:
            raise ProcessStartError(
                f"process {process.proc.args!r} exited with {code} before it was ready;"
                f" log tail:\n{process.log_tail()}"
            )
        if ready_url is None:
            return
        last_status = _http_status(ready_url, timeout_s=1.0)
        if last_status == ready_status:
            process.ready_after_s = time.perf_counter() - process.spawned_at
            return
        if time.monotonic() > deadline:
            raise ProcessStartError(
                f"process {process.proc.args!r} not ready at {ready_url} after {timeout_s} s"
                f" (last status {last_status}); log tail:\n{process.log_tail()}"
            )
        time.sleep(POLL_INTERVAL_S)


def start_process(
    args: list[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    cpus: set[int] | None = None,
) -> ManagedProcess:
    """Start ``args`` in a new process group, appending stdout and stderr to ``log_path``.

    ``env`` is added to (not substituted for) the current environment; ``cpus`` pins the
    process to those cores (the benchmark gives the proxy under test a core of its own).
    The caller stops it.
    """
    full_env = {**os.environ, **(env or {})}
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
    return ManagedProcess(proc, log_path)


def start_watchdog(process: ManagedProcess, max_lifetime_s: float) -> threading.Timer:
    """Kill ``process`` after ``max_lifetime_s`` unless the returned timer is cancelled."""
    watchdog = threading.Timer(max_lifetime_s, process.kill)
    watchdog.daemon = True
    watchdog.start()
    return watchdog


@contextlib.contextmanager
def running_process(
    args: list[str],
    ready_url: str | None,
    *,
    timeout_s: float = 20.0,
    env: dict[str, str] | None = None,
    ready_status: int = 200,
    max_lifetime_s: float = 300.0,
    cwd: str | Path | None = None,
    log_path: Path | None = None,
    cpus: set[int] | None = None,
) -> Iterator[ManagedProcess]:
    """Run ``args`` until the block ends; yield once ``ready_url`` answers ``ready_status``.

    ``env`` is added to (not substituted for) the current environment. The process is stopped
    on exit whatever happens in the block, and killed by a watchdog after ``max_lifetime_s``.
    The log goes to ``log_path`` if given (kept), else to a temporary file (removed).
    """
    with tempfile.TemporaryDirectory(prefix="tg-proc-") as tmp:
        path = log_path if log_path is not None else Path(tmp) / "process.log"
        process = start_process(args, path, env=env, cwd=cwd, cpus=cpus)
        watchdog = start_watchdog(process, max_lifetime_s)
        try:
            wait_until_ready(process, ready_url, timeout_s=timeout_s, ready_status=ready_status)
            yield process
        finally:
            watchdog.cancel()
            process.stop()
