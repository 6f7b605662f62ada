"""Samples taken during a run: the gateway's counters, CPU times, the workers' queues.

``Probe.take`` runs about once a second while Locust runs (the capacity report splits them
into steps): it keeps the raw /metrics texts and reads CPU seconds from /proc, and parses the
texts only after the run, so sampling costs the loaded machine little. Imports: stdlib,
``loadtests``.
"""

from __future__ import annotations

import os
import time
import urllib.error
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtests.bench.procfs import cpu_seconds
from loadtests.fleet import scrape
from loadtests.loadrun.capacity import Sample
from loadtests.loadrun.counters import GatewayCounters, WorkerCounters


def parse_proc_stat(text: str) -> tuple[float, int]:
    """Busy CPU ticks of the whole machine (all but idle and iowait) and its core count,
    from the text of /proc/stat."""
    busy, cores = 0.0, 0
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if name == "cpu":
            ticks = [int(v) for v in rest.split()]
            busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # user..steal, minus idle and iowait
        elif name.startswith("cpu") and name[3:].isdigit():
            cores += 1
    return busy, cores


@dataclass(frozen=True, slots=True)
class _Raw:
    at: float
    gateway: str
    workers: tuple[str, ...] | None
    gateway_cpu_s: float | None
    client_cpu_s: float | None
    emulators_cpu_s: float | None
    machine_busy_s: float
    machine_cores: int


class Probe:
    """Takes samples of one gateway (and, when the runner started them, its process and the
    workers) while a Locust process runs."""

    def __init__(
        self,
        gateway_url: str,
        gateway_pid: int | None = None,
        worker_urls: Sequence[str] = (),
        emulator_pids: Sequence[int] = (),
    ) -> None:
        self.gateway_url = gateway_url
        self.gateway_pid = gateway_pid
        self.worker_urls = tuple(worker_urls)
        self.emulator_pids = tuple(emulator_pids)
        self.failed = 0
        """Samples lost to a scrape that failed (a gateway too loaded to answer in 5 s)."""
        self._raw: list[_Raw] = []
        self._tick = os.sysconf("SC_CLK_TCK")

    def take(self, client_pid: int | None) -> None:
        """One sample now; ``client_pid`` is Locust's process."""
        at = time.time()
        try:
            gateway = scrape(self.gateway_url)
            workers = tuple(scrape(url) for url in self.worker_urls) if self.worker_urls else None
        except (OSError, urllib.error.URLError):
            self.failed += 1
            return
        busy, cores = parse_proc_stat(Path("/proc/stat").read_text())
        self._raw.append(
            _Raw(
                at=at,
                gateway=gateway,
                workers=workers,
                gateway_cpu_s=None if self.gateway_pid is None else cpu_seconds(self.gateway_pid),
                client_cpu_s=None if client_pid is None else cpu_seconds(client_pid),
                emulators_cpu_s=(
                    sum(cpu_seconds(pid) for pid in self.emulator_pids)
                    if self.emulator_pids
                    else None
                ),
                machine_busy_s=busy / self._tick,
                machine_cores=cores,
            )
        )

    def samples(self) -> list[Sample]:
        """The samples taken so far, parsed."""
        return [
            Sample(
                at=raw.at,
                counters=GatewayCounters.parse(raw.gateway),
                gateway_cpu_s=raw.gateway_cpu_s,
                client_cpu_s=raw.client_cpu_s,
                emulators_cpu_s=raw.emulators_cpu_s,
                machine_busy_s=raw.machine_busy_s,
                machine_cores=raw.machine_cores,
                workers=None if raw.workers is None else WorkerCounters.parse(raw.workers),
            )
            for raw in self._raw
        ]
