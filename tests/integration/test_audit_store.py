"""The privacy audit log in both stores (the embedded one and a real redis-server): newest
first, filtered by team and time, capped; and the writer that feeds it off the request path."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from gateway.accounting.audit import AuditWriter
from gateway.accounting.memory_store import MemoryStore
from gateway.accounting.model import AuditRecord
from gateway.accounting.redis_store import RedisStore
from gateway.accounting.store import Store
from tests.integration.test_store_contract import StoreFactory, run
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration

NOW = 1_764_504_000.0


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """A store with an audit cap of 50 records."""
    if request.param == "memory":
        yield lambda: MemoryStore(audit_max_len=50)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    yield lambda: RedisStore(server.url, timeout_s=2.0, audit_max_len=50)


def record(n: int, team: str = "research", ts: float = NOW) -> AuditRecord:
    return AuditRecord(
        ts=ts + n,
        request_id=f"req-{n}",
        key_id="key_1",
        team_id=team,
        alias="chat",
        data_class="private",
        sources=("key", "detector:iban"),
        outcome="served",
        deployment="qwen-7b-a",
        reason="local_under_slo",
        status=200,
        waited_ms=12.5,
    )


def test_records_come_back_newest_first_and_equal_to_what_was_written(
    make_store: StoreFactory,
) -> None:
    written = [record(n, "research" if n % 2 else "ops") for n in range(6)]

    async def scenario(store: Store) -> tuple[list[AuditRecord], ...]:
        await store.append_audit(written)
        return (
            await store.audit(0.0, 100),
            await store.audit(0.0, 2, "research"),
            await store.audit(NOW + 4, 100),
        )

    every, research, recent = run(make_store, scenario)

    assert every == written[::-1]
    assert research == [written[5], written[3]]
    assert recent == [written[5], written[4]]


def test_the_audit_log_keeps_about_its_cap(make_store: StoreFactory) -> None:
    async def scenario(store: Store) -> list[AuditRecord]:
        for first in range(0, 300, 50):
            await store.append_audit([record(n) for n in range(first, first + 50)])
        return await store.audit(0.0, 1000)

    kept = run(make_store, scenario)

    assert 50 <= len(kept) < 300  # Redis trims with MAXLEN ~ (whole nodes): about the cap
    assert kept[0].request_id == "req-299"


def test_the_writer_delivers_what_was_submitted_and_drains_on_close() -> None:
    store = MemoryStore()

    async def scenario() -> list[AuditRecord]:
        writer = AuditWriter(store, capacity=10, retry_s=0.01)
        writer.start()
        for n in range(3):
            writer.submit(record(n))
        await writer.aclose()
        return await store.audit(0.0, 10)

    assert [r.request_id for r in asyncio.run(scenario())] == ["req-2", "req-1", "req-0"]
