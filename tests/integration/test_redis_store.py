"""RedisStore beyond the shared contract: atomic under concurrency, its key layout and expiries,
and its faults (a killed, hung or restarted redis-server) always surfacing as StoreUnavailable."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from redis.asyncio.connection import Connection

from gateway.accounting.model import (
    Admission,
    Limits,
    Period,
    PeriodIds,
    SpendRecord,
    Team,
    VirtualKey,
)
from gateway.accounting.redis_store import (
    ADMIT_LUA,
    SETTLE_LUA,
    RedisStore,
    _packing_with_hiredis,
)
from gateway.accounting.store import StoreUnavailable
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration

NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
TIMEOUT_S = 0.05
FAST_FAILURE_S = 5 * TIMEOUT_S  # "within a few timeouts", with room for a busy machine
RESEARCH = Team("research", Limits({"day": 37 * 1_000}))
KEY = VirtualKey("key_ab12", "hash-of-key_ab12", "research", limits=Limits(max_parallel=50))


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis_server.client() as redis_client:
        yield redis_client


def ask(request_id: str, *, team: Team = RESEARCH, key: VirtualKey | None = None) -> Admission:
    return Admission(request_id, team, key, 1_000, 10, NOON, 30.0)


def record(request_id: str, cost: int = 400, team_id: str = "research") -> SpendRecord:
    return SpendRecord(
        request_id, NOON + 1, "key_ab12", team_id, "chat", "gpt-4o", "openai", "paid",
        7, 3, cost, 0, cost, 900.0, 120.0, 200,
    )  # fmt: skip


@pytest.mark.parametrize(
    "command",
    [
        ("SCRIPT LOAD", "return 1"),
        (b"CLIENT SETNAME", "gw"),
        ("EVALSHA", "ab12", "1", 'k\u00e9y"\\', "x" * 7_000, 10**20, -5, 0.1, NOON + 0.125),
        ("XADD", "gw:{t:r}:ledger", "*", b"raw", "\U0001f680", ""),
    ],
    ids=["subcommand", "bytes-subcommand", "script-call", "stream-entry"],
)
def test_commands_are_packed_with_hiredis_to_the_bytes_redis_py_sends(
    command: tuple[Any, ...],
) -> None:
    hiredis_packing = _packing_with_hiredis(Connection)()
    assert b"".join(hiredis_packing.pack_command(*command)) == b"".join(
        Connection().pack_command(*command)
    )


def test_200_concurrent_admissions_admit_exactly_as_many_as_the_budget_holds(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> tuple[int, dict[Period, int]]:
        # A generous deadline: 100 connections open at once (the pool's maximum; the
        # other admissions wait for one) on a small machine.
        store = RedisStore(redis_server.url, timeout_s=5.0)
        try:
            verdicts = await asyncio.gather(*(store.admit(ask(f"r{n}")) for n in range(200)))
            spent = await store.spent("research", None, PeriodIds.at(NOON))
        finally:
            await store.aclose()
        return sum(v.admitted for v in verdicts), spent

    admitted, spent = asyncio.run(scenario())
    assert admitted == 37
    assert spent == {"day": 37_000, "month": 37_000, "total": 37_000}


def test_200_concurrent_admissions_take_exactly_the_parallel_slots_there_are(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> list[bool]:
        store = RedisStore(redis_server.url, timeout_s=5.0)
        try:
            asks = (store.admit(ask(f"r{n}", team=Team("ops"), key=KEY)) for n in range(200))
            return [v.admitted for v in await asyncio.gather(*asks)]
        finally:
            await store.aclose()

    assert sum(asyncio.run(scenario())) == 50


def test_every_key_a_script_writes_carries_the_teams_hash_tag_and_expires(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    team = Team("research", Limits({"day": 10**6}, rpm=10, tpm=1000, max_parallel=2))
    key = VirtualKey("key_ab12", "h", "research", limits=Limits(rpm=5))

    async def scenario() -> None:
        store = RedisStore(redis_server.url)
        try:
            assert (await store.admit(ask("r1", team=team, key=key))).admitted
            assert await store.settle(record("r1"))
            # Never settled (its replica died): what it holds stays until its deadline.
            assert (await store.admit(ask("r2", team=Team("research")))).admitted
        finally:
            await store.aclose()

    asyncio.run(scenario())
    names = sorted(name.decode() for name in client.scan_iter(count=1000))
    outside = [n for n in names if not n.startswith("gw:{t:research}:")]
    assert outside == ["gw:spendteams"]
    ttl_s = {name: client.ttl(name) for name in names}
    day_s = 86_400
    tag = "gw:{t:research}"
    for who in ("team:research", "key:key_ab12"):
        assert 39 * day_s < ttl_s[f"{tag}:{who}:spent:day:2026-11-30"] <= 40 * day_s
        assert 399 * day_s < ttl_s[f"{tag}:{who}:spent:month:2026-11"] <= 400 * day_s
        assert ttl_s[f"{tag}:{who}:spent:total"] == -1
        assert 110 < ttl_s[f"{tag}:{who}:rpm"] <= 120
    assert 6 * day_s < ttl_s[f"{tag}:done:r1"] <= 7 * day_s
    assert f"{tag}:held:r1" not in ttl_s  # settling deleted it
    assert 29 <= ttl_s[f"{tag}:held:r2"] <= 30  # the admission's 30 s deadline
    assert 110 < ttl_s[f"{tag}:team:research:tpm"] <= 120
    # The slot was freed by settle, so its set is gone (settle leaves no empty set).
    assert f"{tag}:team:research:slots" not in ttl_s
    assert ttl_s[f"{tag}:ledger"] == -1


def test_a_slot_set_expires_with_its_latest_deadline(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    team = Team("research", Limits(max_parallel=5))

    async def scenario() -> None:
        store = RedisStore(redis_server.url)
        try:
            short = Admission("r1", team, None, 0, 0, NOON, 30.0)
            long = Admission("r2", team, None, 0, 0, NOON + 10, 500.0)
            assert (await store.admit(short)).admitted
            assert (await store.admit(long)).admitted
        finally:
            await store.aclose()

    asyncio.run(scenario())
    assert 495 < client.ttl("gw:{t:research}:team:research:slots") <= 502


def test_the_ledger_is_trimmed_near_its_maximum_length(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    async def scenario() -> None:
        store = RedisStore(redis_server.url, ledger_max_len=10)
        try:
            for n in range(300):
                await store.settle(record(f"r{n}"))
        finally:
            await store.aclose()

    asyncio.run(scenario())
    # MAXLEN ~ trims whole stream nodes (100 entries by default), never below the maximum.
    assert 10 <= client.xlen("gw:{t:research}:ledger") <= 110


def test_a_batch_of_settlements_is_one_sadd_and_one_script_per_record(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    teams = ("research", "ops", "research", "ml", "ops")
    batch = [record(f"r{n}", team_id=t) for n, t in enumerate(teams)]

    async def scenario() -> list[bool]:
        store = RedisStore(redis_server.url)
        try:
            assert await store.settle(record("warm-up"))  # loads the script
            client.config_resetstat()
            return await store.settle_many(batch)
        finally:
            await store.aclose()

    assert asyncio.run(scenario()) == [True] * 5
    stats = client.info("commandstats")
    assert stats["cmdstat_sadd"]["calls"] == 1
    assert stats["cmdstat_evalsha"]["calls"] == 5
    assert client.smembers("gw:spendteams") == {b"research", b"ops", b"ml"}


def test_a_long_batch_goes_in_pipelines_of_64_settlements(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    batch = [record(f"r{n}", cost=1) for n in range(150)]

    async def scenario() -> list[bool]:
        store = RedisStore(redis_server.url)
        try:
            assert await store.settle(record("warm-up", cost=0))  # loads the script
            client.config_resetstat()
            return await store.settle_many(batch)
        finally:
            await store.aclose()

    assert asyncio.run(scenario()) == [True] * 150
    stats = client.info("commandstats")
    assert stats["cmdstat_sadd"]["calls"] == 3  # one per pipeline: 64 + 64 + 22
    assert stats["cmdstat_evalsha"]["calls"] == 150
    assert client.get("gw:{t:research}:team:research:spent:total") == b"150"


def test_a_script_lost_mid_batch_is_reloaded_and_only_the_refused_records_run_again(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    async def scenario() -> list[list[bool]]:
        store = RedisStore(redis_server.url, timeout_s=TIMEOUT_S)
        try:
            first = await store.settle_many([record("r1"), record("r2")])
            client.script_flush()
            again = [record(f"r{n}", cost=100) for n in range(1, 5)]
            return [first, await store.settle_many(again)]
        finally:
            await store.aclose()

    assert asyncio.run(scenario()) == [[True, True], [False, False, True, True]]
    assert client.script_exists(_sha(SETTLE_LUA)) == [True]
    assert client.xlen("gw:{t:research}:ledger") == 4
    assert client.get("gw:{t:research}:team:research:spent:total") == b"1000"


Operation = Callable[[RedisStore], Awaitable[Any]]
OPERATIONS: dict[str, Operation] = {
    "admit": lambda s: s.admit(ask("r9")),
    "settle": lambda s: s.settle(record("r9")),
    "settle_many": lambda s: s.settle_many([record("r9"), record("r8")]),
    "spend": lambda s: s.spend("team", NOON, NOON),
    "records": lambda s: s.records(NOON, NOON + 1),
    "spent": lambda s: s.spent("research", None, PeriodIds.at(NOON)),
    "save_key": lambda s: s.save_key(KEY),
    "key_by_hash": lambda s: s.key_by_hash("hash-of-key_ab12"),
    "keys": lambda s: s.keys(),
    "delete_key": lambda s: s.delete_key("key_ab12"),
    "save_team": lambda s: s.save_team(RESEARCH),
    "teams": lambda s: s.teams(),
    "delete_team": lambda s: s.delete_team("research"),
    "ping": lambda s: s.ping(),
}


async def fails_fast(store: RedisStore, operation: Operation) -> float:
    """Seconds until ``operation`` raised StoreUnavailable (and nothing else)."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await operation(store)
    return time.monotonic() - started


def test_a_killed_server_is_store_unavailable_quickly_and_a_restart_reloads_the_scripts(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    async def scenario() -> dict[str, float]:
        store = RedisStore(redis_server.url, timeout_s=TIMEOUT_S)
        try:
            assert (await store.admit(ask("r1", key=KEY))).admitted
            assert await store.settle(record("r1"))
            redis_server.kill()
            waits = {name: await fails_fast(store, op) for name, op in OPERATIONS.items()}

            await asyncio.to_thread(redis_server.start)
            digests = [_sha(ADMIT_LUA), _sha(SETTLE_LUA)]
            assert client.script_exists(*digests) == [False, False]  # a fresh script cache
            assert (await store.admit(ask("r2", key=KEY))).admitted
            assert await store.settle(record("r2", cost=100))
            assert client.script_exists(*digests) == [True, True]
            assert await store.spent("research", "key_ab12", PeriodIds.at(NOON)) == {
                "day": 100,
                "month": 100,
                "total": 100,
            }
            return waits
        finally:
            await store.aclose()

    waits = asyncio.run(scenario())
    assert {name: wait for name, wait in waits.items() if wait > FAST_FAILURE_S} == {}


def test_a_hung_server_is_store_unavailable_after_the_timeout_then_recovers(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> dict[str, float]:
        store = RedisStore(redis_server.url, timeout_s=TIMEOUT_S)
        try:
            await store.ping()
            os.kill(redis_server.pid, signal.SIGSTOP)  # accepts connections, answers nothing
            try:
                waits = {name: await fails_fast(store, op) for name, op in OPERATIONS.items()}
            finally:
                os.kill(redis_server.pid, signal.SIGCONT)
            assert (await store.admit(ask("r1"))).admitted
            return waits
        finally:
            await store.aclose()

    waits = asyncio.run(scenario())
    assert all(TIMEOUT_S * 0.9 <= wait for wait in waits.values()), waits
    assert {name: wait for name, wait in waits.items() if wait > FAST_FAILURE_S} == {}


def test_no_call_reads_the_late_reply_of_a_call_its_deadline_interrupted(
    redis_server: RedisServer,
) -> None:
    ops = Team("ops", Limits(rpm=1_000))

    async def scenario() -> None:
        store = RedisStore(redis_server.url, timeout_s=TIMEOUT_S, max_connections=4)
        try:
            await store.save_team(RESEARCH)
            await store.save_key(KEY)
            os.kill(redis_server.pid, signal.SIGSTOP)
            try:
                for name, operation in OPERATIONS.items():
                    if name not in ("delete_team", "delete_key"):
                        await fails_fast(store, operation)
            finally:
                os.kill(redis_server.pid, signal.SIGCONT)
            await asyncio.sleep(0.2)  # the interrupted calls' replies arrive now
            for n in range(20):
                assert await store.team("research") == RESEARCH
                verdict = await store.admit(ask(f"late{n}", team=ops))
                assert verdict.admitted and verdict.requests is not None
                assert verdict.requests.remaining == 1_000 - n - 1
                assert await store.keys() == [KEY]
                assert await store.settle(record(f"late{n}", team_id="ops"))
        finally:
            await store.aclose()

    asyncio.run(scenario())


def test_an_admission_redis_runs_after_the_caller_gave_up_is_refunded_by_its_settlement(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    """A hung Redis: the admission times out (the gateway serves the request unmetered or
    refuses it), and Redis runs it when it wakes. The request's settlement, which knows
    nothing of the admission, gives it all back: the reservation, the slot, the tokens."""
    team = Team("research", Limits({"day": 10**6}, tpm=1_000, max_parallel=1))
    tag = "gw:{t:research}"

    async def scenario() -> None:
        store = RedisStore(redis_server.url, timeout_s=TIMEOUT_S)
        try:
            assert (await store.admit(ask("warm-up", team=Team("ops")))).admitted  # the script
            os.kill(redis_server.pid, signal.SIGSTOP)
            try:
                await fails_fast(store, lambda s: s.admit(ask("r1", team=team)))
            finally:
                os.kill(redis_server.pid, signal.SIGCONT)
            await asyncio.sleep(0.2)  # Redis runs the admission it had received
            periods = PeriodIds.at(NOON)
            assert (await store.spent("research", None, periods))["day"] == 1_000
            assert client.exists(f"{tag}:held:r1") == 1
            unused = replace(record("r1"), input_tokens=0, output_tokens=0, cost_micros=0)
            assert await store.settle(unused)
            assert await store.spent("research", None, periods) == {
                "day": 0,
                "month": 0,
                "total": 0,
            }
            assert client.exists(f"{tag}:held:r1", f"{tag}:team:research:slots") == 0
            assert client.hget(f"{tag}:team:research:tpm", str(int(NOON))) == b"0"
        finally:
            await store.aclose()

    asyncio.run(scenario())


def test_a_tpm_bucket_found_below_the_tokens_held_is_corrected_to_zero_not_below(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    # Settlements only ever take back a bucket's own tokens; a bucket lowered outside them
    # (by hand) still never goes negative.
    team = Team("research", Limits(tpm=1_000))
    bucket = ("gw:{t:research}:team:research:tpm", str(int(NOON)))

    async def scenario() -> None:
        store = RedisStore(redis_server.url)
        try:
            assert (await store.admit(ask("r1", team=team))).admitted  # 10 tokens
            client.hset(*bucket, "3")
            unused = replace(record("r1"), input_tokens=0, output_tokens=0)
            assert await store.settle(unused)
        finally:
            await store.aclose()

    asyncio.run(scenario())
    assert client.hget(*bucket) == b"0"


def test_a_flushed_script_cache_is_reloaded_transparently(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    async def scenario() -> None:
        store = RedisStore(redis_server.url, timeout_s=TIMEOUT_S)
        try:
            assert (await store.admit(ask("r1"))).admitted
            client.script_flush()
            assert (await store.admit(ask("r2"))).admitted
            client.script_flush()
            assert await store.settle(record("r1"))
        finally:
            await store.aclose()

    asyncio.run(scenario())


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()
