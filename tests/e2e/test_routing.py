"""Routing by policy against real emulators: spill over, come back, explain, controls.

One local vLLM worker with room for two sequences (``--max-num-seqs 2``) and a paid API
behind the alias ``auto`` (spillover, TTFT SLO 1 s; the paid API is predicted at its 0.8 s
prior). The gateway scrapes the worker's /metrics every 50 ms, so a queue on the worker
shows up in its predictions.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from loadtests.fleet import Service, start_emulator, start_gateway
from tests.support.clients import sync_client
from tests.support.services import demo_deployment, local_deployment, write_config

pytestmark = pytest.mark.e2e

SLO_MS = 1000


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    logs = tmp_path_factory.mktemp("routing")
    with contextlib.ExitStack() as stack:
        local = start_emulator(stack, "vllm", "--max-num-seqs", "2", time_scale=0.5, log_dir=logs)
        paid = start_emulator(stack, "openai", time_scale=0.05, log_dir=logs)
        openai_dep = demo_deployment("openai-gpt-4o-mini")
        openai_dep["base_url"] = f"{paid.url}/v1"
        config = {
            "server": {"scrape_interval_s": 0.05, "cooldown_s": 0.5},
            "deployments": [local_deployment("local", local.port), openai_dep],
            "aliases": {
                "auto": {
                    "deployments": ["local", "openai-gpt-4o-mini"],
                    "policy": "spillover",
                    "slo_ttft_ms": SLO_MS,
                },
                "paid-only": {"deployments": ["openai-gpt-4o-mini"], "policy": "cost"},
                "canary": {
                    "deployments": ["local", "openai-gpt-4o-mini"],
                    "policy": "weighted",
                    "policy_params": {"weights": {"local": 1, "openai-gpt-4o-mini": 1}},
                },
            },
        }
        path = write_config(logs / "routing.yaml", config)
        yield start_gateway(stack, path, {}, log_dir=logs, max_lifetime_s=300)


def _explain(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(
        f"{url}/v1/route/explain",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _ask(client: openai.OpenAI) -> tuple[str, str]:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    return raw.headers["x-gateway-deployment"], raw.headers["x-gateway-route-reason"]


def test_idle_local_worker_serves_and_the_headers_say_why(routed: Service) -> None:
    with sync_client(routed.url) as client:
        deployment, reason = _ask(client)
    assert deployment == "local"
    assert reason.startswith("local_under_slo")


def test_explain_names_the_deployment_the_request_then_goes_to(routed: Service) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    explained = _explain(routed.url, body)
    with sync_client(routed.url) as client:
        deployment, reason = _ask(client)
    assert explained["plan"][0] == deployment
    assert reason.startswith(explained["reason"])
    assert explained["policy"] == "spillover"
    names = [c["name"] for c in explained["candidates"]]
    assert names == ["local", "openai-gpt-4o-mini"]
    assert all(c["score"] is not None for c in explained["candidates"])


def test_spillover_sends_overflow_to_paid_while_the_worker_queue_is_full_then_returns(
    routed: Service,
) -> None:
    def occupy() -> None:
        with sync_client(routed.url) as client:
            client.chat.completions.create(
                model="auto",
                messages=[{"role": "user", "content": "long"}],
                max_tokens=400,
                extra_body={"ignore_eos": True},
            )

    # Six long generations: two run on the worker, the rest wait in its queue (or spill).
    fillers = [threading.Thread(target=occupy) for _ in range(6)]
    for thread in fillers:
        thread.start()
    try:
        body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        deadline = time.monotonic() + 10
        explained = _explain(routed.url, body)
        while explained["plan"][0] == "local" and time.monotonic() < deadline:
            time.sleep(0.05)
            explained = _explain(routed.url, body)
        assert explained["reason"] == "spill_to_paid", json.dumps(explained["candidates"])
        assert explained["candidates"][0]["waiting"] > 0
        local = next(c for c in explained["candidates"] if c["name"] == "local")
        assert local["predicted_ttft_s"] > SLO_MS / 1000
        with sync_client(routed.url) as client:
            deployment, reason = _ask(client)
        assert deployment == "openai-gpt-4o-mini"
        assert reason.startswith("spill_to_paid")
    finally:
        for thread in fillers:
            thread.join(timeout=60)
    # The queue drained: back to the owned GPU.
    with sync_client(routed.url) as client:
        assert _ask(client)[0] == "local"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        pytest.param("x-gateway-policy", "cheapest-please", id="unknown-policy"),
        pytest.param("x-gateway-slo-ttft-ms", "soon", id="slo-not-a-number"),
        pytest.param("x-gateway-slo-ttft-ms", "-5", id="slo-negative"),
        pytest.param("x-gateway-max-cost-usd", "nan", id="cost-nan"),
    ],
)
def test_a_bad_control_header_is_a_400_naming_the_header(
    routed: Service, header: str, value: str
) -> None:
    with sync_client(routed.url) as client, pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={header: value},
        )
    assert header in caught.value.message
    assert caught.value.status_code == 400


def test_a_max_cost_no_deployment_fits_is_refused_with_a_clear_400(routed: Service) -> None:
    with sync_client(routed.url) as client, pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="paid-only",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=1000,
            extra_headers={"x-gateway-max-cost-usd": "0.0000001"},
        )
    assert caught.value.code == "max_cost_exceeded"


def test_the_policy_header_overrides_the_alias_policy(routed: Service) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    explained = _explain(routed.url, body, {"x-gateway-policy": "ordered"})
    assert (explained["policy"], explained["reason"]) == ("ordered", "configured_order")
    with sync_client(routed.url) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=4,
            extra_headers={"x-gateway-policy": "cost"},
        )
    assert raw.headers["x-gateway-policy"] == "cost"


def test_route_decisions_are_counted_by_policy_deployment_and_reason(routed: Service) -> None:
    with urllib.request.urlopen(f"{routed.url}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'gateway_route_decisions_total{deployment="local",policy="spillover",reason=' in text


def test_weighted_policy_splits_traffic_between_its_deployments(routed: Service) -> None:
    served = []
    with sync_client(routed.url) as client:
        for _ in range(30):
            raw = client.chat.completions.with_raw_response.create(
                model="canary", messages=[{"role": "user", "content": "hi"}], max_tokens=2
            )
            served.append(raw.headers["x-gateway-deployment"])
    # A 50/50 split: both sides serve (all 30 on one side has probability 2**-29).
    assert set(served) == {"local", "openai-gpt-4o-mini"}
