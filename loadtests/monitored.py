"""``python -m loadtests.monitored``: the demo fleet under traffic, scraped by a real Prometheus.

One scenario that touches every dashboard panel and alert signal: a team with a tiny daily
budget that runs out (budget refusals) and a team with a low RPM limit (rate-limit
refusals); a few operations, each a request or two (a deployment drained and enabled again,
private requests pinned, upgraded by the IBAN detector, refused on a paid-only alias and
with a bad header, an alias with a code specialist, and with ``dns_resolver`` a discovery
group of one pod); three config reloads (applied, applied, then rejected for a restart-only
change, which the file keeps); then waves of the demo's traffic (two emulated Qwen workers,
paid APIs, streams, embeddings, evaluation questions the cache answers). The gateway runs
configs/demo.yaml plus those additions (``scenario_config``). Prometheus scrapes the gateway
and both workers every second and evaluates ``monitoring/rules/``. The monitoring proof test
evaluates every panel query and rule against it; run as a program, it renders the dashboards
to PNG with ``python -m monitoring.preview`` (the pictures in the README). Every process is
started on loopback, bounded in time and stopped. Imports: ``gateway`` (admin client),
``loadtests``.
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
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import yaml

from gateway.admin_client import AdminClient
from loadtests.demo import drive, plan_traffic
from loadtests.fleet import DEMO_CONFIG, REPO_ROOT, Service, start_demo_fleet, start_gateway
from loadtests.prometheus import PrometheusServer, ScrapeJob

MASTER_KEY_ENV = "TOKEN_GATEWAY_MASTER_KEY"
PAID = "gpt-4o-mini"
WORKERS = {"qwen-7b-a": "qwen_a", "qwen-7b-b": "qwen_b"}
"""configs/demo.yaml's local deployments and the DemoFleet field of the worker serving each."""
LOCAL = "qwen2.5-7b-instruct"
SPECIALISTS = "qwen-specialists"
"""An alias added to the demo's: qwen-7b-a in general, qwen-7b-b for code."""
PODS, GROUP = "qwen-pods", "qwen-7b-pods"
"""An alias added with a discovery group, whose one member is the worker of qwen-7b-a."""
DISCOVERY_NAME = "qwen-pods.monitored.test"
"""The group's DNS name: the ``dns_resolver`` given must answer it with 127.0.0.1."""
IBAN = "GB82WEST12345698765432"
"""A valid IBAN (ISO 13616 mod-97): the detector makes the request that carries it private."""
CODE = "Fix this function:\n```python\ndef mean(xs):\n    return sum(xs) / len(xs)\n```"


@dataclass(frozen=True, slots=True)
class Monitored:
    """The gateway, the Prometheus scraping it and the workers, and the admin API's key."""

    gateway: Service
    prometheus: PrometheusServer
    master_key: str
    config: Path
    discovery: bool = False


def scenario_config(
    pods_port: int | None = None, dns_resolver: str | None = None
) -> dict[str, Any]:
    """configs/demo.yaml plus what the scenario exercises: reloads polled every 0.5 s, the
    IBAN detector, the specialists alias, and with ``dns_resolver`` the discovery group (its
    members on ``pods_port``)."""
    config: dict[str, Any] = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    config["server"]["config_poll_s"] = 0.5
    config["privacy"] = {"detector": {"enabled": True, "detectors": ["iban"]}}
    config["aliases"][SPECIALISTS] = {
        "deployments": ["qwen-7b-a"],
        "specialists": {"code": {"deployments": ["qwen-7b-b"]}},
    }
    if dns_resolver is not None and pods_port is not None:
        config["server"]["dns_resolver"] = dns_resolver
        (local,) = [d for d in config["deployments"] if d["name"] == "qwen-7b-a"]
        group = {k: v for k, v in local.items() if k not in ("name", "base_url")}
        group |= {"name": GROUP, "discovery": {"dns": DISCOVERY_NAME, "port": pods_port}}
        group["discovery"]["interval_s"] = 1
        config["deployments"].append(group)
        config["aliases"][PODS] = {"deployments": [GROUP]}
    return config


@contextlib.contextmanager
def monitored_fleet(
    workdir: Path, *, time_scale: float = 0.05, dns_resolver: str | None = None
) -> Iterator[Monitored]:
    """The demo fleet and gateway (open, embedded store, cache on) on ``scenario_config``,
    and a Prometheus. With ``dns_resolver`` (``host:port``, answering ``DISCOVERY_NAME``
    with 127.0.0.1) the config has the discovery group."""
    with contextlib.ExitStack() as stack:
        fleet = start_demo_fleet(
            stack, workdir, time_scale=time_scale, worker_args=("--max-num-seqs", "16")
        )
        master_key = "sk-monitored-" + secrets.token_urlsafe(16)
        env = {**fleet.env(), MASTER_KEY_ENV: master_key}
        config = workdir / "gateway.yaml"
        scenario = scenario_config(fleet.qwen_a.port, dns_resolver)
        config.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
        gateway = start_gateway(stack, config, env, log_dir=workdir)
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
        yield Monitored(gateway, prometheus, master_key, config, dns_resolver is not None)


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
    _operate(monitored, admin)
    _reload(monitored)
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


def _operate(monitored: Monitored, admin: AdminClient) -> None:
    """A drain and an enable; private requests pinned, upgraded, refused (paid-only alias)
    and rejected (bad header); a general and a code request to the specialists alias; two
    requests to the discovery group's alias. Raises if one is not answered as expected."""
    admin.call("POST", "/admin/deployments/qwen-7b-b/drain")
    admin.call("POST", "/admin/deployments/qwen-7b-b/enable")
    private = {"x-gateway-data-class": "private"}
    expected: list[tuple[str, str, dict[str, str], int]] = [
        (LOCAL, "summarise the private memo", private, 200),
        (LOCAL, f"refund to {IBAN} please", {}, 200),
        (PAID, "summarise the private memo", private, 503),
        (LOCAL, "hello", {"x-gateway-data-class": "secret"}, 400),
        (SPECIALISTS, "what is the capital of France?", {}, 200),
        (SPECIALISTS, CODE, {}, 200),
    ]
    if monitored.discovery:
        expected += [(PODS, f"hello pod {n}", {}, 200) for n in range(2)]
    with openai.OpenAI(
        base_url=f"{monitored.gateway.url}/v1", api_key="unused", max_retries=0
    ) as client:
        for model, content, headers, status in expected:
            try:
                client.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": content}],
                    max_tokens=20,
                    extra_headers=headers,
                )
                got = 200
            except openai.APIStatusError as exc:
                got = exc.status_code
            if got != status:
                raise RuntimeError(f"{model} {headers}: {got}, expected {status}")


def _reload(monitored: Monitored) -> None:
    """The config file rewritten three times, each reload seen in /metrics: a comment
    (applied), another comment (applied), then a restart-only change (rejected: it stays
    rejected, so the scenario ends with the file on disk not serving)."""
    original = monitored.config.read_text(encoding="utf-8")
    commented = original + "# reloaded by loadtests.monitored\n"
    restart = commented.replace("server:\n", "server:\n  cooldown_s: 7\n", 1)
    for text, series in (
        (commented, 'gateway_config_reloads_total{result="applied"} 1.0'),
        (commented + "# again\n", 'gateway_config_reloads_total{result="applied"} 2.0'),
        (restart, 'gateway_config_reloads_total{result="rejected"} 1.0'),
    ):
        monitored.config.write_text(text, encoding="utf-8")
        deadline = time.monotonic() + 30.0
        while series not in _exposition(monitored.gateway.url):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway never reported {series}")
            time.sleep(0.2)


def _exposition(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text: str = response.read().decode()
    return text


def settle(monitored: Monitored, timeout_s: float = 60.0) -> None:
    """Wait until Prometheus has scraped the load and evaluated the rules on it."""
    prometheus = monitored.prometheus
    for expr in (
        'count(up{job="qwen-workers"} == 1) == 2',
        "sum(gateway_accounting_refusals_total) > 0",
        "gateway:requests:rate5m",
        "gateway:cache_hit:ratio_rate5m",
        "gateway_config_last_reload_successful == 0",
        "gateway_specialist_routes_total",
        *(["gateway_discovery_members > 0"] if monitored.discovery else []),
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
