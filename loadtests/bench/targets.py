"""What the overhead benchmark measures: the emulator, the floor proxy and the gateway.

Starts each as a process on a free loopback port (``loadtests/processes.py``) and says where
to send requests and which model name to put in them. Stdlib only (the processes run other code).
"""

from __future__ import annotations

import contextlib
import json
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loadtests.fleet import start_emulator
from loadtests.processes import ManagedProcess, free_port, running_process

START_TIMEOUT_S = 30.0
GATEWAY_ALIAS = "bench-qwen"
GATEWAY_DEPLOYMENT = "bench-worker"
PROXY_TARGETS = ("floor", "gateway")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a target listens, the model name it is sent, and its process (None: direct)."""

    name: str
    origin: str
    model: str
    proxy: ManagedProcess | None


@contextlib.contextmanager
def emulator(workdir: Path) -> Iterator[str]:
    """A zero-latency vLLM emulator on a free port, on this process's cpus; yields its origin."""
    with contextlib.ExitStack() as stack:
        yield start_emulator(stack, "vllm", "--zero-latency", log_dir=workdir).url


def served_model(origin: str) -> str:
    """The first model id the upstream lists at /v1/models."""
    with urllib.request.urlopen(origin + "/v1/models", timeout=5.0) as response:
        listing = json.load(response)
    model: str = listing["data"][0]["id"]
    return model


def gateway_config(upstream: str, model: str) -> str:
    """A gateway config: one local deployment on the emulator behind one alias."""
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
        "accounting:\n"
        "  auth: off\n"
        "aliases:\n"
        f"  {GATEWAY_ALIAS}:\n"
        f"    deployments: [{GATEWAY_DEPLOYMENT}]\n"
    )


def proxy_command(name: str, upstream: str, port: int, workdir: Path, model: str) -> list[str]:
    """The command line that serves the proxy target ``name`` on ``port``."""
    if name == "floor":
        floor = ["loadtests.bench.floor_proxy", "--port", str(port), "--upstream", upstream]
        return [sys.executable, "-m", *floor]
    if name != "gateway":
        raise ValueError(f"unknown target {name!r}; known: {', '.join(PROXY_TARGETS)}")
    config = workdir / "gateway.yaml"
    config.write_text(gateway_config(upstream, model))
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
    command = proxy_command(name, upstream, port, workdir, model)
    log = workdir / f"{name}.log"
    started = stack.enter_context(
        running_process(
            command, origin + "/healthz", timeout_s=START_TIMEOUT_S, log_path=log, cpus=cpus
        )
    )
    sent = GATEWAY_ALIAS if name == "gateway" else model
    return Target(name, origin, sent, started)
