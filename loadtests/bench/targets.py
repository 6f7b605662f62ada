"""What the overhead benchmark measures: the emulator, the floor proxy and the gateway.

Starts each as a process on a free loopback port (``loadtests/processes.py``) and says where
to send requests, which model name and which API key to put in them. ``gateway`` runs open
(no keys); ``accounting`` is the same gateway with everything the accounting issue adds on
the request path: API keys, a team and key budget and RPM/TPM limits (far above the load, so
every request is admitted and settled) and the spend ledger, on a real ``redis-server``;
``cache`` is the open gateway with its response cache on a real ``redis-server``, sent the
same question every time: it measures cache hits.
Stdlib and the gateway's stdlib-only admin client (the processes run the rest).
"""

from __future__ import annotations

import contextlib
import json
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.admin_client import AdminClient
from loadtests.fleet import start_emulator
from loadtests.processes import ManagedProcess, free_port, running_process
from loadtests.redis_server import RedisServer

START_TIMEOUT_S = 30.0
LIFETIME_S = 3600.0
"""Every process the benchmark starts is killed after this (the run's own alarm is shorter)."""
GATEWAY_ALIAS = "bench-qwen"
GATEWAY_DEPLOYMENT = "bench-worker"
PROXY_TARGETS = ("floor", "gateway", "accounting", "cache")
MASTER_KEY = "sk-bench-master"


@dataclass(frozen=True, slots=True)
class Target:
    """Where a target listens, the model name it is sent, and its process (None: direct)."""

    name: str
    origin: str
    model: str
    proxy: ManagedProcess | None
    api_key: str | None = None
    cache_hits: bool = False
    """Send requests the gateway's cache answers (the same prompt every time)."""


@contextlib.contextmanager
def emulator(workdir: Path) -> Iterator[str]:
    """A zero-latency vLLM emulator on a free port, on this process's cpus; yields its origin."""
    with contextlib.ExitStack() as stack:
        emulated = start_emulator(
            stack, "vllm", "--zero-latency", log_dir=workdir, max_lifetime_s=LIFETIME_S
        )
        yield emulated.url


def served_model(origin: str) -> str:
    """The first model id the upstream lists at /v1/models."""
    with urllib.request.urlopen(origin + "/v1/models", timeout=5.0) as response:
        listing = json.load(response)
    model: str = listing["data"][0]["id"]
    return model


def gateway_config(
    upstream: str, model: str, redis_url: str | None = None, *, cache: bool = False
) -> str:
    """A gateway config: one local deployment on the emulator behind one alias; open, or
    with keys, budgets and the ledger on ``redis_url``, or open with every answer cached in
    ``redis_url`` (``cache``)."""
    if cache:
        accounting = f"accounting:\n  auth: off\ncache:\n  mode: always\n  redis_url: {redis_url}\n"
    elif redis_url:
        accounting = f"accounting:\n  auth: required\n  redis_url: {redis_url}\n"
    else:
        accounting = "accounting:\n  auth: off\n"
    return (
        "# Written by loadtests/bench/targets.py for one benchmark run.\n"
        "deployments:\n"
        f"  - name: {GATEWAY_DEPLOYMENT}\n"
        "    kind: openai\n"
        f"    base_url: {upstream}/v1\n"
        f"    model: {json.dumps(model)}\n"
        "    local: true\n"
        "    gpu_hour_usd: 3.99\n"
        "    gpus: 1\n"
        f"{accounting}"
        "aliases:\n"
        f"  {GATEWAY_ALIAS}:\n"
        f"    deployments: [{GATEWAY_DEPLOYMENT}]\n"
    )


def proxy_command(
    name: str, upstream: str, port: int, workdir: Path, model: str, redis_url: str | None = None
) -> list[str]:
    """The command line that serves the proxy target ``name`` on ``port``."""
    if name == "floor":
        floor = ["loadtests.bench.floor_proxy", "--port", str(port), "--upstream", upstream]
        return [sys.executable, "-m", *floor]
    if name not in PROXY_TARGETS:
        raise ValueError(f"unknown target {name!r}; known: {', '.join(PROXY_TARGETS)}")
    config = workdir / f"{name}.yaml"
    config.write_text(gateway_config(upstream, model, redis_url, cache=name == "cache"))
    serve = ["gateway", "serve", "--config", str(config), "--host", "127.0.0.1"]
    return [sys.executable, "-m", *serve, "--port", str(port), "--workers", "1"]


def start_proxy(
    stack: contextlib.ExitStack,
    name: str,
    upstream: str,
    model: str,
    workdir: Path,
    cpus: set[int] | None,
) -> Target:
    """Start proxy target ``name`` (stopped when ``stack`` closes) and wait for /healthz."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    redis_url = None
    if name in ("accounting", "cache"):
        redis = RedisServer(workdir, max_lifetime_s=LIFETIME_S)
        redis.start()
        stack.callback(redis.stop)
        redis_url = redis.url
    command = proxy_command(name, upstream, port, workdir, model, redis_url)
    log = workdir / f"{name}.log"
    started = stack.enter_context(
        running_process(
            command,
            origin + "/healthz",
            timeout_s=START_TIMEOUT_S,
            max_lifetime_s=LIFETIME_S,
            log_path=log,
            cpus=cpus,
            env={"TOKEN_GATEWAY_MASTER_KEY": MASTER_KEY},
        )
    )
    if name == "floor":
        return Target(name, origin, model, started)
    api_key = bench_key(origin) if name == "accounting" else None
    return Target(name, origin, GATEWAY_ALIAS, started, api_key, cache_hits=name == "cache")


def bench_key(origin: str) -> str:
    """A key of a team with budgets and limits that the benchmark's load never reaches."""
    admin = AdminClient(origin, MASTER_KEY)
    limits = {"budget_usd": {"day": 1000, "month": 10000}, "rpm": 10**8, "tpm": 10**9}
    admin.call("POST", "/admin/teams", {"team_id": "bench", **limits})
    created = admin.call("POST", "/admin/keys", {"team_id": "bench", "name": "bench", **limits})
    secret = created["key"]
    if not isinstance(secret, str):
        raise RuntimeError(f"the admin API answered no key: {created}")
    return secret
