"""Writing the privacy audit log after the answer: a bounded queue and one writer task.

``submit`` appends and returns (nothing on the request path waits for the store); the writer
sends what is queued in batches of up to 64 per round trip (``Store.append_audit``) and, while
the store is down, keeps them and tries again every ``retry_s``. Past ``capacity`` the oldest
record is dropped and counted in ``gateway_privacy_decisions_total{reason="audit_dropped"}``.
``aclose`` writes what is left, bounded in time. Imports: stdlib, ``gateway.metrics`` and
``model``/``store``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque

from gateway import metrics
from gateway.accounting.model import AuditRecord
from gateway.accounting.store import Store, StoreUnavailable

log = logging.getLogger("gateway.audit")
_BATCH = 64


class AuditWriter:
    """Appends audit records to the store in order, retrying through outages."""

    def __init__(self, store: Store, *, capacity: int, retry_s: float) -> None:
        self.store = store
        self.capacity = capacity
        self.retry_s = retry_s
        self._queue: deque[AuditRecord] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def submit(self, record: AuditRecord) -> None:
        """Queue one record (never blocks, never raises)."""
        if len(self._queue) >= self.capacity:
            self._queue.popleft()
            metrics.child(metrics.PRIVACY_DECISIONS, "audit_dropped").inc()
        self._queue.append(record)
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        """Start the writer task on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-writer")

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._write_head()
            except StoreUnavailable as exc:
                log.warning("audit: store unavailable (%s); %d queued", exc, len(self._queue))
                await asyncio.sleep(self.retry_s)

    async def _write_head(self) -> None:
        batch = list(itertools.islice(self._queue, _BATCH))
        await self.store.append_audit(batch)
        for record in batch:
            if self._queue and self._queue[0] is record:
                self._queue.popleft()
        if not self._queue:
            self._idle.set()

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Write what is queued (bounded by ``timeout_s``), then stop the writer."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        if self._queue:
            log.error("audit: %d records not written at shutdown", len(self._queue))
