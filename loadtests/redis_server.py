"""A real ``redis-server`` on a free loopback port, stoppable and restartable for fault tests.

Persistence is off (``--save ""``, ``--appendonly no``) unless ``durable``: then the AOF is on
and fsynced on every write, as the Helm chart's bundled Redis persists, so a SIGKILL loses
nothing Redis acknowledged and a restart reads it back. Its working directory is the test's
temporary directory. Readiness is a PING through the ``redis`` package.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import redis

from loadtests.processes import (
    ManagedProcess,
    ProcessStartError,
    free_port,
    start_process,
    start_watchdog,
)

REDIS_BINARY = "redis-server"


class RedisServer:
    """One ``redis-server`` process; ``start()`` again after ``kill()`` reuses the port."""

    def __init__(
        self,
        workdir: Path,
        *,
        max_lifetime_s: float = 300.0,
        durable: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        """``extra_args`` go last on the command line (e.g. ``--replicaof HOST PORT``)."""
        binary = shutil.which(REDIS_BINARY)
        if binary is None:
            raise ProcessStartError(f"{REDIS_BINARY} is not on PATH")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.max_lifetime_s = max_lifetime_s
        self.durable = durable
        self.extra_args = tuple(extra_args)
        self.process: ManagedProcess | None = None
        self._watchdog: threading.Timer | None = None

    @property
    def url(self) -> str:
        """The URL clients use: ``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        """The pid of the current (or last) process."""
        if self.process is None:
            raise RuntimeError("redis-server was never started")
        return self.process.pid

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the server (again, on the same port) and wait until it answers PING."""
        if self.process is not None and self.process.proc.poll() is None:
            raise RuntimeError("redis-server is already running")
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            *(["--appendonly", "yes", "--appendfsync", "always"] if self.durable else []),
            *([] if self.durable else ["--appendonly", "no"]),
            "--dir",
            str(self.workdir),
            *self.extra_args,
        ]
        self.process = start_process(args, self.workdir / "redis-server.log")
        self._watchdog = start_watchdog(self.process, self.max_lifetime_s)
        self._wait_for_ping(self.process, timeout_s)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        self._cancel_watchdog()
        if self.process is not None:
            self.process.kill()

    def stop(self) -> None:
        """SIGTERM the server (SIGKILL after 5 s)."""
        self._cancel_watchdog()
        if self.process is not None:
            self.process.stop()

    def client(self) -> redis.Redis:
        """A new synchronous client with short timeouts; the caller closes it."""
        return redis.Redis.from_url(self.url, socket_timeout=2.0, socket_connect_timeout=2.0)

    def _cancel_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _wait_for_ping(self, process: ManagedProcess, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            code = process.proc.poll()
            if code is not None:
                raise ProcessStartError(
                    f"redis-server exited with {code}; log tail:\n{process.log_tail()}"
                )
            try:
                with self.client() as probe:
                    if probe.ping():
                        return
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise ProcessStartError(
                    f"redis-server not answering PING after {timeout_s} s;"
                    f" log tail:\n{process.log_tail()}"
                )
            time.sleep(0.02)
