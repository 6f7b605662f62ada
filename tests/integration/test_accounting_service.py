"""The Accounting service: keys to principals, admissions to errors, outcomes to records, and
its behaviour when the store (a real redis-server) dies and comes back."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import replace
from decimal import Decimal

import pytest

from gateway.accounting.cost import Costing
from gateway.accounting.memory_store import MemoryStore
from gateway.accounting.model import (
    Limits,
    PeriodIds,
    Team,
    VirtualKey,
    hash_secret,
    new_secret,
)
from gateway.accounting.pricing import Price
from gateway.accounting.redis_store import RedisStore
from gateway.accounting.refusals import AccountingUnavailable, QuotaExceeded, RateLimited
from gateway.accounting.service import Accounting, Outcome, Ticket
from gateway.accounting.settings import AccountingSettings
from gateway.accounting.store import Store
from gateway.errors import AuthenticationFailed
from gateway.upstreams.base import Usage
from tests.support.deployments import local, paid
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration

GPT_4O = Price.per_million(Decimal("2.50"), Decimal("10.00"))
MINI = paid()  # $0.15 / $0.60 per million tokens


def accounting(store: Store, **settings: object) -> Accounting:
    config = replace(AccountingSettings(reference_price=GPT_4O), **settings)  # type: ignore[arg-type]
    return Accounting(config, store, Costing(GPT_4O, [MINI, local()]))


async def add_key(store: Store, team: Team, limits: Limits | None = None) -> str:
    secret = new_secret()
    await store.save_team(team)
    key = VirtualKey("key_1", hash_secret(secret), team.team_id, limits=limits or Limits())
    await store.save_key(key)
    return secret


def outcome(request_id: str, usage: Usage | None, status: int = 200) -> Outcome:
    return Outcome(request_id, "gpt-4o-mini", MINI, usage, False, status, 0.5, None, 0.0, 0.5)


async def admit(acc: Accounting, secret: str, request_id: str, output: int = 100) -> Ticket:
    principal = await acc.principal(f"Bearer {secret}", time.time())
    return await acc.admit(
        principal,
        request_id,
        "gpt-4o-mini",
        [MINI],
        prompt_bound=400,
        tokens_estimate=100,
        output_bound=output,
        now_mono=time.monotonic(),
    )


def test_keys_resolve_to_their_team_and_bad_keys_are_401() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        acc = accounting(store)
        secret = await add_key(store, Team("research"))
        principal = await acc.principal(f"Bearer {secret}", time.time())
        assert principal.team.team_id == "research" and principal.key_id == "key_1"
        for header in (None, "Bearer ", "Bearer sk-gw-unknown", f"Basic {secret}"):
            with pytest.raises(AuthenticationFailed):
                await acc.principal(header, time.time())
        key = await store.key("key_1")
        assert key is not None
        await store.save_key(replace(key, disabled=True))
        acc.forget_key("key_1")
        with pytest.raises(AuthenticationFailed, match="revoked or disabled"):
            await acc.principal(f"Bearer {secret}", time.time())

    asyncio.run(scenario())


def test_auth_off_bills_unknown_callers_to_the_default_team() -> None:
    async def scenario() -> None:
        acc = accounting(MemoryStore(), auth=False)
        assert (await acc.principal(None, time.time())).team.team_id == "default"
        assert (await acc.principal("Bearer sk-gw-x", time.time())).team.team_id == "default"

    asyncio.run(scenario())


def test_a_budget_too_small_for_the_worst_case_is_insufficient_quota() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        acc = accounting(store)
        # Worst case: 400 prompt + 100 output at mini prices = 60 + 60 = 120 micro-dollars.
        secret = await add_key(store, Team("research", Limits({"day": 240})))
        await admit(acc, secret, "r1")
        await admit(acc, secret, "r2")
        with pytest.raises(QuotaExceeded, match="research"):
            await admit(acc, secret, "r3")

    asyncio.run(scenario())


def test_settling_releases_the_unused_reservation_for_the_next_request() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        acc = accounting(store)
        secret = await add_key(store, Team("research", Limits({"day": 240})))
        acc.start()
        tickets = [await admit(acc, secret, f"r{i}") for i in (1, 2)]
        for i, ticket in enumerate(tickets, 1):
            record = acc.finish(ticket, outcome(f"r{i}", Usage(100, 10)))
            assert record.cost_micros == 21  # 100 x 0.15 + 10 x 0.60 = 15 + 6
        assert await acc.writer.flush(5.0)
        await admit(acc, secret, "r3")  # 42 spent + 120 reserved fits in 240 again
        await acc.aclose()

    asyncio.run(scenario())


def test_a_request_that_held_a_parallel_slot_is_settled_without_lingering() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        acc = accounting(store)
        acc.writer.linger_s = 60.0
        secret = await add_key(store, Team("research"), Limits(max_parallel=1))
        acc.start()
        ticket = await admit(acc, secret, "r1")
        acc.finish(ticket, outcome("r1", Usage(100, 10)))
        for _ in range(200):  # not flush(), which never lingers
            if not len(acc.writer):
                break
            await asyncio.sleep(0.01)
        assert len(acc.writer) == 0
        await admit(acc, secret, "r2")  # the slot is free again
        await acc.aclose()

    asyncio.run(scenario())


def test_rpm_refusal_is_rate_limit_exceeded_with_headers() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        acc = accounting(store)
        secret = await add_key(store, Team("research"), Limits(rpm=2))
        first = await admit(acc, secret, "r1")
        assert (b"x-ratelimit-limit-requests", b"2") in first.headers
        assert (b"x-ratelimit-remaining-requests", b"1") in first.headers
        await admit(acc, secret, "r2")
        with pytest.raises(RateLimited) as refused:
            await admit(acc, secret, "r3")
        assert refused.value.headers["x-ratelimit-remaining-requests"] == "0"
        assert int(refused.value.headers["Retry-After"]) >= 1

    asyncio.run(scenario())


def test_redis_hung_admits_open_or_refuses_closed_and_the_backlog_settles_when_it_answers(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        store = RedisStore(redis_server.url, timeout_s=0.05)
        acc = accounting(store, store_retry_s=0.05)
        closed = accounting(RedisStore(redis_server.url, timeout_s=0.05), when_store_down="closed")
        secret = await add_key(store, Team("research", Limits({"day": 10**9})))
        await closed.principal(f"Bearer {secret}", time.time())  # cached before the outage
        acc.start()
        closed.start()
        ticket = await admit(acc, secret, "before")
        acc.finish(ticket, outcome("before", Usage(100, 10)))
        assert await acc.writer.flush(5.0)

        os.kill(redis_server.pid, signal.SIGSTOP)  # hung: every call times out, nothing lost
        during = await admit(acc, secret, "during")  # the key is cached; the store is down
        assert during.admission is None
        acc.finish(during, outcome("during", Usage(200, 20)))
        with pytest.raises(AccountingUnavailable):
            await admit(closed, secret, "refused")
        assert not await acc.writer.flush(0.3)
        assert len(acc.writer) == 1
        assert len(closed.writer) == 1  # the refusal's record: it releases the admission

        os.kill(redis_server.pid, signal.SIGCONT)  # Redis runs the admissions it was sent
        assert await acc.writer.flush(10.0)
        assert await closed.writer.flush(10.0)
        records = await store.records(0, time.time() + 1)
        assert [(r.request_id, r.status, r.cost_micros) for r in records] == [
            ("before", 200, 21),
            ("during", 200, 42),
            ("refused", 503, 0),
        ]
        after = await admit(acc, secret, "after")
        assert after.admission is not None
        spent = await store.spent("research", None, after.admission.periods)
        # "before" settled to 21, "during" (served unmetered) to 42 and "refused" to 0, whether
        # Redis ran their timed-out admissions before or after their records settled, and
        # "after" holds its 120 reservation: nothing lost, nothing twice.
        assert spent["day"] == 21 + 42 + 120
        await acc.aclose()
        await closed.aclose()

    asyncio.run(scenario())


def test_a_burst_from_a_new_key_reads_the_store_once(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        store = RedisStore(redis_server.url, timeout_s=1.0)
        acc = accounting(store)
        secret = await add_key(store, Team("research"))
        with redis_server.client() as admin:
            admin.config_resetstat()
            principals = await asyncio.gather(
                *(acc.principal(f"Bearer {secret}", time.time()) for _ in range(50))
            )
            gets = admin.info("commandstats").get("cmdstat_get", {}).get("calls", 0)
        assert {p.key_id for p in principals} == {"key_1"}
        assert gets == 3  # the hash index, the key and its team: once for all 50
        await store.aclose()

    asyncio.run(scenario())


def test_a_caller_without_limits_skips_the_store_but_its_spend_still_counts(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        store = RedisStore(redis_server.url, timeout_s=1.0)
        acc = accounting(store)
        secret = await add_key(store, Team("research"))  # no budget, no limits
        await acc.principal(f"Bearer {secret}", time.time())  # cached: no read below
        acc.start()
        with redis_server.client() as admin:
            admin.config_resetstat()
            ticket = await admit(acc, secret, "free")
            scripts = admin.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
        assert ticket.admission is None and scripts == 0
        acc.finish(ticket, outcome("free", Usage(100, 10)))
        assert await acc.writer.flush(5.0)
        today = (await store.records(0, time.time() + 1))[0]
        spent = await store.spent("research", None, PeriodIds.at(today.ts))
        assert spent == {"day": 21, "month": 21, "total": 21}
        await acc.aclose()

    asyncio.run(scenario())
