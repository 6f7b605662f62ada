"""A real ``prometheus`` server (the Debian binary) scraping loopback targets, and its HTTP API.

Used by the monitoring proof test and the dashboard previews: it scrapes every target each
``interval_s`` (1 s), evaluates the repository's rule files at the same interval, listens on a
free loopback port and keeps its data in the given folder. It runs as a ``running_process``:
bounded in time and stopped when the caller's block ends. Stdlib only (the process helpers).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests.processes import ManagedProcess, ProcessStartError, free_port, running_process

PROMETHEUS_BINARY = "prometheus"
RULES = Path(__file__).resolve().parents[1] / "monitoring" / "rules"


class QueryFailed(RuntimeError):
    """Prometheus answered a query with an error (bad PromQL, a timeout)."""


@dataclass(frozen=True, slots=True)
class ScrapeJob:
    """One ``scrape_configs`` entry: ``host:port`` targets, each with its own labels."""

    name: str
    targets: Mapping[str, Mapping[str, str]]


@dataclass(slots=True)
class PrometheusServer:
    """A Prometheus on 127.0.0.1, started by ``run``."""

    workdir: Path
    jobs: Sequence[ScrapeJob]
    rule_files: Sequence[Path] = field(default_factory=lambda: sorted(RULES.glob("*.rules.yaml")))
    interval_s: float = 1.0
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        """The configuration file's content (YAML is a superset of JSON)."""
        interval = f"{self.interval_s:g}s"
        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": job.name,
                    "scrape_interval": interval,
                    "static_configs": [
                        {"targets": [target], "labels": dict(labels)}
                        for target, labels in job.targets.items()
                    ],
                }
                for job in self.jobs
            ],
        }

    @contextlib.contextmanager
    def run(self, max_lifetime_s: float = 600.0) -> Iterator[ManagedProcess]:
        """Serve until the block ends."""
        binary = shutil.which(PROMETHEUS_BINARY)
        if binary is None:
            raise ProcessStartError(f"{PROMETHEUS_BINARY} is not on PATH (make test installs it)")
        config = self.workdir / "prometheus.yml"
        config.write_text(json.dumps(self.config(), indent=2), encoding="utf-8")
        args = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with running_process(
            args,
            f"{self.url}/-/ready",
            timeout_s=30.0,
            max_lifetime_s=max_lifetime_s,
            log_path=self.workdir / "prometheus.log",
        ) as process:
            yield process

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result (a vector's samples; a scalar as one sample)."""
        params = {"query": expr, **({} if at is None else {"time": f"{at:.3f}"})}
        data = self._get("/api/v1/query", params)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(self, expr: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Poll ``expr`` until it returns samples; the last (maybe empty) result."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.query(expr)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.25)

    def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10.0) as response:
                reply = json.load(response)
        except urllib.error.HTTPError as exc:
            with exc:
                reply = json.loads(exc.read() or b"{}")
        if reply.get("status") != "success":
            raise QueryFailed(f"{params.get('query')!r}: {reply.get('error', reply)}")
        data: dict[str, Any] = reply["data"]
        return data
