"""Where entries live: the interface, and the in-process backend for a single replica.

Four operations make the cache: ``get`` (a hit), ``claim`` (get the entry, or else take the
single-flight lock if it is free, atomically), ``store`` (write the entry and free our lock)
and ``release`` (free our lock without an entry). ``purge``, ``stats`` and the hit counters
serve the admin API. Any failure is raised as ``BackendUnavailable``. Imports: stdlib.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from fnmatch import fnmatchcase
from time import monotonic
from typing import Protocol


class BackendUnavailable(Exception):
    """The store failed, timed out or is unreachable."""


@dataclass(frozen=True, slots=True)
class Footprint:
    """Entries and bytes of a part of the cache."""

    entries: int
    bytes: int


class Backend(Protocol):
    """A store for cache entries and single-flight locks."""

    async def get(self, key: str) -> bytes | None:
        """The stored bytes, if any."""
        ...

    async def claim(self, key: str, lock: str, owner: str, lock_ttl_s: float) -> bytes | bool:
        """The entry if there is one; else True if ``owner`` now holds ``lock``, False if
        someone else does."""
        ...

    async def store(self, key: str, value: bytes, ttl_s: float, lock: str, owner: str) -> None:
        """Write the entry, then free ``lock`` if ``owner`` holds it."""
        ...

    async def release(self, lock: str, owner: str) -> None:
        """Free ``lock`` if ``owner`` holds it."""
        ...

    async def delete(self, key: str) -> None:
        """Remove one entry (a corrupt one)."""
        ...

    async def purge(self, pattern: str) -> int:
        """Remove every entry whose key matches the glob ``pattern``; how many there were."""
        ...

    async def usage(self, pattern: str) -> Footprint:
        """Entries and bytes whose keys match ``pattern``."""
        ...

    async def add_counts(self, counts: dict[str, tuple[int, int]]) -> None:
        """Add (hits, misses) per namespace to the shared counters."""
        ...

    async def counts(self, namespace: str | None) -> tuple[int, int]:
        """(hits, misses) of one namespace, or of all."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryBackend:
    """Entries in this process: least recently used first out when ``max_bytes`` is full."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._locks: dict[str, tuple[str, float]] = {}
        self._counts: dict[str, tuple[int, int]] = {}

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[1] <= monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return found[0]

    async def claim(self, key: str, lock: str, owner: str, lock_ttl_s: float) -> bytes | bool:
        value = await self.get(key)
        if value is not None:
            return value
        held = self._locks.get(lock)
        now = monotonic()
        if held is not None and held[1] > now:
            return False
        self._locks[lock] = (owner, now + lock_ttl_s)
        return True

    async def store(self, key: str, value: bytes, ttl_s: float, lock: str, owner: str) -> None:
        self._drop(key)
        if len(value) <= self.max_bytes:
            self._entries[key] = (value, monotonic() + ttl_s)
            self._bytes += len(value)
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))
        await self.release(lock, owner)

    async def release(self, lock: str, owner: str) -> None:
        held = self._locks.get(lock)
        if held is not None and held[0] == owner:
            del self._locks[lock]

    async def delete(self, key: str) -> None:
        self._drop(key)

    async def purge(self, pattern: str) -> int:
        now = monotonic()
        doomed = [key for key in self._entries if fnmatchcase(key, pattern)]
        live = sum(1 for key in doomed if self._entries[key][1] > now)  # as Redis counts
        for key in doomed:
            self._drop(key)
        return live

    async def usage(self, pattern: str) -> Footprint:
        now = monotonic()
        sizes = [
            len(value)
            for key, (value, expires) in self._entries.items()
            if expires > now and fnmatchcase(key, pattern)
        ]
        return Footprint(len(sizes), sum(sizes))

    async def add_counts(self, counts: dict[str, tuple[int, int]]) -> None:
        for namespace, (hits, misses) in counts.items():
            had = self._counts.get(namespace, (0, 0))
            self._counts[namespace] = (had[0] + hits, had[1] + misses)

    async def counts(self, namespace: str | None) -> tuple[int, int]:
        if namespace is not None:
            return self._counts.get(namespace, (0, 0))
        values = self._counts.values()
        return sum(h for h, _ in values), sum(m for _, m in values)

    async def aclose(self) -> None:
        return None

    def _drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self._bytes -= len(found[0])
