"""The stores on a ``redis+sentinel://`` URL, against a real master, replica and Sentinel:
calls reach the master, and after the master is killed the same store object reaches the
replica Sentinel promoted, with nothing acknowledged lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.accounting.model import Team
from gateway.accounting.redis_store import RedisStore
from gateway.accounting.store import StoreUnavailable
from gateway.cache.backend import BackendUnavailable
from gateway.cache.redis_backend import RedisBackend
from tests.support.redis_sentinel import RedisSentinel
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration


@dataclass
class Watched:
    master: RedisServer
    replica: RedisServer
    sentinel: RedisSentinel

    @property
    def url(self) -> str:
        return f"redis+sentinel://{self.sentinel.address}/gw/0"


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[Watched]:
    (tmp_path / "master").mkdir()
    (tmp_path / "replica").mkdir()
    master = RedisServer(tmp_path / "master", max_lifetime_s=120)
    master.start()
    replica = RedisServer(
        tmp_path / "replica",
        max_lifetime_s=120,
        extra_args=["--replicaof", "127.0.0.1", str(master.port)],
    )
    replica.start()
    sentinel = None
    try:
        sentinel = RedisSentinel(tmp_path / "sentinel", service="gw", master_port=master.port)
        yield Watched(master, replica, sentinel)
    finally:
        if sentinel is not None:
            sentinel.stop()
        replica.stop()
        master.stop()


def _wait_for_replica_link(replica: RedisServer, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    with replica.client() as client:
        while client.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica never synced with its master"
            time.sleep(0.02)


def test_store_and_cache_reach_the_master_through_sentinel(watched: Watched) -> None:
    asyncio.run(_store_and_cache_roundtrip(watched.url))
    with watched.master.client() as master:
        assert master.get("k") == b"entry"  # written to the master, not to the replica


async def _store_and_cache_roundtrip(url: str) -> None:
    store = RedisStore(url, timeout_s=2.0)
    cache = RedisBackend(url, timeout_s=2.0)
    try:
        await store.save_team(Team("alpha"))
        assert await store.team("alpha") == Team("alpha")
        assert await cache.claim("k", "k:lock", "me", 10.0) is True
        await cache.store("k", b"entry", 60.0, "k:lock", "me")
        assert await cache.get("k") == b"entry"
    finally:
        await store.aclose()
        await cache.aclose()


@pytest.mark.slow
def test_after_failover_the_same_store_reaches_the_promoted_replica(
    watched: Watched,
) -> None:
    asyncio.run(_survive_failover(watched))
    with watched.replica.client() as promoted:
        assert promoted.info("replication")["role"] == "master"


async def _survive_failover(watched: Watched) -> None:
    store = RedisStore(watched.url, timeout_s=1.0)
    try:
        await store.save_team(Team("before"))
        _wait_for_replica_link(watched.replica)
        with watched.master.client() as master:  # the replica has it before the crash
            assert master.execute_command("WAIT", 1, 1000) == 1
        watched.master.kill()
        deadline = time.monotonic() + 20.0
        failures = 0
        while True:
            try:
                await store.save_team(Team("after"))
                break
            except StoreUnavailable:
                failures += 1
                assert time.monotonic() < deadline, "no master after 20 s"
                await asyncio.sleep(0.1)
        assert failures > 0  # the outage was seen, not slept through
        assert watched.sentinel.master_port() == watched.replica.port
        assert await store.team("before") == Team("before")
        assert await store.team("after") == Team("after")
    finally:
        await store.aclose()


def test_an_unreachable_sentinel_is_a_store_outage_not_a_hang() -> None:
    started = time.monotonic()
    asyncio.run(_unreachable())
    assert time.monotonic() - started < 2.0


async def _unreachable() -> None:
    url = "redis+sentinel://127.0.0.1:1/gw/0"  # nothing listens on port 1
    store = RedisStore(url, timeout_s=0.2)
    cache = RedisBackend(url, timeout_s=0.2)
    try:
        with pytest.raises(StoreUnavailable, match="No master found"):
            await store.team("alpha")
        with pytest.raises(BackendUnavailable):
            await cache.get("k")
    finally:
        await store.aclose()
        await cache.aclose()
