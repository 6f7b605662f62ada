"""The demo fleet as processes: upstream emulators and the gateway, on free loopback ports.

``start_emulator`` and ``start_gateway`` enter their process into the caller's ExitStack, so
the caller's scope bounds its life (the demo's ``with``, a test fixture). ``scrape`` and
``metric_sum`` read a /metrics page. Used by the demo, the benchmarks and the tests.
"""

from __future__ import annotations

import contextlib
import sys
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from loadtests.processes import ManagedProcess, free_port, running_process

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO_ROOT / "configs" / "demo.yaml"
# litellm fetches its price map from the network at import unless told to use its bundled copy.
OFFLINE_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
DUMMY_KEYS_ENV = {"OPENAI_API_KEY": "sk-emulated", "ANTHROPIC_API_KEY": "sk-ant-emulated"}
LIFETIME_S = 900.0


@dataclass(frozen=True, slots=True)
class Service:
    """A started process that serves HTTP on loopback."""

    port: int
    process: ManagedProcess

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"


def start_emulator(
    stack: contextlib.ExitStack,
    kind: str,
    *extra_args: str,
    time_scale: float = 1.0,
    log_dir: Path | None = None,
    max_lifetime_s: float = LIFETIME_S,
    port: int | None = None,
) -> Service:
    """``python -m loadtests.emulate KIND`` on ``port`` (default: a free one), once GET
    /health answers 200."""
    port = free_port() if port is None else port
    args = [sys.executable, "-m", "loadtests.emulate", kind, "--port", str(port)]
    args += ["--time-scale", str(time_scale), *extra_args]
    log_path = None if log_dir is None else log_dir / f"emulator-{kind}-{port}.log"
    process = stack.enter_context(
        running_process(
            args,
            f"http://127.0.0.1:{port}/health",
            timeout_s=20.0,
            env=OFFLINE_ENV,
            max_lifetime_s=max_lifetime_s,
            cwd=REPO_ROOT,
            log_path=log_path,
        )
    )
    return Service(port, process)


def start_gateway(
    stack: contextlib.ExitStack,
    config_path: Path,
    env: Mapping[str, str],
    *extra_args: str,
    log_dir: Path | None = None,
    max_lifetime_s: float = LIFETIME_S,
) -> Service:
    """``python -m gateway serve`` on a free port, once GET /readyz answers 200."""
    port = free_port()
    args = [sys.executable, "-m", "gateway", "serve", "--config", str(config_path)]
    args += ["--host", "127.0.0.1", "--port", str(port), *extra_args]
    log_path = None if log_dir is None else log_dir / f"gateway-{port}.log"
    process = stack.enter_context(
        running_process(
            args,
            f"http://127.0.0.1:{port}/readyz",
            timeout_s=60.0,
            env={**OFFLINE_ENV, **DUMMY_KEYS_ENV, **env},
            max_lifetime_s=max_lifetime_s,
            cwd=REPO_ROOT,
            log_path=log_path,
        )
    )
    return Service(port, process)


@dataclass(frozen=True, slots=True)
class DemoFleet:
    """The emulated upstreams of configs/demo.yaml."""

    qwen_a: Service
    qwen_b: Service
    openai: Service
    anthropic: Service

    def env(self) -> dict[str, str]:
        """The variables configs/demo.yaml reads for its ports."""
        return {
            "QWEN_A_PORT": str(self.qwen_a.port),
            "QWEN_B_PORT": str(self.qwen_b.port),
            "OPENAI_PORT": str(self.openai.port),
            "ANTHROPIC_PORT": str(self.anthropic.port),
        }


def start_demo_fleet(
    stack: contextlib.ExitStack,
    log_dir: Path | None,
    *,
    time_scale: float,
    worker_args: Sequence[str] = (),
) -> DemoFleet:
    """Two vLLM Qwen2.5-7B emulators (``worker_args`` added), an OpenAI and an Anthropic one."""

    def worker(seed: str) -> Service:
        args = ("--seed", seed, *worker_args)
        return start_emulator(stack, "vllm", *args, time_scale=time_scale, log_dir=log_dir)

    return DemoFleet(
        qwen_a=worker("1"),
        qwen_b=worker("2"),
        openai=start_emulator(stack, "openai", time_scale=time_scale, log_dir=log_dir),
        anthropic=start_emulator(stack, "anthropic", time_scale=time_scale, log_dir=log_dir),
    )


def scrape(url: str) -> str:
    """GET ``url``/metrics and return the Prometheus text."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5.0) as response:
        body: bytes = response.read()
    return body.decode("utf-8")


def metric_sum(
    text: str, sample_name: str, where: Callable[[Mapping[str, str]], bool] = lambda _: True
) -> float:
    """Sum of the samples called ``sample_name`` whose labels satisfy ``where``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == sample_name and where(sample.labels)
    )
