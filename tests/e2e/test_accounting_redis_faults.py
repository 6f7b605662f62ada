"""Redis faults: a crash mid-load loses and duplicates nothing; a closed gateway says why.

- ``when_store_down: open``: Redis is SIGKILLed while 3 gateways serve a load, then started
  again. Clients see no 5xx (admissions pass unmetered while it is down, keys come from the
  gateways' caches); the records wait in each gateway's ledger backlog and are settled after
  the restart, once each (settling is idempotent by request id). Redis persists with an
  fsync per write (``RedisServer(durable=True)``: the AOF the Helm chart's Redis runs), so what it
  acknowledged before the crash is there after it.
- ``when_store_down: closed``: 503 with a message that names the accounting store.
- An admission whose reply comes too late (Redis applied it, the gateway had given up and
  admitted the request unmetered) must not leave its reservation behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.accounting import (
    MINI,
    MINI_41,
    QWEN,
    Clients,
    Result,
    Shot,
    admin_of,
    ledger_totals,
    report_totals,
    run_load,
    send,
    start_accounting_fleet,
    wait_until_settled,
)
from tests.support.redis_server import RedisServer

ROOMY_BUDGET = {"day": 1000}
"""A budget no test here reaches: callers without any limit skip admission altogether, and
these tests are about admissions meeting a Redis that is down or late."""

pytestmark = pytest.mark.e2e

REQUESTS = 1500
CLIENTS = 50
KILL_AFTER = 400
"""Requests finished before Redis is killed."""
DOWN_S = 2.0
RESTART_BEFORE_END = 300
"""Redis comes back after DOWN_S, or earlier if only this many requests are left to finish:
on a fast machine the load could otherwise end while Redis is still down."""
STORE_TIMEOUT_MS = 250  # generous for 2 loaded cores; a dead Redis refuses at once anyway


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A persistent ``redis-server`` (AOF, fsync always), stopped when the test ends."""
    server = RedisServer(tmp_path / "redis", durable=True)
    server.workdir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_redis_crash_mid_load_gives_no_5xx_and_every_request_one_ledger_record(
    durable_redis: RedisServer, tmp_path: Path
) -> None:
    aliases = (QWEN, MINI, QWEN, MINI_41)
    with contextlib.ExitStack() as stack:
        fleet = start_accounting_fleet(
            stack,
            tmp_path,
            durable_redis.url,
            accounting={
                "when_store_down": "open",
                "store_timeout_ms": STORE_TIMEOUT_MS,
                "store_retry_s": 0.5,
            },
        )
        with admin_of(fleet) as admin:
            # A budget the load never reaches: every admission goes to Redis and reserves.
            admin.create_team("ops", budget_usd=ROOMY_BUDGET)
            keys = [admin.create_key("ops", name=f"ops-{n}") for n in range(2)]
            shots = [
                Shot(
                    i % len(fleet.urls),
                    keys[i % 2].secret,
                    aliases[i % len(aliases)],
                    f"fault load {i}",
                    4 + i % 13,
                    stream=i % 3 == 0,
                )
                for i in range(REQUESTS)
            ]
            outage: dict[str, int] = {}

            async def load() -> list[Result]:
                finished: list[Result] = []
                enough, nearly_done = asyncio.Event(), asyncio.Event()

                def count(result: Result) -> None:
                    finished.append(result)
                    if len(finished) >= KILL_AFTER:
                        enough.set()
                    if len(finished) >= REQUESTS - RESTART_BEFORE_END:
                        nearly_done.set()

                async def crash_and_restart() -> None:
                    await enough.wait()
                    outage["killed_at"] = len(finished)
                    await asyncio.to_thread(durable_redis.kill)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(nearly_done.wait(), DOWN_S)
                    await asyncio.to_thread(durable_redis.start)
                    outage["restarted_at"] = len(finished)

                chaos = asyncio.create_task(crash_and_restart())
                try:
                    return await run_load(fleet.urls, shots, concurrency=CLIENTS, on_result=count)
                finally:
                    await chaos

            results = asyncio.run(load())
            settled = wait_until_settled(fleet, admin, REQUESTS)
            records = admin.export()
            reports = {g: report_totals(admin.spend(g)) for g in ("team", "key", "deployment")}
            team = admin.team("ops")
        logs = fleet.gateway_logs().splitlines()
        errors = sum(1 for line in logs if "store unavailable" in line)

    statuses = Counter(r.status for r in results)
    by_id = Counter(r["request_id"] for r in records)
    print(
        f"statuses {dict(statuses)}; Redis killed after {outage.get('killed_at')} requests, "
        f"back after {outage.get('restarted_at')}; settled {settled}; records {len(records)}; "
        f"'store unavailable' log lines {errors}"
    )
    assert outage["restarted_at"] < REQUESTS, "the outage must fall inside the load"
    assert statuses == {200: REQUESTS}, dict(statuses)
    # Exactly once: every request id in the ledger once, and nothing else.
    assert len(records) == REQUESTS and set(by_id.values()) == {1}
    assert set(by_id) == {r.request_id for r in results}
    for group_by, report in reports.items():
        assert report == ledger_totals(records, group_by), group_by
    assert team["spent_micros"]["total"] == ledger_totals(records, "team")["ops"]["cost_micros"]


def test_when_store_down_closed_answers_503_naming_the_accounting_store(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        fleet = start_accounting_fleet(
            stack,
            tmp_path,
            redis_server.url,
            gateways=1,
            accounting={"when_store_down": "closed", "store_retry_s": 0.5},
        )
        with admin_of(fleet) as admin:
            key = admin.create_key("strict", budget_usd=ROOMY_BUDGET)  # so there is one to check

        async def one(prompt: str) -> Result:
            clients = Clients(fleet.urls)
            try:
                return await send(clients, Shot(0, key.secret, MINI, prompt, 4))
            finally:
                await clients.aclose()

        before = asyncio.run(one("while redis is up"))  # also puts the key in the cache
        redis_server.kill()
        during = [asyncio.run(one(f"while redis is down {n}")) for n in range(3)]
        with httpx.Client(base_url=fleet.urls[0], timeout=10.0) as http:
            admin_reply = http.get(
                "/admin/teams", headers={"Authorization": f"Bearer {fleet.master_key}"}
            )

    assert before.status == 200
    for result in during:
        assert result.status == 503 and result.error_code == "accounting_unavailable", result
        assert "the accounting store is unavailable" in result.message, result.message
    assert admin_reply.status_code == 503, admin_reply.text
    assert "accounting store is unavailable" in admin_reply.json()["error"]["message"]


BUSY_LUA = """
local start = redis.call('TIME')
repeat
  local now = redis.call('TIME')
until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) >= tonumber(ARGV[1])
return 1
"""


def test_an_admission_redis_applies_after_the_gateway_gave_up_leaves_no_reservation(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Redis busy for 0.4 s (a slow script, as a long fork or a busy primary): the
    admission times out at 50 ms, the request is admitted unmetered (``open``) and served,
    and then Redis runs the admission script it had queued, reserving the worst case. Once
    the request is settled, the team's budget counter must equal what the ledger billed."""
    with contextlib.ExitStack() as stack:
        fleet = start_accounting_fleet(
            stack,
            tmp_path,
            redis_server.url,
            gateways=1,
            accounting={"when_store_down": "open", "store_timeout_ms": 50, "store_retry_s": 0.2},
        )
        with admin_of(fleet) as admin:
            key = admin.create_key("late", name="late", budget_usd=ROOMY_BUDGET)

            async def warm() -> Result:
                clients = Clients(fleet.urls)
                try:
                    return await send(clients, Shot(0, key.secret, MINI, "warm the key cache", 4))
                finally:
                    await clients.aclose()

            async def late_while_redis_is_busy() -> Result:
                clients = Clients(fleet.urls)
                clients.sdk(0, key.secret)  # built before Redis is made busy
                try:
                    with redis_server.client() as blocker:
                        busy = asyncio.create_task(
                            asyncio.to_thread(blocker.eval, BUSY_LUA, 0, "400000")
                        )
                        await asyncio.sleep(0.05)  # the script is running
                        late = await send(clients, Shot(0, key.secret, MINI, "a late one", 32))
                        await busy
                    return late
                finally:
                    await clients.aclose()

            results = [asyncio.run(warm())]
            # Settled: the gateway's Redis connections are idle, so the admission below goes
            # out at once on one of them (not stuck in a new connection's handshake).
            wait_until_settled(fleet, admin, 1, timeout_s=10.0)
            results.append(asyncio.run(late_while_redis_is_busy()))
            time.sleep(0.5)  # the store is probed again after store_retry_s
            wait_until_settled(fleet, admin, 2, timeout_s=15.0)
            billed = admin.spend("team", team="late")["total"]
            team = admin.team("late")

    assert [r.status for r in results] == [200, 200]
    assert billed["requests"] == 2 and billed["cost_micros"] > 0
    assert team["spent_micros"]["total"] == billed["cost_micros"], (
        f"budget counter {team['spent_micros']['total']} micros, ledger {billed['cost_micros']}"
    )
