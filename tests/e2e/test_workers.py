"""``serve --workers N``: several processes, one set of correct totals on /metrics."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from loadtests.fleet import DEMO_CONFIG, DemoFleet, metric_sum, scrape, start_gateway
from tests.support.clients import sync_client
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

REQUESTS = 40
ALIAS = "qwen2.5-7b-instruct"


def _ok(labels: Mapping[str, str]) -> bool:
    return labels.get("model") == ALIAS and labels.get("status") == "200"


def test_two_workers_export_the_exact_request_total_whichever_answers_the_scrape(
    demo_fleet: DemoFleet, redis_server: RedisServer, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        gateway = start_gateway(
            stack,
            DEMO_CONFIG,
            {**demo_fleet.env(), "REDIS_URL": redis_server.url},
            "--workers",
            "2",
            log_dir=tmp_path,
            max_lifetime_s=120.0,
        )
        served_by = set()
        for _ in range(REQUESTS):
            # A new connection each time, so the kernel spreads them over both workers.
            with sync_client(gateway.url) as client:
                raw = client.chat.completions.with_raw_response.create(
                    model=ALIAS, messages=[{"role": "user", "content": "hi"}], max_tokens=2
                )
            served_by.add(raw.headers["x-gateway-deployment"])
        # Each scrape lands on either worker; every one must report the sum of both.
        totals = {metric_sum(scrape(gateway.url), "gateway_requests_total", _ok) for _ in range(6)}
    assert totals == {REQUESTS}
    assert served_by <= {"qwen-7b-a", "qwen-7b-b"}


def test_several_workers_without_redis_refuse_to_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(DEMO_CONFIG), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "REDIS_URL": ""},
        check=False,
    )
    assert done.returncode == 2
    assert "--workers > 1 needs accounting.redis_url" in done.stderr
