"""Specialist routing end to end: three emulated vLLM workers (a general Qwen, a Qwen coder
and a Qwen math model, each serving only its own model name) behind the alias ``auto``; the
openai SDK asks code, math and chat questions, and each worker's request log shows it got
exactly its topic's requests, the reason header saying which. Explain shows the rules. The
alias ``dead-coder`` has a code specialist that refuses connections: once its circuit opens,
code requests go to the general worker and the header says the specialist was unavailable."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from gateway.stats.circuit import CircuitSettings
from loadtests.fleet import Service, start_emulator, start_gateway
from tests.support.clients import sync_client
from tests.support.fleets import refusing_port
from tests.support.services import (
    EMULATOR_TIME_SCALE,
    local_deployment,
    logged_requests,
    write_config,
)

pytestmark = pytest.mark.e2e

MODELS = {
    "general": "Qwen/Qwen2.5-7B-Instruct",
    "coder": "Qwen/Qwen2.5-Coder-7B-Instruct",
    "math": "Qwen/Qwen2.5-Math-7B-Instruct",
}
FENCE = "```"
PROMPTS = {
    "coder": [
        f"Why does this print 3 three times?\n{FENCE}js\nfor (var i = 0; i < 3; i++) "
        f"{{ setTimeout(() => console.log(i)) }}\n{FENCE}",
        "Write a Python function that merges two sorted lists.",
    ],
    "math": [
        "A train travels 60 miles per hour for 3 hours. How many miles does it travel?",
        "Solve for x: $x^2 - 5x + 6 = 0$.",
    ],
    "general": ["Suggest three names for a bakery.", "Who painted the Sistine Chapel ceiling?"],
}


@dataclass(frozen=True, slots=True)
class Fleet:
    gateway: Service
    logs: dict[str, Path]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    logs = tmp_path_factory.mktemp("specialists")
    with contextlib.ExitStack() as stack:
        deployments, request_logs = [], {}
        for name, model in MODELS.items():
            request_logs[name] = logs / f"{name}-requests.jsonl"
            worker = start_emulator(
                stack,
                "vllm",
                "--model",
                model,
                "--request-log",
                str(request_logs[name]),
                time_scale=EMULATOR_TIME_SCALE,
                log_dir=logs,
            )
            deployments.append({**local_deployment(name, worker.port), "model": model})
        deployments.append(local_deployment("refusing", refusing_port(stack)))
        config = {
            "deployments": deployments,
            "aliases": {
                "auto": {
                    "deployments": ["general"],
                    "specialists": {
                        "code": {"deployments": ["coder"]},
                        "math": {"deployments": ["math"]},
                    },
                },
                "dead-coder": {
                    "deployments": ["general"],
                    "specialists": {"code": {"deployments": ["refusing"]}},
                },
            },
        }
        path = write_config(logs / "specialists.yaml", config)
        yield Fleet(start_gateway(stack, path, {}, log_dir=logs), request_logs)


def test_each_topic_lands_on_its_worker_and_the_reason_header_says_so(fleet: Fleet) -> None:
    topics = {"coder": "code", "math": "math", "general": "general"}
    ids: dict[str, set[str]] = {name: set() for name in PROMPTS}
    with sync_client(fleet.gateway.url) as client:
        for name, prompts in PROMPTS.items():
            for prompt in prompts:
                raw = client.chat.completions.with_raw_response.create(
                    model="auto", messages=[{"role": "user", "content": prompt}], max_tokens=4
                )
                assert raw.headers["x-gateway-deployment"] == name
                reason = raw.headers["x-gateway-route-reason"]
                assert reason.startswith(f"only_candidate; specialist={topics[name]}; "), reason
                assert raw.parse().model == MODELS[name]
                ids[name].add(raw.headers["x-request-id"])
    for name, path in fleet.logs.items():
        lines = logged_requests(path)
        assert {line["model"] for line in lines} == {MODELS[name]}
        assert {str(line["request_id"]) for line in lines} == ids[name]


def test_explain_shows_the_topic_scores_and_rules_fired(fleet: Fleet) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": PROMPTS["coder"][0]}]}
    request = urllib.request.Request(
        f"{fleet.gateway.url}/v1/route/explain",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        explained = json.loads(response.read())
    special = explained["specialist"]
    assert (special["topic"], special["routed"], special["fallback"]) == ("code", "code", False)
    assert special["fired"][0] == "code_fence"
    assert special["scores"]["code"] > special["scores"]["math"]
    assert explained["plan"] == ["coder"]


def test_code_falls_back_to_general_once_the_dead_specialists_circuit_opens(
    fleet: Fleet,
) -> None:
    failures, reason = 0, ""
    with sync_client(fleet.gateway.url) as client:
        for _ in range(CircuitSettings().failures_to_open + 1):
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model="dead-coder",
                    messages=[{"role": "user", "content": PROMPTS["coder"][0]}],
                    max_tokens=4,
                )
            except openai.APIStatusError as err:
                assert err.status_code == 503
                failures += 1
                continue
            assert raw.headers["x-gateway-deployment"] == "general"
            reason = raw.headers["x-gateway-route-reason"]
            break
    assert failures == CircuitSettings().failures_to_open
    assert "specialist=general (code unavailable); " in reason
