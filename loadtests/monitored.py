"""``python -m loadtests.monitored``: the demo fleet under traffic, scraped by a real Prometheus.

One scenario that touches every dashboard panel and alert signal: a team with a tiny daily
budget that runs out (budget refusals) and a team with a low RPM limit (rate-limit
refusals), then waves of the demo's traffic (two emulated Qwen workers, paid APIs, streams,
embeddings, evaluation questions the cache answers). Prometheus scrapes the gateway and both workers
every second and evaluates ``monitoring/rules/``. The monitoring proof test evaluates every
panel query and rule against it; run as a program, it renders the dashboards to PNG with
``python -m monitoring.preview`` (the pictures in the README). Every process is started on
loopback, bounded in time and stopped. Imports: ``gateway`` (admin client), ``loadtests``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import openai

from gateway.admin_client import AdminClient
from loadtests.demo import drive, plan_traffic
from loadtests.fleet import DEMO_CONFIG, REPO_ROOT, Service, start_demo_fleet, start_gateway
from loadtests.prometheus import PrometheusServer, ScrapeJob

MASTER_KEY_ENV = "TOKEN_GATEWAY_MASTER_KEY"
PAID = "gpt-4o-mini"
WORKERS = {"qwen-7b-a": "qwen_a", "qwen-7b-b": "qwen_b"}
"""configs/demo.yaml's local deployments and the DemoFleet field of the worker serving each."""


@dataclass(frozen=True, slots=True)
class Monitored:
    """The gateway, the Prometheus scraping it and the workers, and the admin API's key."""

    gateway: Service
    prometheus: PrometheusServer
    master_key: str


@contextlib.contextmanager
def monitored_fleet(workdir: Path, *, time_scale: float = 0.05) -> Iterator[Monitored]:
    """The demo fleet and gateway (open, embedded store, cache on) and a Prometheus."""
    with contextlib.ExitStack() as stack:
        fleet = start_demo_fleet(
            stack, workdir, time_scale=time_scale, worker_args=("--max-num-seqs", "16")
        )
        master_key = "sk-monitored-" + secrets.token_urlsafe(16)
        env = {**fleet.env(), MASTER_KEY_ENV: master_key}
        gateway = start_gateway(stack, DEMO_CONFIG, env, log_dir=workdir)
        workers = {
            f"127.0.0.1:{getattr(fleet, field).port}": {"deployment": name}
            for name, field in WORKERS.items()
        }
        prometheus = PrometheusServer(
            workdir / "prometheus",
            [
                ScrapeJob("token-gateway", {f"127.0.0.1:{gateway.port}": {}}),
                ScrapeJob("qwen-workers", workers),
            ],
        )
        prometheus.workdir.mkdir()
        stack.enter_context(prometheus.run())
        yield Monitored(gateway, prometheus, master_key)


def drive_traffic(
    monitored: Monitored,
    requests: int = 100,
    waves: int = 3,
    pause_s: float = 2.0,
    concurrency: int = 32,
) -> Counter[int]:
    """The scenario's load: the budget and rate-limit phases (whose HTTP statuses it returns),
    then ``waves`` of the demo's traffic ``pause_s`` apart, so every rate has samples before
    and after and the last wave has just ended when this returns."""
    url = monitored.gateway.url
    if not monitored.prometheus.wait_for('up{job="token-gateway"} == 1'):
        raise RuntimeError("Prometheus never scraped the gateway")
    admin = AdminClient(url, monitored.master_key)
    admin.call("POST", "/admin/teams", {"team_id": "research", "budget_usd": {"day": 0.002}})
    admin.call("POST", "/admin/teams", {"team_id": "ops", "rpm": 5})
    broke = admin.call("POST", "/admin/keys", {"team_id": "research", "name": "notebook"})
    busy = admin.call("POST", "/admin/keys", {"team_id": "ops", "name": "cron"})
    statuses: Counter[int] = Counter()
    statuses += _send(url, str(broke["key"]), 40)
    statuses += _send(url, str(busy["key"]), 12)
    for wave in range(waves):
        time.sleep(pause_s)
        outcomes = asyncio.run(drive(url, plan_traffic(requests, seed=11 + wave), concurrency))
        failed = [o.error for o in outcomes if o.error]
        if failed:
            raise RuntimeError(f"{len(failed)} demo requests failed, e.g. {failed[0]}")
    return statuses


def _send(url: str, secret: str, count: int) -> Counter[int]:
    """``count`` paid chat requests with ``secret``, one after the other; their statuses."""
    statuses: Counter[int] = Counter()
    with openai.OpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0) as client:
        for n in range(count):
            try:
                client.chat.completions.create(
                    model=PAID,
                    messages=[{"role": "user", "content": f"summarise report {n} in detail"}],
                    max_tokens=150,
                )
                statuses[200] += 1
            except openai.APIStatusError as exc:
                statuses[exc.status_code] += 1
    return statuses


def settle(monitored: Monitored, timeout_s: float = 60.0) -> None:
    """Wait until Prometheus has scraped the load and evaluated the rules on it."""
    prometheus = monitored.prometheus
    for expr in (
        'count(up{job="qwen-workers"} == 1) == 2',
        "sum(gateway_accounting_refusals_total) > 0",
        "gateway:requests:rate5m",
        "gateway:cache_hit:ratio_rate5m",
    ):
        if not prometheus.wait_for(expr, timeout_s):
            raise RuntimeError(f"Prometheus never had {expr!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenario and render the dashboards to PNG."""
    parser = argparse.ArgumentParser(prog="python -m loadtests.monitored", description=__doc__)
    parser.add_argument("--waves", type=int, default=12, help="waves of 100 demo requests")
    parser.add_argument("--pause", type=float, default=5.0, help="seconds between waves")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="emulator delays x this (1 = calibrated)"
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "img" / "dashboards")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tg-monitored-") as tmp:
        with monitored_fleet(Path(tmp), time_scale=args.time_scale) as monitored:
            started = time.time()
            statuses = drive_traffic(monitored, waves=args.waves, pause_s=args.pause)
            settle(monitored)
            print(f"budget and rate-limit phases: {dict(statuses)}", flush=True)
            minutes = max(2, round((time.time() - started) / 60) + 1)
            preview = [sys.executable, "-m", "monitoring.preview"]
            preview += ["--prometheus", monitored.prometheus.url, "--out", str(args.out)]
            preview += ["--minutes", str(minutes)]
            return subprocess.run(preview, cwd=REPO_ROOT, timeout=300, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
