"""Privacy pinning end to end: real emulators, a real redis-server, the openai SDK.

One local vLLM worker (real-time speed, ``max_concurrency: 1``, so one long request fills it)
and a paid OpenAI emulator that logs every request it gets (``--request-log``, by the
gateway's request id): that log is the proof that private data never reached the paid API.
Aliases: ``chat`` [local, paid] (ordered: local while it has room), ``chat-short`` (the same
with a 600 ms total SLO, which caps the queue), ``paid-only`` [paid], ``internal-chat``
(the alias requires ``internal``). The detector is on (IBAN and the rest). The last test
kills the local worker.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from loadtests.fleet import Service, start_emulator, start_gateway
from tests.support.clients import sync_client
from tests.support.redis_server import RedisServer
from tests.support.services import (
    EMULATOR_TIME_SCALE,
    local_deployment,
    logged_requests,
    wait_for_metric,
    write_config,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MASTER_KEY = "sk-master-privacy-test"
IBAN = "GB82WEST12345698765432"
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hi."}]
PRIVATE = {"x-gateway-data-class": "private"}


@dataclass(frozen=True, slots=True)
class PrivacyFleet:
    gateway: Service
    local: Service
    paid_log: Path
    redis: RedisServer


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivacyFleet]:
    logs = tmp_path_factory.mktemp("privacy")
    with contextlib.ExitStack() as stack:
        redis = RedisServer(logs)
        redis.start()
        stack.callback(redis.stop)
        local = start_emulator(stack, "vllm", time_scale=1.0, log_dir=logs)
        paid_log = logs / "paid.jsonl"
        paid = start_emulator(
            stack,
            "openai",
            "--request-log",
            str(paid_log),
            time_scale=EMULATOR_TIME_SCALE,
            log_dir=logs,
        )
        worker = {**local_deployment("local", local.port), "max_concurrency": 1}
        config = {
            "accounting": {"auth": "off", "redis_url": redis.url},
            "privacy": {"queue_timeout_s": 8, "detector": {"enabled": True}},
            "deployments": [
                worker,
                {
                    "name": "paid",
                    "base_url": f"http://127.0.0.1:{paid.port}/v1",
                    "model": "gpt-4o-mini",
                    "api_key_env": "OPENAI_API_KEY",
                },
            ],
            "aliases": {
                "chat": {"deployments": ["local", "paid"]},
                "chat-short": {"deployments": ["local", "paid"], "slo_total_ms": 600},
                "paid-only": {"deployments": ["paid"]},
                "internal-chat": {"deployments": ["local", "paid"], "data_class": "internal"},
            },
        }
        path = write_config(logs / "privacy.yaml", config)
        env = {"TOKEN_GATEWAY_MASTER_KEY": MASTER_KEY}
        gateway = start_gateway(stack, path, env, log_dir=logs)
        yield PrivacyFleet(gateway, local, paid_log, redis)


@pytest.fixture
def client(fleet: PrivacyFleet) -> Iterator[openai.OpenAI]:
    with sync_client(fleet.gateway.url) as opened:
        yield opened


def _ask(
    client: openai.OpenAI, alias: str, headers: dict[str, str] | None = None, **extra: Any
) -> tuple[str, str]:
    """(serving deployment, request id) of one short chat completion."""
    messages = extra.pop("messages", HELLO)
    raw = client.chat.completions.with_raw_response.create(
        model=alias, messages=messages, max_tokens=4, extra_headers=headers, **extra
    )
    assert raw.parse().choices[0].message.content
    return raw.headers["x-gateway-deployment"], raw.headers["x-request-id"]


@contextlib.contextmanager
def _local_busy(fleet: PrivacyFleet, client: openai.OpenAI, tokens: int = 300) -> Iterator[None]:
    """Fill the local worker's one slot with a long public request (300 tokens: ~2 s)."""

    def occupy() -> None:
        client.chat.completions.create(
            model="chat",
            messages=HELLO,
            max_tokens=tokens,
            extra_body={"ignore_eos": True},
        )

    blocker = threading.Thread(target=occupy)
    blocker.start()
    busy = wait_for_metric(
        fleet.gateway.url,
        "gateway_upstream_inflight",
        lambda value: value >= 1,
        where=lambda labels: labels.get("deployment") == "local",
    )
    assert busy == 1
    try:
        yield
    finally:
        blocker.join(timeout=30)


def _paid_request_ids(fleet: PrivacyFleet) -> set[str]:
    time.sleep(0.2)  # lines are written as each request ends
    return {line["request_id"] for line in logged_requests(fleet.paid_log)}


def _get(fleet: PrivacyFleet, path: str) -> bytes:
    request = urllib.request.Request(
        f"{fleet.gateway.url}{path}", headers={"authorization": f"Bearer {MASTER_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        body: bytes = reply.read()
        return body


def test_while_local_is_full_public_spills_and_private_waits_for_local(
    fleet: PrivacyFleet, client: openai.OpenAI
) -> None:
    with _local_busy(fleet, client):
        public = _ask(client, "chat")
        started = time.monotonic()
        private = _ask(client, "chat", PRIVATE)
        waited = time.monotonic() - started
        iban_text: list[ChatCompletionMessageParam] = [
            {"role": "user", "content": f"Is {IBAN} a valid IBAN?"}
        ]
        detected = _ask(client, "chat", messages=iban_text)

    assert public[0] == "paid"
    assert private[0] == "local"
    assert detected[0] == "local"
    assert waited > 0.3  # it queued for the local slot instead of spilling
    paid_ids = _paid_request_ids(fleet)
    assert public[1] in paid_ids
    assert private[1] not in paid_ids
    assert detected[1] not in paid_ids


def test_private_request_times_out_with_503_naming_the_class_and_the_reason(
    fleet: PrivacyFleet, client: openai.OpenAI
) -> None:
    with _local_busy(fleet, client, 150), pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="chat-short", messages=HELLO, max_tokens=4, extra_headers=PRIVATE
        )

    error = caught.value
    assert error.status_code == 503
    assert isinstance(error.body, dict)
    assert error.body["code"] == "no_allowed_deployment"
    assert (
        "pinned to private: 1 of 2 allowed; none can serve: local at max concurrency 1"
        in (error.body["message"])
    )


def test_alias_with_no_allowed_deployment_refuses_at_once(client: openai.OpenAI) -> None:
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="paid-only", messages=HELLO, max_tokens=4, extra_headers=PRIVATE
        )

    assert time.monotonic() - started < 1.0
    assert isinstance(caught.value.body, dict)
    assert "pinned to private: 0 of 1 allowed" in caught.value.body["message"]


@pytest.mark.parametrize(
    ("alias", "value", "message"),
    [
        ("chat", "secret", "must be one of public, internal, private, got 'secret'"),
        ("internal-chat", "public", "'public' is looser than the 'internal' this request"),
    ],
)
def test_bad_or_loosening_data_class_header_is_a_400_naming_it(
    client: openai.OpenAI, alias: str, value: str, message: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=alias,
            messages=HELLO,
            max_tokens=4,
            extra_headers={"x-gateway-data-class": value},
        )

    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == "x-gateway-data-class"
    assert message in caught.value.body["message"]


def test_explain_and_reason_header_show_the_pinning(
    fleet: PrivacyFleet, client: openai.OpenAI
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="internal-chat", messages=HELLO, max_tokens=4
    )
    request = urllib.request.Request(
        f"{fleet.gateway.url}/v1/route/explain",
        data=json.dumps({"model": "chat", "messages": HELLO}).encode(),
        headers={"content-type": "application/json", **PRIVATE},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        explained = json.loads(reply.read())

    assert raw.headers["x-gateway-data-class"] == "internal"
    assert raw.headers["x-gateway-route-reason"].startswith(
        "only_candidate; pinned to internal: 1 of 2 allowed"
    )
    assert explained["features"]["data_class"] == "private"
    assert explained["data_class_sources"] == ["header"]
    assert explained["plan"] == ["local"]
    assert {c["name"]: c["data_classes"] for c in explained["candidates"]} == {
        "local": ["public", "internal", "private"],
        "paid": ["public"],
    }


def test_audit_log_records_pinned_and_refused_requests_without_prompt_text(
    fleet: PrivacyFleet,
) -> None:
    time.sleep(0.3)  # the audit writer runs after the answers
    records = json.loads(_get(fleet, "/admin/audit?limit=1000"))["data"]
    outcomes = {(r["data_class"], r["outcome"], r["deployment"]) for r in records}
    sources = {tuple(r["sources"]) for r in records}
    redis = fleet.redis.client()
    stream = list(redis.xrange("gw:audit") or [])
    metrics = _get(fleet, "/metrics").decode()

    assert ("private", "served", "local") in outcomes
    assert ("private", "refused", "none") in outcomes
    assert ("default", "detector:iban") in sources
    assert len(stream) == len(records)
    everything = json.dumps(records) + repr(stream) + metrics
    for key in redis.scan_iter("*"):
        if redis.type(key) == b"stream":
            everything += repr(redis.xrange(key))
    assert IBAN not in everything
    assert 'gateway_privacy_upgrades_total{detector="iban"} 1.0' in metrics
    assert 'gateway_privacy_decisions_total{reason="refused"}' in metrics
    assert 'gateway_privacy_decisions_total{reason="queued"}' in metrics


def test_with_the_local_worker_killed_private_is_refused_and_public_spills(
    fleet: PrivacyFleet, client: openai.OpenAI
) -> None:
    fleet.local.process.proc.kill()
    fleet.local.process.proc.wait(timeout=5)
    outcomes = []
    for _ in range(4):  # the circuit opens after a few connect errors
        try:
            outcomes.append(_ask(client, "chat-short", PRIVATE)[0])
        except openai.APIStatusError as exc:
            outcomes.append(str(exc.status_code))
    public = _ask(client, "chat")

    assert set(outcomes) <= {"503"}
    assert public[0] == "paid"
    paid_ids = _paid_request_ids(fleet)
    assert public[1] in paid_ids
