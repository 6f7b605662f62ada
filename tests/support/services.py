"""Test-side helpers around the shared fleet code: config builders and metric polling.

Processes are started by ``loadtests.fleet`` (shared with the demo and the benchmarks); what
is here only shapes configs for fault tests and waits on /metrics.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from loadtests.fleet import DEMO_CONFIG, metric_sum, scrape

EMULATOR_TIME_SCALE = 0.01


def demo_config() -> dict[str, Any]:
    """configs/demo.yaml as loaded YAML (placeholders not expanded)."""
    loaded: dict[str, Any] = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    return loaded


def demo_deployment(name: str) -> dict[str, Any]:
    """A copy of one deployment of configs/demo.yaml, to clone for test configs."""
    for deployment in demo_config()["deployments"]:
        if deployment["name"] == name:
            return copy.deepcopy(dict(deployment))
    raise KeyError(name)


def local_deployment(name: str, port: int) -> dict[str, Any]:
    """A Qwen vLLM deployment like the demo's ``qwen-7b-a``, at 127.0.0.1:``port``."""
    deployment = demo_deployment("qwen-7b-a")
    deployment["name"] = name
    deployment["base_url"] = f"http://127.0.0.1:{port}/v1"
    return deployment


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    """Write ``config`` as YAML to ``path`` and return the path.

    A config without an ``accounting`` section runs open (no API keys), as the routing and
    fault tests that use this expect; the accounting tests write their own section.
    """
    config = {"accounting": {"auth": "off"}, **config}
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def logged_requests(path: Path) -> list[dict[str, Any]]:
    """What an emulator's ``--request-log`` holds so far: one dict per answered request
    (empty until its first line is written)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def wait_for_metric(
    url: str,
    sample_name: str,
    done: Callable[[float], bool],
    *,
    where: Callable[[Mapping[str, str]], bool] = lambda _: True,
    timeout_s: float = 10.0,
) -> float:
    """Scrape ``url`` until ``done(value)``; return the last value (the caller asserts)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = metric_sum(scrape(url), sample_name, where)
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)
