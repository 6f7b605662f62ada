"""LedgerWriter: settles in arrival order, a batch per store call (a partial one lingers briefly
for more, unless it frees a parallel slot), and loses nothing to a failed or slow batch (only
what a full backlog drops, counted)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import REGISTRY

from gateway.accounting.ledger import LedgerWriter
from gateway.accounting.memory_store import MemoryStore
from gateway.accounting.model import PeriodIds, SpendRecord
from gateway.accounting.store import StoreUnavailable

NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()


def record(n: int, cost: int = 10) -> SpendRecord:
    return SpendRecord(
        f"r{n}", NOON + n, "key_ab12", "research", "chat", "gpt-4o", "openai", "paid",
        1, 1, cost, 0, cost, 100.0, None, 200,
    )  # fmt: skip


class Recording(MemoryStore):
    """A MemoryStore that notes each batch, can apply part of one and then fail, and can hold
    a batch in flight until released."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.fail_after: list[int] = []
        """Per call, in turn: apply this many of the batch, then raise StoreUnavailable."""
        self.hold: asyncio.Event | None = None
        self.holding = asyncio.Event()

    async def settle_many(self, records: Sequence[SpendRecord]) -> list[bool]:
        self.batches.append([record.request_id for record in records])
        if self.hold is not None:
            self.holding.set()
            await self.hold.wait()
        if self.fail_after:
            await super().settle_many(records[: self.fail_after.pop(0)])
            raise StoreUnavailable("redis: ConnectionError: down")
        return await super().settle_many(records)


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(f"{name}_total") or 0.0


async def settled_within(writer: LedgerWriter, seconds: float) -> bool:
    """Whether the queue empties within ``seconds`` (without ``flush``, which skips lingering)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while len(writer):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def test_records_are_settled_in_arrival_order_in_batches_of_up_to_64() -> None:
    async def scenario() -> Recording:
        store = Recording()
        writer = LedgerWriter(store, capacity=1_000, retry_s=0.01)
        for n in range(150):
            writer.submit(record(n))
        writer.start()
        assert await writer.flush(5.0)
        assert len(writer) == 0
        await writer.aclose()
        return store

    store = asyncio.run(scenario())
    assert [len(batch) for batch in store.batches] == [64, 64, 22]
    assert [rid for batch in store.batches for rid in batch] == [f"r{n}" for n in range(150)]


def test_a_batch_that_failed_part_way_is_sent_again_whole_and_nothing_counts_twice() -> None:
    duplicates_before = counter("gateway_ledger_duplicates")

    async def scenario() -> Recording:
        store = Recording()
        store.fail_after = [10, 0]  # 10 applied before the outage, then a clean failure
        writer = LedgerWriter(store, capacity=1_000, retry_s=0.01)
        for n in range(40):
            writer.submit(record(n))
        writer.start()
        assert await writer.flush(5.0)
        await writer.aclose()
        return store

    store = asyncio.run(scenario())
    assert store.batches == [[f"r{n}" for n in range(40)]] * 3
    assert counter("gateway_ledger_duplicates") - duplicates_before == 10
    spent = asyncio.run(store.spent("research", None, PeriodIds.at(NOON)))
    assert spent == {"day": 400, "month": 400, "total": 400}


def test_records_dropped_while_a_batch_is_in_flight_take_no_unsettled_record_with_them() -> None:
    dropped_before = counter("gateway_ledger_dropped")

    async def scenario() -> Recording:
        store = Recording()
        store.hold = asyncio.Event()
        writer = LedgerWriter(store, capacity=4, retry_s=0.01)
        for n in range(3):
            writer.submit(record(n))
        writer.start()
        await store.holding.wait()  # r0, r1, r2 in flight
        for n in range(3, 6):
            writer.submit(record(n))  # the full backlog drops r0 and r1
        store.hold.set()
        assert await writer.flush(5.0)
        await writer.aclose()
        return store

    store = asyncio.run(scenario())
    assert store.batches == [["r0", "r1", "r2"], ["r3", "r4", "r5"]]
    assert counter("gateway_ledger_dropped") - dropped_before == 2


def test_records_arriving_while_a_partial_batch_lingers_share_its_round_trip() -> None:
    async def scenario() -> Recording:
        store = Recording()
        writer = LedgerWriter(store, capacity=1_000, retry_s=0.01, linger_s=0.2)
        writer.start()
        writer.submit(record(0))
        await asyncio.sleep(0.02)
        writer.submit(record(1))
        writer.submit(record(2))
        assert await settled_within(writer, 5.0)
        await writer.aclose()
        return store

    assert asyncio.run(scenario()).batches == [["r0", "r1", "r2"]]


def test_a_record_holding_a_parallel_slot_is_settled_without_lingering() -> None:
    async def scenario() -> Recording:
        store = Recording()
        writer = LedgerWriter(store, capacity=1_000, retry_s=0.01, linger_s=60.0)
        writer.start()
        writer.submit(record(0))
        await asyncio.sleep(0.02)
        assert store.batches == []  # lingering
        writer.submit(record(1), frees_slot=True)
        assert await settled_within(writer, 2.0)
        await writer.aclose()
        return store

    assert asyncio.run(scenario()).batches == [["r0", "r1"]]


def test_flush_and_close_do_not_wait_for_a_lingering_batch() -> None:
    async def scenario() -> tuple[bool, float, Recording]:
        store = Recording()
        writer = LedgerWriter(store, capacity=1_000, retry_s=0.01, linger_s=60.0)
        writer.start()
        writer.submit(record(0))
        started = time.monotonic()
        flushed = await writer.flush(5.0)
        took = time.monotonic() - started
        writer.submit(record(1))
        await writer.aclose(timeout_s=5.0)
        return flushed, took, store

    flushed, took, store = asyncio.run(scenario())
    assert flushed and took < 2.0
    assert store.batches == [["r0"], ["r1"]]
