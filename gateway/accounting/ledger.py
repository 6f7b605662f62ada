"""Settling spend after the answer: a bounded queue, one writer task, a backlog that survives
a store outage.

Nothing on the request path waits for the store here: ``submit`` appends and returns. The
writer settles records in arrival order, up to 64 per store round trip (``settle_many``),
letting a partial batch gather for ``linger_s`` (10 ms) unless a record in it frees a parallel
slot; when the store is down the records stay queued (the ``gateway_ledger_backlog`` gauge
shows how many) and are retried every ``retry_s`` in the same order, so no record is lost and
none is counted twice (settling is idempotent by request id: a batch that failed part way is
sent again whole).
Past ``capacity`` the oldest record is dropped, logged and counted - the one loss allowed, to
keep a long outage from exhausting memory. ``aclose`` drains what is left, bounded in time.
Imports: stdlib, ``gateway.metrics`` and ``model``/``store``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque

from gateway import metrics
from gateway.accounting.model import SpendRecord
from gateway.accounting.store import Store, StoreUnavailable

log = logging.getLogger("gateway.ledger")
_BATCH = 64
LINGER_S = 0.01
"""How long a partial batch waits for more records (one round trip then settles many)."""


class LedgerWriter:
    """Settles finished requests in order, retrying through store outages."""

    def __init__(
        self, store: Store, *, capacity: int, retry_s: float, linger_s: float = LINGER_S
    ) -> None:
        self.store = store
        self.capacity = capacity
        self.retry_s = retry_s
        self.linger_s = linger_s
        self._queue: deque[tuple[SpendRecord, bool]] = deque()
        """Records to settle, each with whether settling it frees a parallel slot."""
        self._urgent = False
        """A queued record frees a parallel slot: its batch goes without lingering."""
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._flushing = 0
        """Callers waiting in ``flush``: no lingering meanwhile."""

    def __len__(self) -> int:
        return len(self._queue)

    def submit(self, record: SpendRecord, frees_slot: bool = False) -> None:
        """Queue one finished request for settlement (never blocks, never raises);
        ``frees_slot``: its admission took a parallel slot, which settling gives back."""
        if len(self._queue) >= self.capacity:
            dropped, _ = self._queue.popleft()
            metrics.LEDGER_DROPPED.inc()
            log.error(
                "ledger backlog full (%d): dropped record %s", self.capacity, dropped.request_id
            )
        self._queue.append((record, frees_slot))
        self._urgent = self._urgent or frees_slot
        metrics.LEDGER_BACKLOG.set(len(self._queue))
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        """Start the writer task on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ledger-writer")

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._linger()
            try:
                await self._settle_head()
            except StoreUnavailable as exc:
                if self._closing:
                    return
                log.warning("ledger: store unavailable (%s); %d queued", exc, len(self._queue))
                await asyncio.sleep(self.retry_s)

    async def _linger(self) -> None:
        """Give a partial batch up to ``linger_s`` to fill: at a few hundred requests a second
        that is one round trip for many records instead of one each. Not when a record frees
        a parallel slot (the next request of a sequential client needs it back) or the writer
        is flushing or closing. Budgets and TPM are settled that much later; their
        reservations hold the worst case meanwhile."""
        deadline = asyncio.get_running_loop().time() + self.linger_s
        while len(self._queue) < _BATCH and not (self._urgent or self._flushing or self._closing):
            self._wake.clear()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._wake.wait()
            except TimeoutError:
                return

    async def _settle_head(self) -> None:
        """Settle up to a batch from the head in one call; its records leave the queue only
        once the whole batch is acknowledged (on failure it is sent again, whole)."""
        batch = list(itertools.islice(self._queue, _BATCH))
        settled = await self.store.settle_many([record for record, _ in batch])
        metrics.LEDGER_DUPLICATES.inc(settled.count(False))
        for item in batch:
            # ``submit`` may have dropped some of the batch meanwhile (a full backlog): what
            # is left of it is still the queue's head, in order.
            if self._queue and self._queue[0] is item:
                self._queue.popleft()
        self._urgent = any(frees for _, frees in itertools.islice(self._queue, _BATCH))
        metrics.LEDGER_BACKLOG.set(len(self._queue))
        if not self._queue:
            self._idle.set()

    async def flush(self, timeout_s: float) -> bool:
        """Wait until everything queued so far is settled (without lingering); False if time
        ran out."""
        self._flushing += 1
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        finally:
            self._flushing -= 1
        return True

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Drain what is queued (bounded by ``timeout_s``), then stop the writer."""
        drained = await self.flush(timeout_s)
        self._closing = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if not drained:
            log.error("ledger: %d records not settled at shutdown", len(self._queue))
