"""Operator control across replicas: two gateway processes on one real redis-server, a paid
API emulator and emulated vLLM workers, openai SDK traffic through replica B while the admin
API of replica A disables, enables and drains deployments. The emulators' own request logs
prove who was sent what; B's admin API shows when B applied a change.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from gateway.admin_client import MASTER_KEY_ENV, AdminClient, AdminError
from gateway.cli import main
from loadtests.fleet import Service, metric_sum, scrape, start_emulator, start_gateway
from tests.support.clients import sync_client
from tests.support.redis_server import RedisServer
from tests.support.services import (
    EMULATOR_TIME_SCALE,
    demo_deployment,
    local_deployment,
    logged_requests,
    write_config,
)
from tests.support.traffic import Traffic

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MASTER_KEY = "control-test-master-key-0123456789"
PAID = "openai-gpt-4o-mini"
LIFETIME_S = 120.0
TOGGLES = 5


@dataclass(frozen=True, slots=True)
class Pair:
    a: Service
    b: Service
    redis: RedisServer
    logs: dict[str, Path]
    """Request log of each emulator: ``paid``, ``local``, ``slow``."""

    def served(self, who: str) -> int:
        return len(logged_requests(self.logs[who]))

    def serves(self, who: str, count: int) -> bool:
        return self.served(who) >= count

    def admin(self, replica: Service) -> AdminClient:
        return AdminClient(replica.url, MASTER_KEY, timeout_s=5.0)

    def row(self, replica: Service, name: str) -> dict[str, Any]:
        rows = self.admin(replica).call("GET", "/admin/deployments")["data"]
        found: dict[str, Any] = next(r for r in rows if r["name"] == name)
        return found

    def state(self, replica: Service, name: str) -> str:
        return str(self.row(replica, name)["state"])


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("control")
    with contextlib.ExitStack() as stack:
        redis = RedisServer(tmp, max_lifetime_s=LIFETIME_S)
        redis.start()
        stack.callback(redis.stop)
        logs = {who: tmp / f"{who}.jsonl" for who in ("paid", "local", "slow")}

        def emulator(kind: str, who: str, scale: float) -> Service:
            args = ("--request-log", str(logs[who]))
            return start_emulator(
                stack, kind, *args, time_scale=scale, log_dir=tmp, max_lifetime_s=LIFETIME_S
            )

        paid = emulator("openai", "paid", EMULATOR_TIME_SCALE)
        local = emulator("vllm", "local", EMULATOR_TIME_SCALE)
        slow = emulator("vllm", "slow", 1.0)  # real time: a 300-token stream takes seconds
        paid_dep = demo_deployment(PAID) | {"base_url": f"{paid.url}/v1"}
        config = {
            "accounting": {"auth": "off", "redis_url": redis.url, "master_key_env": "CTL_KEY"},
            "deployments": [
                paid_dep,
                local_deployment("qwen-local", local.port),
                local_deployment("qwen-slow", slow.port),
            ],
            "aliases": {
                "chat": {"deployments": [PAID, "qwen-local"]},
                "long": {"deployments": ["qwen-slow", "qwen-local"]},
            },
        }
        path = write_config(tmp / "control.yaml", config)
        env = {"CTL_KEY": MASTER_KEY}
        a = start_gateway(stack, path, env, log_dir=tmp, max_lifetime_s=LIFETIME_S)
        b = start_gateway(stack, path, env, log_dir=tmp, max_lifetime_s=LIFETIME_S)
        yield Pair(a, b, redis, logs)


def until(check: Callable[[], bool], timeout_s: float = 10.0) -> float:
    """Seconds until ``check()`` held (polled every 10 ms); fails after ``timeout_s``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout_s, "timed out"
        time.sleep(0.01)
    return time.monotonic() - started


def explain(replica: Service, model: str) -> dict[str, Any]:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    request = urllib.request.Request(
        f"{replica.url}/v1/route/explain",
        data=body.encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


def gauge(replica: Service, deployment: str, state: str) -> float:
    return metric_sum(
        scrape(replica.url),
        "gateway_deployment_state",
        lambda labels: labels == {"deployment": deployment, "state": state},
    )


def test_disabling_on_one_replica_stops_the_other_within_a_second(pair: Pair) -> None:
    delays: list[float] = []
    with Traffic(pair.b.url, "chat").flowing() as traffic:
        until(lambda: pair.served("paid") >= 20)
        for _ in range(TOGGLES):
            pair.admin(pair.a).call("POST", f"/admin/deployments/{PAID}/disable")
            delays.append(until(lambda: pair.state(pair.b, PAID) == "disabled"))
            time.sleep(1.0)  # what B sent before it applied the change has finished
            paid, local = pair.served("paid"), pair.served("local")
            time.sleep(0.5)
            assert pair.served("paid") == paid
            assert pair.served("local") > local
            assert gauge(pair.b, PAID, "disabled") == 1 and gauge(pair.b, PAID, "active") == 0
            explained = explain(pair.b, "chat")
            assert [c["name"] for c in explained["candidates"]] == ["qwen-local"]
            assert explained["held"] == [{"name": PAID, "state": "disabled"}]
            pair.admin(pair.a).call("POST", f"/admin/deployments/{PAID}/enable")
            delays.append(until(lambda: pair.state(pair.b, PAID) == "active"))
            until(partial(pair.serves, "paid", pair.served("paid") + 10), timeout_s=1.0)
    print(
        f"\npropagation A -> B over {len(delays)} changes: "
        f"p50 {statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms, "
        f"{traffic.answered} requests"
    )
    assert max(delays) < 1.0
    assert traffic.failures == []
    assert metric_sum(scrape(pair.a.url), "gateway_control_changes_total") == 2 * TOGGLES


def test_a_drain_lets_long_streams_finish_then_disables(pair: Pair) -> None:
    results: list[str] = []

    def stream() -> None:
        with sync_client(pair.b.url) as client:
            messages: Any = [{"role": "user", "content": "Tell a long story."}]
            with client.chat.completions.with_streaming_response.create(
                model="long",
                messages=messages,
                max_tokens=300,
                stream=True,
                extra_body={"ignore_eos": True},  # vLLM's: generate all 300 tokens
            ) as response:
                lines = [line for line in response.iter_lines() if line]
                served_by = response.headers["x-gateway-deployment"]
                results.append(f"{served_by} {lines[-1]}")

    slow = pair.served("slow")
    streams = [threading.Thread(target=stream) for _ in range(4)]
    for thread in streams:
        thread.start()
    until(lambda: pair.row(pair.b, "qwen-slow")["inflight"] == 4)
    pair.admin(pair.a).call("POST", "/admin/deployments/qwen-slow/drain")
    until(lambda: pair.state(pair.b, "qwen-slow") == "draining", timeout_s=1.0)
    with sync_client(pair.b.url) as client:  # a new request goes to the other deployment
        raw = client.chat.completions.with_raw_response.create(
            model="long", messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
    assert raw.headers["x-gateway-deployment"] == "qwen-local"
    for thread in streams:
        thread.join(timeout=30)
    assert results == ["qwen-slow data: [DONE]"] * 4
    assert pair.served("slow") == slow + 4
    until(lambda: pair.state(pair.b, "qwen-slow") == "disabled", timeout_s=1.0)
    assert pair.state(pair.a, "qwen-slow") == "disabled"
    pair.admin(pair.a).call("POST", "/admin/deployments/qwen-slow/enable")
    until(lambda: pair.state(pair.b, "qwen-slow") == "active", timeout_s=1.0)


def test_a_redis_outage_keeps_the_states_and_the_states_are_read_again_after_it(
    pair: Pair,
) -> None:
    with Traffic(pair.b.url, "chat").flowing() as traffic:
        pair.admin(pair.a).call("POST", f"/admin/deployments/{PAID}/disable")
        until(lambda: pair.state(pair.b, PAID) == "disabled", timeout_s=1.0)
        pair.redis.kill()
        with pytest.raises(AdminError) as refused:
            pair.admin(pair.a).call("POST", f"/admin/deployments/{PAID}/enable")
        answered = traffic.answered
        time.sleep(1.5)
        assert traffic.answered > answered  # serving goes on, without Redis
        assert pair.state(pair.b, PAID) == "disabled"  # the last known state holds
        paid = pair.served("paid")
        # Restarted without its data (no persistence here): the replicas subscribe again and
        # read the now empty hash, so the paid deployment is active again everywhere.
        pair.redis.start()
        until(lambda: pair.state(pair.b, PAID) == "active", timeout_s=3.0)
        until(lambda: pair.state(pair.a, PAID) == "active", timeout_s=1.0)
        until(lambda: pair.served("paid") > paid, timeout_s=2.0)
        # ...and they are subscribed: a change through A reaches B within a second.
        pair.admin(pair.a).call("POST", f"/admin/deployments/{PAID}/disable")
        until(lambda: pair.state(pair.b, PAID) == "disabled", timeout_s=1.0)
        pair.admin(pair.a).call("POST", f"/admin/deployments/{PAID}/enable")
    assert refused.value.status == 503
    assert "control store is unavailable" in refused.value.message
    assert traffic.failures == []
    assert metric_sum(scrape(pair.b.url), "gateway_control_store_errors_total") >= 1


def test_the_cli_lists_and_changes_deployments_on_a_replica(
    pair: Pair, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, MASTER_KEY)
    assert main(["deployments", "drain", "qwen-local", "--url", pair.a.url]) == 0
    assert capsys.readouterr().out == "qwen-local: disabled\n"  # idle: disabled at once
    assert main(["deployments", "list", "--url", pair.b.url]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == [
        "name", "kind", "state", "wanted", "provider", "inflight", "circuit"
    ]  # fmt: skip
    assert listing[3].split()[:4] == ["qwen-local", "deployment", "disabled", "draining"]
    assert main(["deployments", "enable", "qwen-local", "--url", pair.a.url]) == 0
    assert main(["deployments", "enable", "gpt-9", "--url", pair.a.url]) == 1
    assert "no deployment, discovery group or member called 'gpt-9'" in capsys.readouterr().err
