"""Per-pod discovery end to end: a gateway whose group ``qwen-7b`` is what a real DNS server
on loopback answers for a name, three emulated vLLM pods on 127.0.0.2-4 (one port, as in a
headless Service), a paid fallback, and openai SDK traffic flowing while the test changes the
DNS answers. The emulators' own request logs prove who served what.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import openai
import pytest

from loadtests.fleet import (
    DUMMY_KEYS_ENV,
    OFFLINE_ENV,
    REPO_ROOT,
    Service,
    metric_sum,
    scrape,
    start_emulator,
    start_gateway,
)
from loadtests.processes import free_port, running_process
from tests.support.clients import sync_client
from tests.support.dns_server import DnsServer
from tests.support.services import (
    EMULATOR_TIME_SCALE,
    demo_deployment,
    logged_requests,
    write_config,
)
from tests.support.traffic import Traffic

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NAME = "qwen-workers.default.svc.cluster.local"
INTERVAL_S = 0.2
PODS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
LIFETIME_S = 120.0


@dataclass(frozen=True, slots=True)
class Fleet:
    gateway: Service
    dns: DnsServer
    port: int
    """The pods' port (one per group, as in a headless Service)."""
    logs: dict[str, Path]
    """Request log per pod address, and of the paid fallback under ``paid``."""

    def served(self, who: str) -> int:
        """Requests the pod (or ``paid``) has answered so far, from its own log."""
        return len(logged_requests(self.logs[who]))

    def member(self, address: str) -> str:
        return f"qwen-7b@{address}:{self.port}"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with contextlib.ExitStack() as stack:
        dns = stack.enter_context(DnsServer().running())
        dns.set(NAME, PODS[0])
        port = free_port()
        logs = {address: tmp_path / f"pod-{address}.jsonl" for address in PODS}
        for address in PODS:
            start_pod(stack, address, port, logs[address], tmp_path)
        logs["paid"] = tmp_path / "paid.jsonl"
        paid = start_emulator(
            stack,
            "openai",
            "--request-log",
            str(logs["paid"]),
            time_scale=EMULATOR_TIME_SCALE,
            log_dir=tmp_path,
            max_lifetime_s=LIFETIME_S,
        )
        group = demo_deployment("qwen-7b-a")
        del group["base_url"]
        group |= {"name": "qwen-7b", "discovery": {"dns": NAME, "port": port}}
        group["discovery"]["interval_s"] = INTERVAL_S
        fallback = demo_deployment("openai-gpt-4o-mini")
        fallback["base_url"] = f"http://127.0.0.1:{paid.port}/v1"
        config = {
            "server": {"dns_resolver": dns.address, "scrape_interval_s": INTERVAL_S},
            "deployments": [group, fallback],
            "aliases": {
                "qwen": {
                    "deployments": ["qwen-7b", "openai-gpt-4o-mini"],
                    "policy": "spillover",
                    "slo_ttft_ms": 1000,
                }
            },
        }
        path = write_config(tmp_path / "discovery.yaml", config)
        gateway = start_gateway(stack, path, {}, log_dir=tmp_path, max_lifetime_s=LIFETIME_S)
        yield Fleet(gateway, dns, port, logs)


def start_pod(
    stack: contextlib.ExitStack, address: str, port: int, log: Path, log_dir: Path
) -> None:
    """An emulated vLLM worker bound to ``address``:``port``, logging its requests."""
    args = [sys.executable, "-m", "loadtests.emulate", "vllm", "--host", address]
    args += ["--port", str(port), "--time-scale", str(EMULATOR_TIME_SCALE)]
    args += ["--request-log", str(log)]
    stack.enter_context(
        running_process(
            args,
            f"http://{address}:{port}/health",
            env=OFFLINE_ENV,
            max_lifetime_s=LIFETIME_S,
            cwd=REPO_ROOT,
            log_path=log_dir / f"pod-{address}.log",
        )
    )


def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def explain(url: str) -> dict[str, Any]:
    body = json.dumps({"model": "qwen", "messages": [{"role": "user", "content": "hi"}]})
    request = urllib.request.Request(
        f"{url}/v1/route/explain",
        data=body.encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


def metric(fleet: Fleet, name: str, **labels: str) -> float:
    text = scrape(fleet.gateway.url)
    return metric_sum(text, name, lambda found: all(found.get(k) == v for k, v in labels.items()))


def resolution_errors_reach(fleet: Fleet, count: float) -> bool:
    return metric(fleet, "gateway_discovery_errors_total", group="qwen-7b") >= count


def test_pods_join_and_leave_with_dns_while_traffic_flows_without_a_failure(
    fleet: Fleet,
) -> None:
    first, second, third = PODS
    with Traffic(fleet.gateway.url, "qwen", clients=6).flowing() as traffic:
        assert eventually(lambda: fleet.served(first) >= 20)
        assert fleet.served(second) == fleet.served(third) == fleet.served("paid") == 0

        # A pod joins: it gets requests, and its /metrics is scraped (its queue is known).
        fleet.dns.set(NAME, first, second)
        assert eventually(lambda: fleet.served(second) >= 20)
        assert eventually(
            lambda: any(
                c["name"] == fleet.member(second) and c["waiting"] is not None
                for c in explain(fleet.gateway.url)["candidates"]
            )
        )

        # The DNS server fails (SERVFAIL, then silence): the members stay and keep serving.
        for failure in ("servfail", "drop"):
            errors = metric(fleet, "gateway_discovery_errors_total", group="qwen-7b")
            fleet.dns.fail(failure)
            served = fleet.served(first), fleet.served(second)
            assert eventually(partial(resolution_errors_reach, fleet, errors + 3))
            assert fleet.served(first) > served[0] and fleet.served(second) > served[1]
            assert metric(fleet, "gateway_discovery_members", group="qwen-7b") == 2
            fleet.dns.fail(None)

        # A pod leaves: no new requests reach it once the next answer is applied.
        fleet.dns.set(NAME, second, third)
        assert eventually(lambda: fleet.served(third) >= 20)
        time.sleep(3 * INTERVAL_S)  # what was sent before the change has finished
        gone = fleet.served(first)
        served_second = fleet.served(second)
        time.sleep(1.0)
        assert fleet.served(first) == gone
        assert fleet.served(second) > served_second

        # NXDOMAIN: the group is empty, the traffic spills to the paid deployment.
        fleet.dns.remove(NAME)
        assert eventually(lambda: fleet.served("paid") >= 20)
        time.sleep(3 * INTERVAL_S)
        pods = [fleet.served(address) for address in PODS]
        time.sleep(1.0)
        assert [fleet.served(address) for address in PODS] == pods
        assert metric(fleet, "gateway_discovery_members", group="qwen-7b") == 0

    assert traffic.failures == []
    assert set(traffic.served_by) == {
        fleet.member(first),
        fleet.member(second),
        fleet.member(third),
        "openai-gpt-4o-mini",
    }
    added = metric(fleet, "gateway_discovery_changes_total", group="qwen-7b", change="added")
    removed = metric(fleet, "gateway_discovery_changes_total", group="qwen-7b", change="removed")
    assert (added, removed) == (3, 3)
    # The members that left are forgotten: none of their series is exported any more.
    assert fleet.member(first) not in scrape(fleet.gateway.url)


def test_an_empty_group_with_no_other_deployment_is_unready_and_answers_503(
    tmp_path: Path,
) -> None:
    group = demo_deployment("qwen-7b-a")
    del group["base_url"]
    with contextlib.ExitStack() as stack:
        dns = stack.enter_context(DnsServer().running())
        group |= {"name": "qwen-7b", "discovery": {"dns": NAME, "interval_s": INTERVAL_S}}
        config = {
            "server": {"dns_resolver": dns.address},
            "deployments": [group],
            "aliases": {"pods": {"deployments": ["qwen-7b"]}},
        }
        path = write_config(tmp_path / "empty.yaml", config)
        port = free_port()
        args = [sys.executable, "-m", "gateway", "serve", "--config", str(path)]
        args += ["--host", "127.0.0.1", "--port", str(port)]
        url = f"http://127.0.0.1:{port}"
        stack.enter_context(
            running_process(
                args,
                f"{url}/healthz",
                env={**OFFLINE_ENV, **DUMMY_KEYS_ENV},
                max_lifetime_s=LIFETIME_S,
                cwd=REPO_ROOT,
                log_path=tmp_path / "gateway.log",
            )
        )
        with pytest.raises(urllib.error.HTTPError) as unready:
            urllib.request.urlopen(f"{url}/readyz", timeout=5)
        with sync_client(url) as client, pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(
                model="pods", messages=[{"role": "user", "content": "hi"}], max_tokens=4
            )
    assert unready.value.code == 503
    assert json.loads(unready.value.read()) == {"ready": False, "deployments": {}}
    assert info.value.status_code == 503
    assert "no_available_deployment" in str(info.value.body)
