"""Config reload under load: openai SDK clients (streamed and not) keep calling while the file
is rewritten (an alias added, a deployment changed) and reloaded: by SIGHUP in a single
process, by polling in every worker of ``serve --workers 2``. No request fails, the new
alias answers, a bad file is rejected and counted while the old config keeps serving.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from loadtests.fleet import Service, metric_sum, scrape, start_emulator, start_gateway
from tests.support.clients import sync_client
from tests.support.redis_server import RedisServer
from tests.support.services import (
    EMULATOR_TIME_SCALE,
    demo_deployment,
    local_deployment,
    write_config,
)
from tests.support.traffic import Traffic

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAID = "openai-gpt-4o-mini"
LIFETIME_S = 120.0
RELOADS = 5


@dataclass(frozen=True, slots=True)
class Upstreams:
    paid: Service
    local: Service

    def config(self, poll_s: float, **accounting: str) -> dict[str, Any]:
        local = local_deployment("qwen-local", self.local.port) | {"max_concurrency": 64}
        return {
            "server": {"config_poll_s": poll_s},
            "accounting": {"auth": "off", **accounting},
            "deployments": [local, demo_deployment(PAID) | {"base_url": f"{self.paid.url}/v1"}],
            "aliases": {"chat": {"deployments": ["qwen-local", PAID]}},
        }


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    tmp = tmp_path_factory.mktemp("reload-upstreams")
    with contextlib.ExitStack() as stack:
        scale = EMULATOR_TIME_SCALE
        paid = start_emulator(stack, "openai", time_scale=scale, log_dir=tmp)
        local = start_emulator(stack, "vllm", time_scale=scale, log_dir=tmp)
        yield Upstreams(paid, local)


def changed(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with an alias added and the local deployment changed."""
    new = copy.deepcopy(config)
    new["aliases"]["fresh"] = {"deployments": [PAID]}
    new["deployments"][0] |= {"max_concurrency": 32, "timeouts": {"connect_s": 1, "read_s": 30}}
    return new


def reloads(gateway: Service, result: str) -> float:
    text = scrape(gateway.url)
    return metric_sum(
        text, "gateway_config_reloads_total", lambda labels: labels == {"result": result}
    )


def until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def answers(gateway: Service, model: str, n: int = 1) -> bool:
    with sync_client(gateway.url) as client:
        for _ in range(n):
            reply = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4
            )
            assert reply.choices[0].message.content
    return True


def test_sighup_reloads_a_single_process_under_load_without_a_failed_request(
    upstreams: Upstreams, tmp_path: Path
) -> None:
    config = upstreams.config(poll_s=0)  # SIGHUP only
    path = write_config(tmp_path / "gateway.yaml", config)
    with contextlib.ExitStack() as stack:
        gateway = start_gateway(stack, path, {}, log_dir=tmp_path, max_lifetime_s=LIFETIME_S)
        with Traffic(gateway.url, "chat", clients=6, max_tokens=64).flowing() as traffic:
            for i in range(RELOADS):  # the alias comes and goes, the deployment changes
                until(partial(traffic.reached, traffic.answered + 50))
                write_config(path, changed(config) if i % 2 == 0 else config)
                os.kill(gateway.process.pid, signal.SIGHUP)
                until(lambda: reloads(gateway, "applied") == i + 1)  # noqa: B023
            assert answers(gateway, "fresh", 5)
            path.write_text("aliases: [this is not: a mapping\n", encoding="utf-8")
            os.kill(gateway.process.pid, signal.SIGHUP)
            until(lambda: reloads(gateway, "rejected") == 1)
            until(partial(traffic.reached, traffic.answered + 50))
            assert answers(gateway, "fresh")  # the last good config keeps serving
        assert reloads(gateway, "applied") == RELOADS
        log = gateway.process.log_text()
    print(
        f"\nSIGHUP reloads under load: {traffic.answered} requests, {len(traffic.failures)} failed"
    )
    assert traffic.failures == []
    assert "config reload of" in log and "not valid YAML" in log


def test_every_worker_reloads_a_changed_file_under_load(
    upstreams: Upstreams, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path, max_lifetime_s=LIFETIME_S)
    redis.start()
    config = upstreams.config(poll_s=0.2, redis_url=redis.url)
    path = write_config(tmp_path / "gateway.yaml", config)
    try:
        with contextlib.ExitStack() as stack:
            gateway = start_gateway(
                stack, path, {}, "--workers", "2", log_dir=tmp_path, max_lifetime_s=LIFETIME_S
            )
            with Traffic(gateway.url, "chat", clients=6, max_tokens=64).flowing() as traffic:
                until(lambda: traffic.answered >= 50)
                write_config(path, changed(config))
                until(lambda: reloads(gateway, "applied") == 2)  # one per worker
                assert answers(gateway, "fresh", 20)
                bad = changed(config)
                bad["accounting"]["redis_url"] = "redis://127.0.0.1:1/0"
                write_config(path, bad)
                until(lambda: reloads(gateway, "rejected") == 2)
                until(partial(traffic.reached, traffic.answered + 50))
            log = gateway.process.log_text()
    finally:
        redis.stop()
    print(
        f"\npolled reloads, 2 workers: {traffic.answered} requests, {len(traffic.failures)} failed"
    )
    assert traffic.failures == []
    assert "these changes need a restart: accounting.redis_url" in log
