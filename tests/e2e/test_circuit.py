"""The circuit breaker against real processes: a worker dies, its circuit opens, traffic
flows to the next deployment; the worker comes back, a probe closes the circuit again."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import openai
import pytest

from loadtests.fleet import (
    metric_sum,
    scrape,
    start_emulator,
    start_gateway,
)
from loadtests.processes import free_port
from tests.support.clients import sync_client
from tests.support.services import local_deployment, write_config

pytestmark = pytest.mark.e2e

BODY = {"model": "pair", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def _explain(url: str) -> Any:
    request = urllib.request.Request(
        f"{url}/v1/route/explain",
        data=json.dumps(BODY).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _served_by(client: openai.OpenAI) -> str:
    raw = client.chat.completions.with_raw_response.create(
        model="pair", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    return raw.headers["x-gateway-deployment"]


def _open_gauge(url: str) -> float:
    def flaky(labels: Mapping[str, str]) -> bool:
        return labels.get("deployment") == "flaky"

    return metric_sum(scrape(url), "gateway_deployment_circuit_open", flaky)


def _circuit(url: str, name: str) -> str:
    state: str = next(c["circuit"] for c in _explain(url)["candidates"] if c["name"] == name)
    return state


def _healthy(url: str, alias: str) -> float:
    return metric_sum(
        scrape(url), "gateway_alias_healthy_deployments", lambda labels: labels["model"] == alias
    )


def test_dead_worker_opens_its_circuit_and_a_probe_closes_it_after_recovery(
    tmp_path: Path,
) -> None:
    port = free_port()
    with contextlib.ExitStack() as stack:
        healthy = start_emulator(stack, "vllm", time_scale=0.01, log_dir=tmp_path)
        config = {
            "server": {"cooldown_s": 0.5, "scrape_interval_s": 0.1},
            "deployments": [
                local_deployment("flaky", port),
                local_deployment("steady", healthy.port),
            ],
            "aliases": {"pair": {"deployments": ["flaky", "steady"], "policy": "ordered"}},
        }
        gateway = start_gateway(
            stack, write_config(tmp_path / "circuit.yaml", config), {}, log_dir=tmp_path
        )
        with sync_client(gateway.url) as client:
            # The worker was never up: every call to it fails over to "steady".
            assert [_served_by(client) for _ in range(6)] == ["steady"] * 6
            assert _circuit(gateway.url, "flaky") == "open"
            assert _explain(gateway.url)["plan"] == ["steady"]
            assert _open_gauge(gateway.url) == 1.0
            assert _healthy(gateway.url, "pair") == 1.0  # of two

            with contextlib.ExitStack() as revived:
                start_emulator(revived, "vllm", time_scale=0.01, port=port, max_lifetime_s=60)
                time.sleep(0.6)  # the cooldown passes: one probe may go through
                served = [_served_by(client) for _ in range(4)]
                assert served[0] == "flaky"  # the half-open probe, and it succeeded
                assert set(served) == {"flaky"}
                assert _circuit(gateway.url, "flaky") == "closed"
                assert _open_gauge(gateway.url) == 0.0
                assert _healthy(gateway.url, "pair") == 2.0
