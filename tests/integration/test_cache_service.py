"""ResponseCache over a real redis-server, as replicas of the gateway use it: a miss leads and
its answer is the next hit, identical misses make one upstream call (in a process and across
replicas), Redis trouble turns into misses and then bypasses, never into errors, and
corrupt, oversized, no-store and refresh cases are handled as docs/cache.md says."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY

from gateway.cache.entry import Entry
from gateway.cache.redis_backend import RedisBackend
from gateway.cache.request import CachePlan
from gateway.cache.service import Lease, Lookup, ResponseCache
from gateway.cache.settings import CacheSettings
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration

SETTINGS: dict[str, Any] = {
    "timeout_s": 0.25,  # generous: these tests are about behaviour, not Redis latency
    "retry_s": 0.5,
    "wait_s": 5.0,
    "lock_ttl_s": 30.0,
    "poll_s": 0.005,
}
FAST_S = 0.5
"""Well under wait_s (5 s): what "at once" means on a busy two-core machine."""


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis_server.client() as redis_client:
        yield redis_client


@contextlib.asynccontextmanager
async def replicas(url: str, *overrides: dict[str, Any]) -> AsyncIterator[list[ResponseCache]]:
    """One ResponseCache per ``overrides`` (a replica each) on the Redis at ``url``."""
    made = []
    for override in overrides:
        settings = CacheSettings(enabled=True, redis_url=url, **{**SETTINGS, **override})
        made.append(ResponseCache(settings, RedisBackend(url, timeout_s=settings.timeout_s)))
    try:
        yield made
    finally:
        for cache in made:
            await cache.aclose()


def plan(
    namespace: str = "research",
    alias: str = "chat",
    *,
    digest: str | None = None,
    read: bool = True,
    write: bool = True,
) -> CachePlan:
    return CachePlan(namespace, alias, digest or uuid.uuid4().hex, read, write, 60.0)


def entry(body: bytes = b'{"choices":[{"message":{"content":"4"}}]}') -> Entry:
    return Entry(body, 12, 1, time.time(), "local-a")


def lease_of(found: Lookup) -> Lease:
    assert found.lease is not None, found
    return found.lease


async def stored(
    cache: ResponseCache, plan: CachePlan, expected: Entry | None = None, timeout_s: float = 1.0
) -> Entry:
    """The entry once the background write has reached Redis (``expected``, if given)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await cache.backend.get(plan.key)
        found = None if value is None else Entry.decode(value)
        if found is not None and (expected is None or found == expected):
            return found
        assert time.monotonic() < deadline, f"{plan.key}: not stored in {timeout_s} s"
        await asyncio.sleep(0.01)


async def eventually(check: Any, timeout_s: float = 1.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- lead, fulfil, hit --------------------------------------------------------------------


def test_a_miss_leads_and_its_answer_is_the_next_hit_on_every_replica(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    p, answer = plan(), entry()

    async def scenario() -> None:
        async with replicas(redis_server.url, {}, {}) as (a, b):
            found = await a.lookup(p, "r1")
            assert (found.result, found.entry) == ("miss", None)
            lease = lease_of(found)
            assert lease.locked is True
            assert client.get(p.lock) == b"r1"
            a.fulfil(lease, answer)
            assert await stored(a, p) == answer
            assert client.exists(p.lock) == 0
            for cache, owner in ((a, "r2"), (b, "r3")):
                hit = await cache.lookup(p, owner)
                assert (hit.result, hit.entry, hit.lease) == ("hit", answer, None)

    asyncio.run(scenario())


def test_twenty_identical_lookups_in_one_replica_make_one_lease_and_share_its_answer(
    redis_server: RedisServer,
) -> None:
    p, answer = plan(), entry()

    async def scenario() -> None:
        async with replicas(redis_server.url, {}) as (a,):
            tasks = [asyncio.create_task(a.lookup(p, f"r{n}")) for n in range(20)]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            await asyncio.sleep(0.1)  # time for any other lookup to finish too, if it would
            done = {t for t in tasks if t.done()}
            assert len(done) == 1 and sum(not t.done() for t in tasks) == 19
            leader = done.pop().result()
            assert leader.result == "miss" and lease_of(leader).locked
            a.fulfil(lease_of(leader), answer)
            followers = await asyncio.wait_for(asyncio.gather(*pending), FAST_S)
            assert [f.result for f in followers] == ["hit"] * 19
            # Handed over in process, not read back from Redis: the leader's very object.
            assert all(f.entry is answer and f.lease is None for f in followers)

    asyncio.run(scenario())


# -- across replicas ----------------------------------------------------------------------


def test_a_replica_waits_for_the_other_replicas_leader_and_gets_its_answer(
    redis_server: RedisServer,
) -> None:
    p, answer = plan(), entry()

    async def scenario() -> None:
        async with replicas(redis_server.url, {}, {}) as (a, b):
            lease = lease_of(await a.lookup(p, "a1"))
            waiting = asyncio.create_task(b.lookup(p, "b1"))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            fulfilled = time.monotonic()
            a.fulfil(lease, answer)
            found = await asyncio.wait_for(waiting, FAST_S)
            assert time.monotonic() - fulfilled < FAST_S
            assert (found.result, found.entry, found.lease) == ("hit", answer, None)

    asyncio.run(scenario())


def test_a_replica_takes_over_at_once_when_the_other_replicas_leader_abandons(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    p = plan()

    async def scenario() -> None:
        async with replicas(redis_server.url, {}, {}) as (a, b):
            lease = lease_of(await a.lookup(p, "a1"))
            waiting = asyncio.create_task(b.lookup(p, "b1"))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            abandoned = time.monotonic()
            a.abandon(lease)
            found = await asyncio.wait_for(waiting, FAST_S)
            assert time.monotonic() - abandoned < FAST_S
            assert (found.result, found.entry) == ("miss", None)
            assert lease_of(found).locked is True
            assert client.get(p.lock) == b"b1"

    asyncio.run(scenario())


def test_a_replica_stops_waiting_after_wait_s_and_goes_upstream_without_the_lock(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    p, mine, theirs = plan(), entry(b'{"from":"b"}'), entry(b'{"from":"a"}')

    async def scenario() -> None:
        async with replicas(redis_server.url, {}, {"wait_s": 0.1}) as (a, b):
            lead = lease_of(await a.lookup(p, "a1"))
            started = time.monotonic()
            found = await b.lookup(p, "b1")
            assert 0.03 < time.monotonic() - started < FAST_S
            assert found.result == "miss" and lease_of(found).locked is False
            b.fulfil(lease_of(found), mine)  # stored, but a's lock is a's to free
            assert await stored(b, p) == mine
            assert client.get(p.lock) == b"a1"
            a.fulfil(lead, theirs)
            await eventually(lambda: client.exists(p.lock) == 0)

    asyncio.run(scenario())


# -- damaged, oversized -------------------------------------------------------------------


def test_a_corrupt_value_is_a_miss_is_deleted_and_is_counted(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    p, answer = plan(), entry()
    client.set(p.key, b"tg1z this is not zlib")
    before = sample("gateway_cache_corrupt_entries_total")

    async def scenario() -> None:
        async with replicas(redis_server.url, {}) as (a,):
            found = await a.lookup(p, "r1")
            assert (found.result, found.entry) == ("miss", None)
            await eventually(lambda: client.exists(p.key) == 0)
            assert sample("gateway_cache_corrupt_entries_total") == before + 1
            a.fulfil(lease_of(found), answer)  # the request went upstream: its answer is kept
            assert await stored(a, p) == answer
            assert (await a.lookup(p, "r2")).entry == answer

    asyncio.run(scenario())


def test_an_answer_over_max_entry_bytes_is_not_stored_and_its_lock_is_freed(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    p = plan()
    large = entry(b'{"content":"' + os.urandom(300).hex().encode() + b'"}')
    too_large = {"outcome": "too_large"}

    async def scenario() -> None:
        async with replicas(redis_server.url, {"max_entry_bytes": 400}) as (a,):
            before = sample("gateway_cache_writes_total", **too_large)
            a.fulfil(lease_of(await a.lookup(p, "r1")), large)
            assert sample("gateway_cache_writes_total", **too_large) == before + 1
            await eventually(lambda: client.exists(p.lock) == 0)
            assert client.exists(p.key) == 0
            again = await a.lookup(p, "r2")  # nobody waits on an answer that never comes
            assert again.result == "miss" and lease_of(again).locked

    asyncio.run(scenario())


# -- Redis failing ------------------------------------------------------------------------


async def warm_up(cache: ResponseCache, client: redis.Redis) -> None:
    """Pool a connection and load the scripts; wait until the lock is released again."""
    p = plan()
    await timed(cache, p)
    await eventually(lambda: client.exists(p.lock) == 0)


async def timed(cache: ResponseCache, p: CachePlan) -> tuple[str, float]:
    """A lookup's result and duration; a lease is given up at once (no upstream here)."""
    started = time.monotonic()
    found = await cache.lookup(p, uuid.uuid4().hex)
    elapsed = time.monotonic() - started
    if found.lease is not None:
        cache.abandon(found.lease)
    return found.result, elapsed


def claim_errors() -> float:
    return sample("gateway_cache_errors_total", operation="claim")


def test_a_killed_redis_gives_misses_then_bypasses_then_hits_again_after_a_restart(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    async def scenario() -> None:
        async with replicas(redis_server.url, {"timeout_s": 0.05, "retry_s": 0.5}) as (a,):
            await warm_up(a, client)
            redis_server.kill()
            before = claim_errors()
            failing = [await timed(a, plan()) for _ in range(3)]
            assert [result for result, _ in failing] == ["miss"] * 3
            assert max(elapsed for _, elapsed in failing) < FAST_S
            assert claim_errors() == before + 3
            skipped = [await timed(a, plan()) for _ in range(20)]
            opened = time.monotonic()
            assert {result for result, _ in skipped} == {"bypass"}
            assert max(elapsed for _, elapsed in skipped) < 0.02
            assert claim_errors() == before + 3  # Redis was not asked

            redis_server.start()
            await asyncio.sleep(max(0.0, opened + 0.5 - time.monotonic()))
            p, answer = plan(), entry()
            deadline = time.monotonic() + 3.0
            while (found := await a.lookup(p, "r1")).result != "miss":
                assert time.monotonic() < deadline, "the cache never came back"
                await asyncio.sleep(0.05)
            assert lease_of(found).locked
            a.fulfil(lease_of(found), answer)
            assert await stored(a, p) == answer
            assert (await a.lookup(p, "r2")).result == "hit"

    asyncio.run(scenario())


def test_a_hung_redis_costs_at_most_three_timeouts_then_is_bypassed(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    async def scenario() -> None:
        async with replicas(redis_server.url, {"timeout_s": 0.05, "retry_s": 10.0}) as (a,):
            await warm_up(a, client)
            os.kill(redis_server.pid, signal.SIGSTOP)  # accepts connections, answers nothing
            try:
                failing = [await timed(a, plan()) for _ in range(3)]
                skipped = [await timed(a, plan()) for _ in range(20)]
            finally:
                os.kill(redis_server.pid, signal.SIGCONT)
            assert [result for result, _ in failing] == ["miss"] * 3
            assert all(0.04 < elapsed < FAST_S for _, elapsed in failing)
            assert {result for result, _ in skipped} == {"bypass"}
            assert max(elapsed for _, elapsed in skipped) < 0.02

    asyncio.run(scenario())


def test_after_retry_s_one_lookup_probes_a_hung_redis_while_the_others_bypass(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    async def scenario() -> None:
        async with replicas(redis_server.url, {"timeout_s": 0.05, "retry_s": 0.3}) as (a,):
            await warm_up(a, client)
            os.kill(redis_server.pid, signal.SIGSTOP)
            try:
                for _ in range(3):
                    await timed(a, plan())
                await asyncio.sleep(0.35)  # the interval has passed: the next lookup probes
                before = claim_errors()
                burst = await asyncio.gather(*(timed(a, plan()) for _ in range(10)))
            finally:
                os.kill(redis_server.pid, signal.SIGCONT)
            results = sorted(result for result, _ in burst)
            assert results == ["bypass"] * 9 + ["miss"]  # the probe timed out: a miss
            assert claim_errors() == before + 1

    asyncio.run(scenario())


# -- no-store, refresh --------------------------------------------------------------------


def test_a_no_store_request_reads_but_never_leads_or_waits(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    p, answer = plan(), entry()
    no_store = plan(digest=p.digest, write=False)

    async def scenario() -> None:
        async with replicas(redis_server.url, {}, {}) as (a, b):
            found = await a.lookup(no_store, "r1")
            assert (found.result, found.entry, found.lease) == ("miss", None, None)
            assert client.exists(p.lock) == 0
            lead = lease_of(await b.lookup(p, "b1"))  # another replica is asking upstream
            started = time.monotonic()
            found = await a.lookup(no_store, "r2")
            assert time.monotonic() - started < FAST_S
            assert (found.result, found.lease) == ("miss", None)
            b.fulfil(lead, answer)
            await stored(b, p)
            assert (await a.lookup(no_store, "r3")).entry == answer

    asyncio.run(scenario())


def test_a_refresh_skips_the_lookup_and_gets_an_unlocked_lease(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    p = plan()
    refresh = plan(digest=p.digest, read=False)

    async def scenario() -> None:
        async with replicas(redis_server.url, {}) as (a,):
            a.fulfil(lease_of(await a.lookup(p, "r1")), entry(b'{"old":1}'))
            await stored(a, p)
            found = await a.lookup(refresh, "r2")
            assert (found.result, found.entry) == ("refresh", None)
            assert lease_of(found).locked is False
            assert client.exists(p.lock) == 0

    asyncio.run(scenario())


def test_fulfilling_a_refresh_replaces_the_entry(redis_server: RedisServer) -> None:
    p, old, new = plan(), entry(b'{"old":1}'), entry(b'{"new":2}')
    refresh = plan(digest=p.digest, read=False)

    async def scenario() -> None:
        async with replicas(redis_server.url, {}) as (a,):
            a.fulfil(lease_of(await a.lookup(p, "r1")), old)
            await stored(a, p)
            a.fulfil(lease_of(await a.lookup(refresh, "r2")), new)
            await stored(a, p, new)
            assert (await a.lookup(p, "r3")).entry == new

    asyncio.run(scenario())


def test_abandoning_a_refresh_keeps_the_old_entry(redis_server: RedisServer) -> None:
    p, old = plan(), entry(b'{"old":1}')
    refresh = plan(digest=p.digest, read=False)

    async def scenario() -> None:
        async with replicas(redis_server.url, {}) as (a,):
            a.fulfil(lease_of(await a.lookup(p, "r1")), old)
            await stored(a, p)
            a.abandon(lease_of(await a.lookup(refresh, "r2")))
            assert (await a.lookup(p, "r3")).entry == old

    asyncio.run(scenario())


# -- stats and purge ----------------------------------------------------------------------


def test_stats_count_entries_bytes_hits_and_misses_and_purge_deletes_one_part(
    redis_server: RedisServer,
) -> None:
    plans = {
        "research-chat-1": plan("research", "chat"),
        "research-chat-2": plan("research", "chat"),
        "research-embed": plan("research", "embed"),
        "ops-chat": plan("ops", "chat"),
        "shared-chat": plan("shared", "chat"),
    }
    answers = {
        name: entry(b'{"n":"' + name.encode() * (n + 1) + b'"}') for n, name in enumerate(plans)
    }
    size = {name: len(answers[name].encode(1024)) for name in plans}

    async def scenario() -> None:
        async with replicas(redis_server.url, {}, {}) as (a, b):
            for name, p in plans.items():  # 5 misses: research 3, ops 1, shared 1
                a.fulfil(lease_of(await a.lookup(p, name)), answers[name])
            for name, p in plans.items():
                assert await stored(a, p) == answers[name]
            for name in ("research-chat-1", "research-chat-2", "ops-chat"):  # 3 hits
                assert (await a.lookup(plans[name], "again")).result == "hit"
            held = lease_of(await a.lookup(plan("research", "chat"), "held"))  # a 6th miss
            assert held.locked  # its lock is in Redis, and is not an entry

            everything = await a.stats(None, None)
            assert everything == {
                "object": "cache.stats",
                "namespace": None,
                "alias": None,
                "entries": 5,
                "bytes": sum(size.values()),
                "hits": 3,
                "misses": 6,
                "hit_ratio": 0.3333,
                "backend": "redis",
            }
            research = await a.stats("research", None)
            assert (research["entries"], research["bytes"]) == (
                3,
                sum(size[n] for n in plans if n.startswith("research")),
            )
            assert (research["hits"], research["misses"], research["hit_ratio"]) == (2, 4, 0.3333)
            chat = await a.stats("research", "chat")
            assert (chat["entries"], chat["bytes"]) == (
                2,
                size["research-chat-1"] + size["research-chat-2"],
            )
            ops = await a.stats("ops", None)
            assert (ops["hits"], ops["misses"], ops["hit_ratio"]) == (1, 1, 0.5)

            unflushed = await b.stats(None, None)  # a's counts are a's until it flushes
            assert (unflushed["entries"], unflushed["hits"], unflushed["misses"]) == (5, 0, 0)
            assert unflushed["hit_ratio"] is None
            a.abandon(held)
            await a.aclose()  # flushes its counts
            flushed = await b.stats(None, None)
            assert (flushed["hits"], flushed["misses"]) == (3, 6)

            assert await b.purge("research", "chat") == 2
            assert (await b.stats(None, None))["entries"] == 3
            assert (await b.lookup(plans["research-embed"], "x")).result == "hit"
            assert await b.purge("research", None) == 1
            assert await b.purge(None, "chat") == 2
            assert (await b.stats(None, None))["entries"] == 0

    asyncio.run(scenario())


def test_purge_of_a_team_with_glob_characters_in_its_id_deletes_only_that_team(
    redis_server: RedisServer,
) -> None:
    teams = ["a*", "ab", "a:b", "a%2A", "[a]", "a"]

    async def scenario() -> None:
        async with replicas(redis_server.url, {}) as (a,):
            plans = {team: plan(team) for team in teams}
            for team, p in plans.items():
                a.fulfil(lease_of(await a.lookup(p, team)), entry())
            for p in plans.values():
                await stored(a, p)
            assert await a.purge("a*", None) == 1
            assert await a.purge("[a]", None) == 1
            survivors = [t for t, p in plans.items() if await a.backend.get(p.key) is not None]
            assert survivors == ["ab", "a:b", "a%2A", "a"]
            stats = await a.stats("a", None)
            assert stats["entries"] == 1

    asyncio.run(scenario())
