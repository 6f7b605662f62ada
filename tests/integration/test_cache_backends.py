"""The cache Backend contract, run against MemoryBackend and RedisBackend (a real redis-server):
get/claim/store/release and the single-flight lock, TTLs, purge, usage and the hit counters;
then each backend's own part: the in-process LRU, and Redis failing as BackendUnavailable."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from gateway.cache.backend import Backend, BackendUnavailable, Footprint, MemoryBackend
from gateway.cache.redis_backend import RedisBackend
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration

T = TypeVar("T")
BackendFactory = Callable[[], Backend]

KEY, LOCK = "gw:cache:research:chat:{d1}", "gw:cache:research:chat:{d1}:lock"
LONG_S = 60.0
TIMEOUT_S = 0.05
FAST_FAILURE_S = 0.5  # 10 timeouts: room for a busy two-core machine


@pytest.fixture(params=["memory", "redis"])
def make_backend(request: pytest.FixtureRequest) -> Iterator[BackendFactory]:
    """Builds the backend under test inside the test's event loop."""
    if request.param == "memory":
        yield lambda: MemoryBackend(max_bytes=1 << 20)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    yield lambda: RedisBackend(server.url, timeout_s=2.0)


def run(make_backend: BackendFactory, scenario: Callable[[Backend], Awaitable[T]]) -> T:
    """Run ``scenario`` on a fresh backend in a new event loop; close it afterwards."""

    async def main() -> T:
        backend = make_backend()
        try:
            return await scenario(backend)
        finally:
            await backend.aclose()

    return asyncio.run(main())


def entry_key(namespace: str, alias: str, digest: str) -> str:
    return f"gw:cache:{namespace}:{alias}:{{{digest}}}"


# -- get / claim / store / release --------------------------------------------------------


def test_claim_takes_a_free_lock_once_and_returns_the_entry_once_there_is_one(
    make_backend: BackendFactory,
) -> None:
    async def scenario(backend: Backend) -> None:
        assert await backend.get(KEY) is None
        assert await backend.claim(KEY, LOCK, "a", LONG_S) is True
        assert await backend.claim(KEY, LOCK, "b", LONG_S) is False
        assert await backend.claim(KEY, LOCK, "a", LONG_S) is False  # not re-entrant
        await backend.store(KEY, b"answer", LONG_S, LOCK, "a")
        assert await backend.get(KEY) == b"answer"
        assert await backend.claim(KEY, LOCK, "b", LONG_S) == b"answer"

    run(make_backend, scenario)


def test_only_the_owner_releases_its_lock(make_backend: BackendFactory) -> None:
    async def scenario(backend: Backend) -> None:
        assert await backend.claim(KEY, LOCK, "a", LONG_S) is True
        await backend.release(LOCK, "b")
        assert await backend.claim(KEY, LOCK, "b", LONG_S) is False
        await backend.release(LOCK, "a")
        assert await backend.claim(KEY, LOCK, "b", LONG_S) is True
        await backend.release(LOCK, "nobody")  # a lock held by b: untouched
        assert await backend.claim(KEY, LOCK, "c", LONG_S) is False
        await backend.release("gw:cache:never:held:{x}:lock", "a")  # no lock: no error

    run(make_backend, scenario)


def test_a_lock_frees_itself_after_its_ttl(make_backend: BackendFactory) -> None:
    async def scenario(backend: Backend) -> None:
        assert await backend.claim(KEY, LOCK, "a", 0.05) is True
        assert await backend.claim(KEY, LOCK, "b", LONG_S) is False
        await asyncio.sleep(0.15)
        assert await backend.claim(KEY, LOCK, "b", LONG_S) is True
        await backend.release(LOCK, "a")  # the dead leader's late release: b keeps the lock
        assert await backend.claim(KEY, LOCK, "c", LONG_S) is False

    run(make_backend, scenario)


def test_store_writes_the_entry_and_frees_only_its_owners_lock(
    make_backend: BackendFactory,
) -> None:
    async def scenario(backend: Backend) -> None:
        assert await backend.claim(KEY, LOCK, "b", LONG_S) is True
        await backend.store(KEY, b"from a", LONG_S, LOCK, "a")  # a took over; b still holds
        assert await backend.get(KEY) == b"from a"
        await backend.delete(KEY)
        assert await backend.claim(KEY, LOCK, "c", LONG_S) is False  # b's lock survived
        await backend.store(KEY, b"from b", LONG_S, LOCK, "b")
        assert await backend.get(KEY) == b"from b"
        await backend.delete(KEY)
        assert await backend.get(KEY) is None
        assert await backend.claim(KEY, LOCK, "c", LONG_S) is True  # b's store freed it

    run(make_backend, scenario)


def test_store_replaces_an_entry_and_keeps_bytes_as_they_are(
    make_backend: BackendFactory,
) -> None:
    binary = bytes(range(256)) * 4

    async def scenario(backend: Backend) -> Footprint:
        await backend.store(KEY, b"old answer, longer", LONG_S, LOCK, "a")
        await backend.store(KEY, binary, LONG_S, LOCK, "a")
        assert await backend.get(KEY) == binary
        return await backend.usage("gw:cache:*")

    assert run(make_backend, scenario) == Footprint(1, len(binary))


def test_an_entry_expires_after_its_ttl(make_backend: BackendFactory) -> None:
    other = entry_key("research", "chat", "d2")

    async def scenario(backend: Backend) -> None:
        await backend.store(KEY, b"short-lived", 0.05, LOCK, "a")
        await backend.store(other, b"long-lived", LONG_S, other + ":lock", "a")
        assert await backend.get(KEY) == b"short-lived"
        await asyncio.sleep(0.15)
        assert await backend.get(KEY) is None
        assert await backend.usage("gw:cache:*") == Footprint(1, len(b"long-lived"))
        assert await backend.claim(KEY, LOCK, "b", LONG_S) is True  # no stale entry
        assert await backend.get(other) == b"long-lived"

    run(make_backend, scenario)


@pytest.mark.parametrize("ttl_s", [1e9, 1e300, 1e306], ids=["31-years", "1e300-s", "1e306-s"])
def test_a_huge_ttl_stores_the_entry(make_backend: BackendFactory, ttl_s: float) -> None:
    # Any positive finite x-gateway-cache-ttl passes the request's check.
    async def scenario(backend: Backend) -> bytes | None:
        await backend.store(KEY, b"forever", ttl_s, LOCK, "a")
        return await backend.get(KEY)

    assert run(make_backend, scenario) == b"forever"


# -- purge, usage, counts -----------------------------------------------------------------

ENTRIES = {
    entry_key("research", "chat", "d1"): b"x" * 10,
    entry_key("research", "chat", "d2"): b"x" * 20,
    entry_key("research", "embed", "d3"): b"x" * 40,
    entry_key("ops", "chat", "d4"): b"x" * 80,
    entry_key("shared", "chat", "d5"): b"x" * 160,
}


async def fill(backend: Backend) -> None:
    for key, value in ENTRIES.items():
        await backend.store(key, value, LONG_S, key + ":lock", "w")
    # A held lock (its entry not written yet) matches the patterns too: never an entry.
    lock = entry_key("research", "chat", "d9") + ":lock"
    assert await backend.claim(entry_key("research", "chat", "d9"), lock, "w", LONG_S) is True


@pytest.mark.parametrize(
    ("pattern", "entries", "size"),
    [
        pytest.param("gw:cache:*:*:{*", 5, 310, id="everything"),
        pytest.param("gw:cache:research:*:{*", 3, 70, id="namespace"),
        pytest.param("gw:cache:*:chat:{*", 4, 270, id="alias"),
        pytest.param("gw:cache:research:chat:{*", 2, 30, id="namespace-and-alias"),
        pytest.param("gw:cache:nobody:*:{*", 0, 0, id="no-match"),
    ],
)
def test_usage_counts_the_entries_a_pattern_matches_and_not_the_locks(
    make_backend: BackendFactory, pattern: str, entries: int, size: int
) -> None:
    async def scenario(backend: Backend) -> Footprint:
        await fill(backend)
        return await backend.usage(pattern)

    assert run(make_backend, scenario) == Footprint(entries, size)


def test_purge_deletes_what_the_pattern_matches_and_counts_entries_not_locks(
    make_backend: BackendFactory,
) -> None:
    d9 = entry_key("research", "chat", "d9")

    async def scenario(backend: Backend) -> None:
        await fill(backend)
        assert await backend.purge("gw:cache:research:chat:{*") == 2
        assert await backend.purge("gw:cache:research:chat:{*") == 0
        assert await backend.get(entry_key("research", "embed", "d3")) == b"x" * 40
        assert await backend.usage("gw:cache:*:*:{*") == Footprint(3, 280)
        assert await backend.claim(d9, d9 + ":lock", "other", LONG_S) is False  # lock kept
        assert await backend.purge("gw:cache:*:*:{*") == 3
        assert await backend.usage("gw:cache:*:*:{*") == Footprint(0, 0)

    run(make_backend, scenario)


def test_purge_does_not_count_entries_that_already_expired(make_backend: BackendFactory) -> None:
    async def scenario(backend: Backend) -> int:
        await backend.store(KEY, b"short-lived", 0.05, LOCK, "a")
        await backend.store(entry_key("research", "chat", "d2"), b"kept", LONG_S, LOCK, "a")
        await asyncio.sleep(0.15)
        return await backend.purge("gw:cache:*:*:{*")

    assert run(make_backend, scenario) == 1


def test_counts_add_up_per_namespace_and_in_total(make_backend: BackendFactory) -> None:
    async def scenario(backend: Backend) -> None:
        assert await backend.counts(None) == (0, 0)
        await backend.add_counts({"research": (3, 1), "team:odd": (2, 5)})
        await backend.add_counts({"research": (1, 0), "ops": (0, 4)})
        await backend.add_counts({})
        assert await backend.counts("research") == (4, 1)
        assert await backend.counts("team:odd") == (2, 5)
        assert await backend.counts("ops") == (0, 4)
        assert await backend.counts("team") == (0, 0)
        assert await backend.counts(None) == (6, 10)

    run(make_backend, scenario)


# -- MemoryBackend ------------------------------------------------------------------------


def test_memory_backend_evicts_the_least_recently_used_entry_when_full() -> None:
    keys = [entry_key("research", "chat", f"d{n}") for n in range(4)]

    async def scenario() -> None:
        backend = MemoryBackend(max_bytes=100)
        for key in keys[:2]:
            await backend.store(key, b"x" * 40, LONG_S, key + ":lock", "a")
        assert await backend.get(keys[0]) is not None  # keys[1] is now the least recent
        await backend.store(keys[2], b"y" * 40, LONG_S, keys[2] + ":lock", "a")
        assert [await backend.get(k) is not None for k in keys[:3]] == [True, False, True]
        assert await backend.usage("gw:cache:*") == Footprint(2, 80)
        await backend.store(keys[3], b"z" * 101, LONG_S, keys[3] + ":lock", "a")  # too big
        assert await backend.get(keys[3]) is None
        assert await backend.usage("gw:cache:*") == Footprint(2, 80)  # nothing evicted for it
        await backend.store(keys[0], b"w" * 100, LONG_S, keys[0] + ":lock", "a")
        assert await backend.usage("gw:cache:*") == Footprint(1, 100)

    asyncio.run(scenario())


def test_memory_backend_store_of_an_oversized_entry_still_frees_the_lock() -> None:
    async def scenario() -> bool | bytes:
        backend = MemoryBackend(max_bytes=10)
        assert await backend.claim(KEY, LOCK, "a", LONG_S) is True
        await backend.store(KEY, b"x" * 11, LONG_S, LOCK, "a")
        return await backend.claim(KEY, LOCK, "b", LONG_S)

    assert asyncio.run(scenario()) is True


# -- RedisBackend faults ------------------------------------------------------------------

Operation = Callable[[RedisBackend], Awaitable[object]]
REQUEST_PATH: dict[str, Operation] = {
    "get": lambda b: b.get(KEY),
    "claim": lambda b: b.claim(KEY, LOCK, "a", LONG_S),
    "store": lambda b: b.store(KEY, b"v", LONG_S, LOCK, "a"),
    "release": lambda b: b.release(LOCK, "a"),
    "delete": lambda b: b.delete(KEY),
}
ADMIN: dict[str, Operation] = {
    "purge": lambda b: b.purge("gw:cache:*:*:{*"),
    "usage": lambda b: b.usage("gw:cache:*:*:{*"),
    "add_counts": lambda b: b.add_counts({"research": (1, 2)}),
    "counts": lambda b: b.counts(None),
}


async def failures(backend: RedisBackend, operations: dict[str, Operation]) -> dict[str, float]:
    """How long each operation took to raise BackendUnavailable (it must raise that)."""
    waits: dict[str, float] = {}
    for name, operation in operations.items():
        started = time.monotonic()
        with pytest.raises(BackendUnavailable):
            await operation(backend)
        waits[name] = time.monotonic() - started
    return waits


@pytest.mark.parametrize("warm", [True, False], ids=["pooled-connections", "new-connections"])
def test_every_operation_on_a_killed_redis_is_backend_unavailable_quickly(
    redis_server: RedisServer, warm: bool
) -> None:
    async def scenario() -> dict[str, float]:
        backend = RedisBackend(redis_server.url, timeout_s=TIMEOUT_S)
        try:
            if warm:  # connections in the pool, scripts loaded
                await asyncio.gather(*(op(backend) for op in REQUEST_PATH.values()))
                await asyncio.gather(*(op(backend) for op in ADMIN.values()))
            redis_server.kill()
            return await failures(backend, {**REQUEST_PATH, **ADMIN})
        finally:
            await backend.aclose()

    waits = asyncio.run(scenario())
    assert set(waits) == {*REQUEST_PATH, *ADMIN}
    assert {name: wait for name, wait in waits.items() if wait > FAST_FAILURE_S} == {}


def test_a_hung_redis_is_backend_unavailable_after_the_timeout(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> dict[str, float]:
        backend = RedisBackend(redis_server.url, timeout_s=TIMEOUT_S)
        try:
            await asyncio.gather(*(op(backend) for op in REQUEST_PATH.values()))
            os.kill(redis_server.pid, signal.SIGSTOP)  # accepts connections, answers nothing
            try:
                return await failures(backend, REQUEST_PATH)
            finally:
                os.kill(redis_server.pid, signal.SIGCONT)
        finally:
            await backend.aclose()

    waits = asyncio.run(scenario())
    assert {name: wait for name, wait in waits.items() if wait > FAST_FAILURE_S} == {}
    assert min(waits.values()) >= TIMEOUT_S * 0.9  # it did wait for the deadline


def test_a_restarted_redis_serves_again_and_reloads_the_scripts(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> bytes | bool:
        backend = RedisBackend(redis_server.url, timeout_s=1.0)
        try:
            assert await backend.claim(KEY, LOCK, "a", LONG_S) is True
            redis_server.kill()
            with pytest.raises(BackendUnavailable):
                await backend.get(KEY)
            redis_server.start()
            assert await backend.claim(KEY, LOCK, "b", LONG_S) is True  # empty: no lock
            await backend.store(KEY, b"again", LONG_S, LOCK, "b")
            return await backend.claim(KEY, LOCK, "c", LONG_S)
        finally:
            await backend.aclose()

    assert asyncio.run(scenario()) == b"again"
