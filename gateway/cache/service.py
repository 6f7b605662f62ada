"""The response cache on the request path: look up, lead or follow, store.

``lookup`` answers one of: a hit (an ``Entry``), a miss with a ``Lease`` (this request goes
upstream; ``fulfil`` or ``abandon`` it once the answer is known), or a bypass. Identical
misses make one upstream call: in this process they wait on the first one's future; across
replicas the first takes a Redis lock (``claim``) and the others poll for its entry until it
appears, the lock is freed without one (one of them takes over), or ``wait_s`` has passed
(they go upstream themselves). Nobody waits on a leader that failed or left.

Redis trouble never fails a request: an operation that errs or passes ``timeout_s`` counts
as a miss (the request goes upstream), and after three failures in a row the cache is
bypassed, with one request per ``retry_s`` probing Redis (one timeout per interval, not one
per request). A stored value that does not decode is deleted and
counted, and the request goes upstream. Writes and lock releases run after the response, off
the request path. This is the exact-match strategy; a semantic one would sit behind the same
``lookup``/``fulfil`` pair. Imports: ``gateway`` modules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from time import monotonic
from typing import Any

from gateway import metrics
from gateway.accounting.model import Principal
from gateway.asgi import Scope
from gateway.cache.backend import Backend, BackendUnavailable, MemoryBackend
from gateway.cache.entry import CorruptEntry, Entry
from gateway.cache.request import CachePlan, Result, part, plan_for
from gateway.cache.settings import CacheSettings
from gateway.config import Alias

log = logging.getLogger("gateway.cache")
FAILURES_TO_OPEN = 3
FLUSH_INTERVAL_S = 5.0
_MAX_POLL_S = 0.05


@dataclass(slots=True)
class Lease:
    """A request that goes upstream for its key; its answer settles the waiters."""

    plan: CachePlan
    owner: str
    locked: bool
    """Holds the shared lock (else it leads in this process only, or refreshes)."""
    flight: asyncio.Future[Entry | None] | None
    done: bool = False


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the cache said about one request."""

    result: Result
    entry: Entry | None = None
    lease: Lease | None = None


BYPASS = Lookup("bypass")


class ResponseCache:
    """Exact-match response cache over a ``Backend``."""

    def __init__(self, settings: CacheSettings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend
        self._flights: dict[str, asyncio.Future[Entry | None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._failures = 0
        self._down_until = 0.0
        self._counts: dict[str, tuple[int, int]] = {}
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    def for_settings(cls, settings: CacheSettings) -> ResponseCache:
        """On Redis when the settings name one, else in this process."""
        backend: Backend
        if settings.redis_url:
            from gateway.cache.redis_backend import RedisBackend

            backend = RedisBackend(settings.redis_url, timeout_s=settings.timeout_s)
        else:
            backend = MemoryBackend(settings.memory_max_bytes)
        return cls(settings, backend)

    def start(self) -> None:
        """Start flushing the hit counters (inside the running loop)."""
        self._flusher = asyncio.get_running_loop().create_task(self._flush_counts())

    async def aclose(self) -> None:
        """Finish pending writes (bounded), flush the counters, close the backend."""
        if self._flusher is not None:
            self._flusher.cancel()
        if self._background:
            await asyncio.wait(self._background, timeout=5.0)
        await self._flush_once()
        await self.backend.aclose()

    # -- on the request path ----------------------------------------------------------

    def plan(
        self,
        scope: Scope,
        endpoint: str,
        parsed: dict[str, Any],
        alias: Alias,
        principal: Principal,
    ) -> CachePlan | None:
        """The request's plan; None: it bypasses the cache."""
        key = principal.key
        return plan_for(
            scope,
            endpoint,
            parsed,
            alias.name,
            principal.team.team_id,
            self.settings,
            alias.cache,
            None if key is None else key.cache,
        )

    async def lookup(self, plan: CachePlan, owner: str) -> Lookup:
        """A hit, a lease to go upstream, or a bypass (Redis unavailable)."""
        started = monotonic()
        if self._failures >= FAILURES_TO_OPEN:  # open: one request per interval probes
            if started < self._down_until:
                return self._counted(plan, BYPASS, started)
            self._down_until = started + self.settings.retry_s  # the others bypass meanwhile
        if not plan.read:
            return self._counted(
                plan, Lookup("refresh", lease=Lease(plan, owner, False, None)), started
            )
        flight = self._flights.get(plan.key)
        if flight is not None:
            entry = await self._follow(flight)
            return self._counted(plan, Lookup("hit" if entry else "miss", entry), started)
        if not plan.write:  # no-store: a read, but neither leading nor writing
            entry = await self._get(plan)
            return self._counted(plan, Lookup("hit" if entry else "miss", entry), started)
        flight = self._flights[plan.key] = asyncio.get_running_loop().create_future()
        lease = Lease(plan, owner, False, flight)
        try:
            entry = await self._claim(lease)
        except BaseException:
            self.abandon(lease)
            raise
        if entry is not None:
            self._settle(lease, entry)
            return self._counted(plan, Lookup("hit", entry), started)
        return self._counted(plan, Lookup("miss", lease=lease), started)

    def fulfil(self, lease: Lease, entry: Entry) -> None:
        """The leader's answer: hand it to the waiters and store it (in the background)."""
        if lease.done:
            return
        self._settle(lease, entry)
        plan = lease.plan
        if not plan.write or self._failures >= FAILURES_TO_OPEN:
            self._release(lease)
            return
        value = entry.encode(self.settings.compress_min_bytes)
        if len(value) > self.settings.max_entry_bytes:
            metrics.child(metrics.CACHE_WRITES, "too_large").inc()
            self._release(lease)
            return
        store = self.backend.store(plan.key, value, plan.ttl_s, plan.lock, lease.owner)
        self._in_background("store", store, written=True)

    def abandon(self, lease: Lease) -> None:
        """The leader got no answer worth storing: waiters stop waiting on it."""
        if not lease.done:
            self._settle(lease, None)
            self._release(lease)

    def discard(self, plan: CachePlan, exc: Exception) -> None:
        """Delete an entry that decoded but cannot be served; count it."""
        log.warning("cache: deleting an entry that cannot be replayed (%s)", exc)
        metrics.CACHE_CORRUPT.inc()
        self._in_background("delete", self.backend.delete(plan.key))

    def bypassed(self, alias: str) -> None:
        """Count a request whose plan excluded the cache (mode, or no-cache with no-store)."""
        metrics.child(metrics.CACHE_REQUESTS, alias, "bypass").inc()

    # -- admin ------------------------------------------------------------------------

    async def purge(self, namespace: str | None, alias: str | None) -> int:
        """Delete the entries of a namespace, an alias, or both; how many were deleted."""
        return await self.backend.purge(_pattern(namespace, alias))

    async def stats(self, namespace: str | None, alias: str | None) -> dict[str, Any]:
        """Entries and bytes stored; hits, misses and hit ratio (every replica's, up to the
        last flush, plus this one's since)."""
        footprint = await self.backend.usage(_pattern(namespace, alias))
        hits, misses = await self.backend.counts(namespace)
        for ns, (h, m) in self._counts.items():
            if namespace is None or ns == namespace:
                hits, misses = hits + h, misses + m
        looked = hits + misses
        return {
            "object": "cache.stats",
            "namespace": namespace,
            "alias": alias,
            "entries": footprint.entries,
            "bytes": footprint.bytes,
            "hits": hits,
            "misses": misses,
            "hit_ratio": round(hits / looked, 4) if looked else None,
            "backend": "redis" if self.settings.redis_url else "memory",
        }

    # -- internals --------------------------------------------------------------------

    async def _follow(self, flight: asyncio.Future[Entry | None]) -> Entry | None:
        """The leader's answer; None if it failed or took longer than ``wait_s``."""
        try:
            return await asyncio.wait_for(asyncio.shield(flight), self.settings.wait_s)
        except TimeoutError:
            return None

    async def _get(self, plan: CachePlan) -> Entry | None:
        try:
            value = await self.backend.get(plan.key)
        except BackendUnavailable as exc:
            self._failed("get", exc)
            return None
        self._ok()
        return None if value is None else self._decode(plan, value)

    async def _claim(self, lease: Lease) -> Entry | None:
        """The entry, or None with ``lease.locked`` telling whether this request leads."""
        plan, settings = lease.plan, self.settings
        deadline = monotonic() + settings.wait_s
        pause = settings.poll_s
        while True:
            try:
                got = await self.backend.claim(
                    plan.key, plan.lock, lease.owner, settings.lock_ttl_s
                )
            except BackendUnavailable as exc:
                self._failed("claim", exc)
                return None
            self._ok()
            if isinstance(got, bytes):
                return self._decode(plan, got)
            if got or monotonic() + pause > deadline:
                lease.locked = got
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_POLL_S)

    def _decode(self, plan: CachePlan, value: bytes) -> Entry | None:
        try:
            return Entry.decode(value)
        except CorruptEntry as exc:
            self.discard(plan, exc)
            return None

    def _settle(self, lease: Lease, entry: Entry | None) -> None:
        lease.done = True
        flight = lease.flight
        if flight is not None and not flight.done():
            flight.set_result(entry)
        if flight is not None and self._flights.get(lease.plan.key) is flight:
            del self._flights[lease.plan.key]

    def _release(self, lease: Lease) -> None:
        if lease.locked:
            lease.locked = False
            self._in_background("release", self.backend.release(lease.plan.lock, lease.owner))

    def _in_background(self, operation: str, work: Awaitable[None], written: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(self._run(operation, work, written))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run(self, operation: str, work: Awaitable[None], written: bool) -> None:
        try:
            await work
        except BackendUnavailable as exc:
            self._failed(operation, exc)
            if written:
                metrics.child(metrics.CACHE_WRITES, "failed").inc()
            return
        self._ok()
        if written:
            metrics.child(metrics.CACHE_WRITES, "stored").inc()

    def _ok(self) -> None:
        if self._failures >= FAILURES_TO_OPEN:
            log.warning("cache: Redis answers again; the cache is back")
        self._failures = 0

    def _failed(self, operation: str, exc: Exception) -> None:
        metrics.child(metrics.CACHE_ERRORS, operation).inc()
        self._failures += 1
        if self._failures == FAILURES_TO_OPEN:
            log.warning(
                "cache: Redis unavailable (%s); bypassing the cache, probing every %.1f s",
                exc,
                self.settings.retry_s,
            )
        if self._failures >= FAILURES_TO_OPEN:
            self._down_until = monotonic() + self.settings.retry_s

    def _counted(self, plan: CachePlan, lookup: Lookup, started: float) -> Lookup:
        result = lookup.result
        metrics.child(metrics.CACHE_REQUESTS, plan.alias, result).inc()
        metrics.child(metrics.CACHE_LOOKUP_SECONDS, result).observe(monotonic() - started)
        if result in ("hit", "miss"):
            hits, misses = self._counts.get(plan.namespace, (0, 0))
            if result == "hit":
                hits += 1
            else:
                misses += 1
            self._counts[plan.namespace] = (hits, misses)
        return lookup

    async def _flush_counts(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            await self._flush_once()

    async def _flush_once(self) -> None:
        counts, self._counts = self._counts, {}
        if not counts:
            return
        try:
            await self.backend.add_counts(counts)
        except BackendUnavailable:
            for ns, (h, m) in counts.items():  # keep them for the next flush
                had = self._counts.get(ns, (0, 0))
                self._counts[ns] = (had[0] + h, had[1] + m)


def _pattern(namespace: str | None, alias: str | None) -> str:
    ns = "*" if namespace is None else part(namespace)
    name = "*" if alias is None else part(alias)
    return f"gw:cache:{ns}:{name}:{{*"
