"""The cache's entries and single-flight locks in Redis, shared by every replica.

An entry is a string with a TTL; its lock is the same key plus ``:lock`` (one hash slot: the
request digest is the hash tag, so a Cluster spreads entries and the scripts stay in one
slot). ``claim`` and ``store`` are short Lua scripts so a lookup that misses takes the lock in
the same round trip, and a leader only frees a lock it still holds. Every call runs under a
deadline of a few milliseconds; any error or timeout is ``BackendUnavailable``.
Imports: stdlib, ``redis``, ``gateway.cache.backend``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.cache.backend import BackendUnavailable, Footprint
from gateway.redis_pool import connection_pool

T = TypeVar("T")
STATS_KEY = "gw:cache:stats"
_SCAN_COUNT = 1000
_CLAIM = """
local value = redis.call('GET', KEYS[1])
if value then return {1, value} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {0}
"""
_STORE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisBackend:
    """A ``Backend`` on one Redis URL."""

    def __init__(self, url: str, *, timeout_s: float, max_connections: int = 64) -> None:
        self.timeout_s = timeout_s
        # No client retries and no socket timeout: each call has its own deadline (_io).
        pool = connection_pool(
            url,
            max_connections=max_connections,
            timeout_s=timeout_s,
            connect_timeout_s=max(timeout_s, 0.05),
        )
        self._redis: Redis = Redis.from_pool(pool)
        self._claim = self._redis.register_script(_CLAIM)
        self._store = self._redis.register_script(_STORE)
        self._release = self._redis.register_script(_RELEASE)

    async def _io(self, pending: Awaitable[T], timeout_s: float | None = None) -> T:
        try:
            async with asyncio.timeout(timeout_s or self.timeout_s):
                return await pending
        except (RedisError, OSError, TimeoutError) as exc:
            raise BackendUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        value = await self._io(self._redis.get(key))
        return None if value is None else _bytes(value)

    async def claim(self, key: str, lock: str, owner: str, lock_ttl_s: float) -> bytes | bool:
        reply: list[Any] = await self._io(
            self._claim(keys=[key, lock], args=[owner, _ms(lock_ttl_s)])
        )
        if reply[0] == 1:
            value: bytes = reply[1]
            return value
        return bool(reply[0] == 2)

    async def store(self, key: str, value: bytes, ttl_s: float, lock: str, owner: str) -> None:
        await self._io(self._store(keys=[key, lock], args=[value, _ms(ttl_s), owner]))

    async def release(self, lock: str, owner: str) -> None:
        await self._io(self._release(keys=[lock], args=[owner]))

    async def delete(self, key: str) -> None:
        await self._io(self._redis.unlink(key))

    async def purge(self, pattern: str) -> int:
        return await self._io(self._purge(pattern), _ADMIN_TIMEOUT_S)

    async def _purge(self, pattern: str) -> int:
        deleted = 0
        async for keys in self._scan(pattern):
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:  # one key per command: entries live in different slots
                pipe.unlink(key)
            deleted += sum(await pipe.execute())
        return deleted

    async def usage(self, pattern: str) -> Footprint:
        return await self._io(self._usage(pattern), _ADMIN_TIMEOUT_S)

    async def _usage(self, pattern: str) -> Footprint:
        entries = size = 0
        async for keys in self._scan(pattern):
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.strlen(key)
            lengths = [n for n in await pipe.execute() if n]  # 0: expired meanwhile
            entries += len(lengths)
            size += sum(lengths)
        return Footprint(entries, size)

    async def _scan(self, pattern: str) -> AsyncIterator[list[bytes]]:
        """Batches of entry keys matching ``pattern`` (locks left out)."""
        cursor = 0
        while True:
            cursor, keys = await self._redis.scan(cursor, match=pattern, count=_SCAN_COUNT)
            batch = [k for k in map(_bytes, keys) if not k.endswith(b":lock")]
            if batch:
                yield batch
            if cursor == 0:
                return

    async def add_counts(self, counts: dict[str, tuple[int, int]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for namespace, (hits, misses) in counts.items():
            pipe.hincrby(STATS_KEY, f"{namespace}:hits", hits)
            pipe.hincrby(STATS_KEY, f"{namespace}:misses", misses)
        await self._io(pipe.execute(), _ADMIN_TIMEOUT_S)

    async def counts(self, namespace: str | None) -> tuple[int, int]:
        fields = await self._io(self._redis.hgetall(STATS_KEY), _ADMIN_TIMEOUT_S)
        hits = misses = 0
        for field, value in fields.items():
            ns, _, kind = _bytes(field).decode().rpartition(":")
            if namespace is None or ns == namespace:
                if kind == "hits":
                    hits += int(value)
                elif kind == "misses":
                    misses += int(value)
        return hits, misses

    async def aclose(self) -> None:
        await self._redis.aclose()


_ADMIN_TIMEOUT_S = 30.0
"""Admin scans and counter flushes are off the request path: they may take longer."""


def _bytes(value: bytes | str) -> bytes:
    """redis-py types replies as ``bytes | str``; without ``decode_responses`` they are bytes."""
    return value if isinstance(value, bytes) else value.encode()


_MAX_MS = 2**53
"""About 285,000 years: any longer TTL is this (Redis refuses expiries past 2**63 ms)."""


def _ms(seconds: float) -> int:
    return max(1, round(min(seconds * 1000, _MAX_MS)))
