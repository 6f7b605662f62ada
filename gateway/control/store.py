"""Where operators' deployment states live: Redis (shared by every replica) or this process.

The states are a hash, ``gw:control:deployments`` (name -> ``draining`` | ``disabled`` |
``active``; no entry is active), so a replica that starts or reconnects later reads them all,
and every write also publishes on ``gw:control:changes`` so the others re-read it at once.
A write is one MULTI (HSET or HDEL, then PUBLISH): a subscriber that is told has the new hash
to read. The watcher subscribes first and reads the hash second, so no change falls between,
and reads it again after ``RESYNC_S`` without a message (a subscription silently lost, e.g.
behind a network partition, delays a change by that much at most).
Every Redis call has a deadline; any failure is ``ControlUnavailable`` (the caller keeps what
it knew). Without Redis (the embedded store, one replica) the states are a dict here.
Imports: redis, ``gateway.redis_pool``, ``gateway.roster``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Protocol, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.redis_pool import connection_pool
from gateway.roster import STATES, State

HASH = "gw:control:deployments"
CHANNEL = "gw:control:changes"
TIMEOUT_S = 1.0
RESYNC_S = 5.0


class ControlUnavailable(Exception):
    """The control store did not answer (Redis down, slow or refusing)."""


class ControlStore(Protocol):
    """Reads, writes and watches the wanted states."""

    async def read(self) -> dict[str, State]:
        """Every stored state, by name."""
        ...

    async def write(self, name: str, state: State | None) -> None:
        """Store ``state`` for ``name`` (None: remove its entry) and tell every replica."""
        ...

    def watch(self) -> AsyncGenerator[dict[str, State]]:
        """The states now, then again after every change; ends only by raising."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryControl:
    """The states of a single replica, in this process."""

    def __init__(self) -> None:
        self._states: dict[str, State] = {}
        self._changed = asyncio.Event()

    async def read(self) -> dict[str, State]:
        """Every stored state, by name."""
        return dict(self._states)

    async def write(self, name: str, state: State | None) -> None:
        """Store ``state`` for ``name`` (None: remove it)."""
        if state is None:
            self._states.pop(name, None)
        else:
            self._states[name] = state
        self._changed.set()

    async def watch(self) -> AsyncGenerator[dict[str, State]]:
        """The states now, then after every write."""
        while True:
            self._changed.clear()
            yield dict(self._states)
            await self._changed.wait()

    async def aclose(self) -> None:
        """Nothing to release."""


class RedisControl:
    """The states in Redis, shared by every replica (see the module docstring)."""

    def __init__(self, url: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        pool = connection_pool(
            url,
            max_connections=4,
            timeout_s=timeout_s,
            connect_timeout_s=timeout_s,
            decode_responses=True,
        )
        self._redis: Redis = Redis.from_pool(pool)

    async def read(self) -> dict[str, State]:
        """Every stored state, by name (entries that are not a state are ignored)."""
        raw = await self._io(self._redis.hgetall(HASH))
        return _states(cast(Mapping[str, str], raw))

    async def write(self, name: str, state: State | None) -> None:
        """HSET or HDEL, then PUBLISH, in one transaction."""
        pipe = self._redis.pipeline(transaction=True)
        if state is None:
            pipe.hdel(HASH, name)
        else:
            pipe.hset(HASH, name, state)
        pipe.publish(CHANNEL, name)
        await self._io(pipe.execute())

    async def watch(self) -> AsyncGenerator[dict[str, State]]:
        """Subscribe, then yield the hash now and after every message; a lost connection
        raises ControlUnavailable (the caller subscribes again)."""
        pubsub = self._redis.pubsub()
        try:
            await self._io(pubsub.subscribe(CHANNEL))
            while await self._message(pubsub) != "subscribe":
                pass
            yield await self.read()
            silent = 0.0
            while True:
                started = time.monotonic()
                kind = await self._message(pubsub)
                silent += time.monotonic() - started
                if kind == "message" or silent >= RESYNC_S:
                    silent = 0.0
                    yield await self.read()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _message(self, pubsub: Any) -> str | None:
        """The type of the next message, or None after a second without one."""
        try:
            message = await pubsub.get_message(timeout=1.0)
        except (RedisError, OSError) as exc:
            raise ControlUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
        return None if message is None else str(message["type"])

    async def _io(self, pending: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await pending
        except (RedisError, OSError, TimeoutError) as exc:
            raise ControlUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def _states(raw: Mapping[str, str]) -> dict[str, State]:
    return {name: value for name, value in raw.items() if value in STATES}


def control_store(redis_url: str | None) -> ControlStore:
    """The shared store on the accounting Redis, or this process's when there is none."""
    return MemoryControl() if redis_url is None else RedisControl(redis_url)
