"""A real Redis Sentinel (``redis-server --sentinel``) on a free loopback port, for failover
tests: it watches one master under a service name and promotes its replica when the master
stays down for ``down_after_ms``."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import redis

from loadtests.processes import (
    ManagedProcess,
    ProcessStartError,
    free_port,
    start_process,
    start_watchdog,
)


class RedisSentinel:
    """One Sentinel watching ``127.0.0.1:master_port`` as ``service`` (quorum 1)."""

    def __init__(
        self,
        workdir: Path,
        *,
        service: str,
        master_port: int,
        down_after_ms: int = 300,
        max_lifetime_s: float = 120.0,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ProcessStartError("redis-server is not on PATH")
        self.port = free_port()
        self.service = service
        workdir.mkdir(parents=True, exist_ok=True)
        conf = workdir / "sentinel.conf"  # Sentinel rewrites its file: it must be its own
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {workdir}\n"
            f"sentinel monitor {service} 127.0.0.1 {master_port} 1\n"
            f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
            f"sentinel failover-timeout {service} 2000\n"
        )
        self.process: ManagedProcess = start_process(
            [binary, str(conf), "--sentinel"], workdir / "sentinel.log"
        )
        self._watchdog: threading.Timer = start_watchdog(self.process, max_lifetime_s)
        self._wait_until_watching()

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, as a ``redis+sentinel://`` URL lists it."""
        return f"127.0.0.1:{self.port}"

    def master_port(self) -> int | None:
        """The port of the master this Sentinel reports now."""
        with redis.Redis(port=self.port, socket_timeout=2.0) as client:
            reply = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(reply[1]) if reply else None

    def stop(self) -> None:
        """SIGTERM the Sentinel (SIGKILL after 5 s)."""
        self._watchdog.cancel()
        self.process.stop()

    def _wait_until_watching(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.proc.poll() is not None:
                raise ProcessStartError(f"sentinel exited; log tail:\n{self.process.log_tail()}")
            try:
                if self.master_port() is not None:
                    return
            except redis.ConnectionError:
                pass
            time.sleep(0.02)
        self.stop()
        raise ProcessStartError(f"sentinel not answering; log tail:\n{self.process.log_tail()}")
