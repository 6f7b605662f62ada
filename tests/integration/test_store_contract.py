"""The accounting Store contract, run against MemoryStore and RedisStore (a real redis-server).

Time is driven through ``admitted_at`` and ``ts`` (both stores take the gateway's clock, never
Redis TIME), so windows slide, slots expire and periods turn over without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from gateway.accounting.memory_store import MemoryStore
from gateway.accounting.model import (
    DEFAULT_TEAM,
    Admission,
    Limits,
    Period,
    PeriodIds,
    RateState,
    Source,
    SpendRecord,
    SpendRow,
    Team,
    VirtualKey,
)
from gateway.accounting.redis_store import RedisStore
from gateway.accounting.store import Store
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration

T = TypeVar("T")
StoreFactory = Callable[[], Store]

NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
"""A Monday noon, UTC: 12 h to the next day, 12 h + 0 days to the next month (Dec 1)."""
DAY = 86_400.0
USD = 1_000_000


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """Builds the store under test inside the test's event loop."""
    if request.param == "memory":
        yield MemoryStore
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    yield lambda: RedisStore(server.url, timeout_s=2.0)


def run(make_store: StoreFactory, scenario: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``scenario`` on a fresh store in a new event loop; close the store afterwards."""

    async def main() -> T:
        store = make_store()
        try:
            return await scenario(store)
        finally:
            await store.aclose()

    return asyncio.run(main())


def team(team_id: str = "research", **limits: Any) -> Team:
    return Team(team_id, Limits(**limits))


def key(key_id: str = "key_ab12", team_id: str = "research", **limits: Any) -> VirtualKey:
    return VirtualKey(key_id, f"hash-of-{key_id}", team_id, limits=Limits(**limits))


def admission(
    request_id: str,
    *,
    of: Team,
    key: VirtualKey | None = None,
    reserve: int = 0,
    tokens: int = 0,
    at: float = NOON,
    deadline_s: float = 300.0,
) -> Admission:
    return Admission(request_id, of, key, reserve, tokens, at, deadline_s)


def record(
    request_id: str,
    *,
    team_id: str = "research",
    key_id: str = "key_ab12",
    cost: int = 0,
    tokens: tuple[int, int] = (0, 0),
    ts: float = NOON,
    alias: str = "chat",
    deployment: str = "gpt-4o",
    source: Source = "paid",
    reference: int = 0,
    shadow: int = 0,
) -> SpendRecord:
    return SpendRecord(
        request_id=request_id,
        ts=ts,
        key_id=key_id,
        team_id=team_id,
        alias=alias,
        deployment=deployment,
        provider="openai" if source == "paid" else "vllm",
        source=source,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cost_micros=cost,
        shadow_micros=shadow,
        reference_micros=reference,
        latency_ms=812.25,
        ttft_ms=None if request_id.endswith("0") else 101.5,
        status=200,
    )


def spent(day: int = 0, month: int = 0, total: int = 0) -> dict[Period, int]:
    return {"day": day, "month": month, "total": total}


# --- budgets ----------------------------------------------------------------------------


def test_budget_admits_to_the_exact_limit_and_refuses_one_micro_more(
    make_store: StoreFactory,
) -> None:
    research = team(budget_micros={"day": 5 * USD})

    async def scenario(store: Store) -> None:
        first = await store.admit(admission("r1", of=research, reserve=4_999_000))
        assert first.admitted
        assert (first.budget_left_micros, first.budget_total_micros) == (1_000, 5 * USD)
        assert first.team_budget_left_micros == 1_000
        assert first.team_budget_used_ratio == 4_999_000 / (5 * USD)

        refused = await store.admit(admission("r2", of=research, reserve=12_000))
        assert not refused.admitted
        assert refused.refusal == "budget"
        assert refused.detail == (
            "team 'research' daily budget of $5.000000 is used up ($4.999000 spent or reserved;"
            " this request may cost up to $0.012000)"
        )
        assert refused.retry_after_s == 12 * 3600  # to the next UTC midnight

        refused = await store.admit(admission("r3", of=research, reserve=1_001))
        assert refused.refusal == "budget"
        exact = await store.admit(admission("r4", of=research, reserve=1_000))
        assert exact.admitted and exact.budget_left_micros == 0
        free = await store.admit(admission("r5", of=research, reserve=0))
        assert free.admitted  # nothing more to reserve still fits: +0 is not over
        assert not (await store.admit(admission("r6", of=research, reserve=1))).admitted
        assert await store.spent("research", None, PeriodIds.at(NOON)) == spent(
            5 * USD, 5 * USD, 5 * USD
        )

    run(make_store, scenario)


def test_a_refusal_writes_nothing_not_even_the_checks_that_passed(
    make_store: StoreFactory,
) -> None:
    research = team(budget_micros={"month": 1_000})
    ab12 = key(rpm=1, tpm=100, max_parallel=1)

    async def scenario(store: Store) -> None:
        big = admission("big", of=research, key=ab12, reserve=1_001, tokens=100)
        refused = await store.admit(big)
        assert refused.refusal == "budget"
        assert refused.detail.startswith("team 'research' monthly budget of $0.001000")
        assert refused.retry_after_s == 12 * 3600  # Dec 1 is the next midnight
        # The key's slot, request and tokens were not counted: all of them fit now.
        fits = await store.admit(replace(big, request_id="fits", reserve_micros=1_000))
        assert fits.admitted
        # Nor is anything held for it: its record (429, nothing spent) gives nothing back.
        assert await store.settle(replace(record("big"), status=429))
        assert await store.spent("research", "key_ab12", PeriodIds.at(NOON)) == spent(
            1_000, 1_000, 1_000
        )

    run(make_store, scenario)


def test_total_budget_refusal_has_no_retry_after(make_store: StoreFactory) -> None:
    research = team(budget_micros={"total": 10})

    async def scenario(store: Store) -> None:
        refused = await store.admit(admission("r1", of=research, reserve=11))
        assert refused.refusal == "budget"
        assert refused.retry_after_s is None
        assert "team 'research' total budget of $0.000010 is used up" in refused.detail

    run(make_store, scenario)


def test_a_key_budget_refuses_before_the_team_is_checked(make_store: StoreFactory) -> None:
    research = team(budget_micros={"day": 100 * USD})
    ab12 = key(budget_micros={"day": USD, "total": 50 * USD})

    async def scenario(store: Store) -> None:
        admitted = await store.admit(admission("r1", of=research, key=ab12, reserve=USD // 4))
        assert admitted.budget_left_micros == 3 * USD // 4  # the key's day is the tightest
        assert admitted.budget_total_micros == USD
        assert admitted.team_budget_left_micros == 100 * USD - USD // 4
        assert admitted.team_budget_used_ratio == (USD // 4) / (
            100 * USD
        )  # the team's, not the key's
        refused = await store.admit(admission("r2", of=research, key=ab12, reserve=USD))
        assert refused.refusal == "budget"
        assert refused.detail.startswith("key 'key_ab12' daily budget of $1.000000")
        assert "hash-of" not in refused.detail

    run(make_store, scenario)


def test_a_failed_request_refunds_its_reservation_and_a_cheap_one_the_difference(
    make_store: StoreFactory,
) -> None:
    research = team(budget_micros={"day": 2 * USD})
    ab12 = key()

    async def scenario(store: Store) -> None:
        periods = PeriodIds.at(NOON)
        failed = admission("r1", of=research, key=ab12, reserve=USD)
        cheap = admission("r2", of=research, key=ab12, reserve=USD)
        assert (await store.admit(failed)).admitted
        assert (await store.admit(cheap)).admitted
        assert not (await store.admit(admission("r3", of=research, reserve=1))).admitted

        assert await store.settle(replace(record("r1"), status=502))
        assert await store.settle(record("r2", cost=300))
        assert await store.spent("research", None, periods) == spent(300, 300, 300)
        assert await store.spent("research", "key_ab12", periods) == spent(300, 300, 300)
        again = await store.admit(admission("r3", of=research, reserve=2 * USD - 300))
        assert again.admitted and again.budget_left_micros == 0

    run(make_store, scenario)


def test_settle_is_idempotent_by_request_id(make_store: StoreFactory) -> None:
    research = team()

    async def scenario(store: Store) -> None:
        first = admission("r1", of=research, reserve=500)
        await store.admit(first)
        assert await store.settle(record("r1", cost=200, tokens=(10, 5))) is True
        assert await store.settle(record("r1", cost=200, tokens=(10, 5))) is False
        assert await store.settle(record("r1", cost=999)) is False
        assert await store.spent("research", None, PeriodIds.at(NOON)) == spent(200, 200, 200)
        assert len(await store.records(NOON - DAY, NOON + DAY)) == 1
        rows = await store.spend("team", NOON, NOON)
        assert rows == [SpendRow("research", 1, 10, 5, 200, 0, 0, 0)]

    run(make_store, scenario)


def test_settle_many_answers_per_item_in_order_once_per_request_id(
    make_store: StoreFactory,
) -> None:
    research = team(tpm=1_000, budget_micros={"day": USD})
    ab12 = key(max_parallel=1)

    async def scenario(store: Store) -> None:
        held = admission("r1", of=research, key=ab12, reserve=500, tokens=600)
        assert (await store.admit(held)).admitted
        batch = [
            record("r1", cost=200, tokens=(60, 40)),
            record("o1", team_id="ops", key_id="k9", cost=70, ts=NOON + 1),
            record("r1", cost=999, tokens=(500, 500)),  # the same request again
            record("r2", cost=30, ts=NOON + 2),  # never admitted
        ]
        assert await store.settle_many(batch) == [True, True, False, True]
        assert await store.settle_many([]) == []

        periods = PeriodIds.at(NOON)
        assert await store.spent("research", None, periods) == spent(230, 230, 230)
        assert await store.spent("research", "key_ab12", periods) == spent(230, 230, 230)
        assert await store.spent("ops", None, periods) == spent(70, 70, 70)
        assert await store.spend("team", NOON, NOON) == [
            SpendRow("research", 2, 60, 40, 230),
            SpendRow("ops", 1, cost_micros=70),
        ]
        found = await store.records(NOON - DAY, NOON + DAY)
        assert [r.request_id for r in found] == ["r1", "o1", "r2"]
        assert found[0] == batch[0]
        # r1's slot is free and its tokens corrected to the 100 it used.
        after = await store.admit(admission("r3", of=research, key=ab12, tokens=0, at=NOON + 3))
        assert after.admitted
        assert after.tokens == RateState(1_000, 900, 57.0)

    run(make_store, scenario)


def test_settling_a_batch_again_changes_nothing_and_settles_only_the_new_ones(
    make_store: StoreFactory,
) -> None:
    # What the ledger writer does when a batch failed part way: it sends the whole batch again.
    async def scenario(store: Store) -> None:
        batch = [
            record(f"r{n}", team_id=("research", "ops")[n % 2], cost=10 * n) for n in range(1, 7)
        ]
        assert await store.settle_many(batch[:3]) == [True] * 3
        assert await store.settle_many(batch) == [False] * 3 + [True] * 3
        assert await store.settle_many(batch) == [False] * 6
        periods = PeriodIds.at(NOON)
        assert await store.spent("research", None, periods) == spent(120, 120, 120)
        assert await store.spent("ops", None, periods) == spent(90, 90, 90)
        assert len(await store.records(NOON - DAY, NOON + DAY)) == 6
        rows = await store.spend("team", NOON, NOON)
        assert [(row.group, row.requests) for row in rows] == [("research", 3), ("ops", 3)]

    run(make_store, scenario)


def test_a_reservation_settled_after_midnight_adjusts_the_day_it_was_made(
    make_store: StoreFactory,
) -> None:
    late = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC).timestamp()
    research = team(budget_micros={"day": 10_000})
    ab12 = key()

    async def scenario(store: Store) -> None:
        made = admission("r1", of=research, key=ab12, reserve=5_000, at=late)
        assert (await store.admit(made)).admitted
        refused = await store.admit(admission("r0", of=research, reserve=5_001, at=late))
        assert refused.retry_after_s == 1.0
        assert await store.settle(record("r1", cost=400, ts=late + 6))

        november, december = PeriodIds.at(late), PeriodIds.at(late + 6)
        assert await store.spent("research", None, november) == spent(400, 400, 400)
        assert await store.spent("research", "key_ab12", november) == spent(400, 400, 400)
        assert await store.spent("research", None, december) == spent(0, 0, 400)
        # The day totals count the record on the day it finished.
        assert await store.spend("team", late, late) == []
        assert [r.cost_micros for r in await store.spend("team", late + 6, late + 6)] == [400]

    run(make_store, scenario)


def test_settle_without_admission_charges_the_records_periods(make_store: StoreFactory) -> None:
    async def scenario(store: Store) -> None:
        yesterday = NOON - DAY
        assert await store.settle(record("r1", cost=70, ts=yesterday))
        assert await store.settle(record("r2", key_id="-", cost=30, ts=yesterday))
        periods = PeriodIds.at(yesterday)
        assert await store.spent("research", None, periods) == spent(100, 100, 100)
        assert await store.spent("research", "key_ab12", periods) == spent(70, 70, 70)
        assert await store.spent("research", "-", periods) == spent(0, 0, 0)
        assert await store.spent("research", None, PeriodIds.at(NOON)) == spent(0, 100, 100)

    run(make_store, scenario)


def test_a_settlement_gives_back_what_its_admission_held_knowing_only_the_record(
    make_store: StoreFactory,
) -> None:
    # The caller may have given up on the admission (it timed out) while the store applied
    # it: the request, served unmetered, settles with its record alone and is refunded.
    research = team(tpm=1_000, max_parallel=1, budget_micros={"day": USD})
    ab12 = key(tpm=500, max_parallel=1)

    async def scenario(store: Store) -> None:
        await store.admit(admission("r1", of=research, key=ab12, reserve=500, tokens=400))
        assert await store.settle(record("r1", cost=120, tokens=(30, 20)))
        periods = PeriodIds.at(NOON)
        assert await store.spent("research", None, periods) == spent(120, 120, 120)
        assert await store.spent("research", "key_ab12", periods) == spent(120, 120, 120)
        # Both slots are free again and both TPM windows hold the 50 tokens used.
        after = await store.admit(admission("r2", of=research, key=ab12, at=NOON + 1))
        assert after.admitted
        assert after.tokens == RateState(500, 450, 59.0)  # the key's, the tighter
        assert after.budget_left_micros == USD - 120

    run(make_store, scenario)


def test_an_admission_the_store_runs_after_its_settlement_writes_nothing(
    make_store: StoreFactory,
) -> None:
    # Its reply was lost: the request was served unmetered and settled before the store ran
    # the admission. It reserves nothing, takes no slot, counts no request and no tokens.
    research = team(rpm=2, tpm=1_000, max_parallel=1, budget_micros={"day": USD})
    ab12 = key(max_parallel=1)

    async def scenario(store: Store) -> None:
        assert await store.settle(record("r1", cost=70, tokens=(30, 20)))
        late = admission("r1", of=research, key=ab12, reserve=500, tokens=600)
        assert (await store.admit(late)).admitted
        periods = PeriodIds.at(NOON)
        assert await store.spent("research", None, periods) == spent(70, 70, 70)
        assert await store.spent("research", "key_ab12", periods) == spent(70, 70, 70)
        ask = admission("r2", of=research, key=ab12, reserve=USD - 70, tokens=1_000, at=NOON + 1)
        verdict = await store.admit(ask)
        assert verdict.admitted and verdict.budget_left_micros == 0
        assert verdict.requests == RateState(2, 1, 60.0)
        assert verdict.tokens == RateState(1_000, 0, 60.0)
        assert await store.settle(record("r1", cost=999)) is False
        assert await store.spent("research", None, periods) == spent(USD, USD, USD)

    run(make_store, scenario)


def test_a_reservation_not_settled_within_its_deadline_stays_counted(
    make_store: StoreFactory,
) -> None:
    # Its replica died (or its settlement came too late): what the admission held expires
    # with its deadline; the reservation stays counted, never refunded twice or overspent.
    research = team(budget_micros={"day": USD})
    ab12 = key(max_parallel=1)

    async def scenario(store: Store) -> None:
        gone = admission("r1", of=research, key=ab12, reserve=500, deadline_s=0.05)
        assert (await store.admit(gone)).admitted
        await asyncio.sleep(0.3)
        # The slot expired at the deadline too (by the gateway's clock).
        assert (await store.admit(admission("r2", of=research, key=ab12, at=NOON + 1))).admitted
        assert await store.settle(record("r1", cost=120))
        periods = PeriodIds.at(NOON)
        assert await store.spent("research", None, periods) == spent(620, 620, 620)
        assert await store.spent("research", "key_ab12", periods) == spent(620, 620, 620)
        # Settling r1 late freed nothing of r2's.
        refused = await store.admit(admission("r3", of=research, key=ab12, at=NOON + 2))
        assert refused.refusal == "parallel"

    run(make_store, scenario)


def test_a_budget_set_later_applies_to_what_was_spent_before(make_store: StoreFactory) -> None:
    async def scenario(store: Store) -> None:
        unlimited = admission("r1", of=team(), key=key(), reserve=3 * USD)
        assert (await store.admit(unlimited)).admitted
        await store.settle(record("r1", cost=3 * USD))

        limited = team(budget_micros={"day": 4 * USD})
        assert not (await store.admit(admission("r2", of=limited, reserve=USD + 1))).admitted
        assert (await store.admit(admission("r3", of=limited, reserve=USD))).admitted
        key_limited = key(budget_micros={"month": 3 * USD})
        refused = await store.admit(admission("r4", of=team(), key=key_limited, reserve=1))
        assert refused.detail.startswith("key 'key_ab12' monthly budget of $3.000000")

    run(make_store, scenario)


# --- rate limits and parallel slots -----------------------------------------------------


def test_rpm_refuses_at_the_limit_and_the_window_slides_with_time(
    make_store: StoreFactory,
) -> None:
    research = team()
    ab12 = key(rpm=3)

    async def scenario(store: Store) -> None:
        states = []
        for n, offset in enumerate((0.0, 10.5, 20.0)):
            verdict = await store.admit(admission(f"r{n}", of=research, key=ab12, at=NOON + offset))
            assert verdict.admitted
            states.append(verdict.requests)
        assert states == [
            RateState(3, 2, 60.0),
            RateState(3, 1, 49.5),
            RateState(3, 0, 40.0),
        ]
        refused = await store.admit(admission("r3", of=research, key=ab12, at=NOON + 30))
        assert refused.refusal == "requests"
        assert refused.detail == "key 'key_ab12' limit of 3 requests per minute reached"
        assert refused.retry_after_s == 30.0
        almost = await store.admit(admission("r4", of=research, key=ab12, at=NOON + 59.75))
        assert almost.refusal == "requests" and almost.retry_after_s == 0.25
        slid = await store.admit(admission("r5", of=research, key=ab12, at=NOON + 60))
        assert slid.admitted
        assert slid.requests == RateState(3, 0, 10.0)  # NOON+10's bucket leaves at NOON+70

    run(make_store, scenario)


def test_the_tightest_rate_window_is_reported(make_store: StoreFactory) -> None:
    research = team(rpm=5, tpm=10_000)
    ab12 = key(rpm=10, tpm=1_000)

    async def scenario(store: Store) -> None:
        verdict = await store.admit(admission("r1", of=research, key=ab12, tokens=400))
        assert verdict.requests == RateState(5, 4, 60.0)  # the team's
        assert verdict.tokens == RateState(1_000, 600, 60.0)  # the key's
        assert verdict.budget_left_micros is None and verdict.team_budget_left_micros is None
        bare = await store.admit(admission("r2", of=team("other")))
        assert (bare.requests, bare.tokens, bare.budget_total_micros) == (None, None, None)

    run(make_store, scenario)


def test_tpm_counts_reserved_tokens_and_settle_corrects_them(make_store: StoreFactory) -> None:
    research = team(tpm=1_000)

    async def scenario(store: Store) -> None:
        first = admission("r1", of=research, tokens=600, at=NOON + 0.5)
        assert (await store.admit(first)).tokens == RateState(1_000, 400, 59.5)
        refused = await store.admit(admission("r2", of=research, tokens=500, at=NOON + 1))
        assert refused.refusal == "tokens"
        assert refused.detail == (
            "team 'research' limit of 1000 tokens per minute reached"
            " (600 used in the last minute; this request counts 500)"
        )
        assert refused.retry_after_s == 59.0
        never = await store.admit(admission("r3", of=research, tokens=1_001, at=NOON + 1))
        assert never.refusal == "tokens" and never.retry_after_s is None

        # Only 100 tokens were used: the bucket of r1's second drops by 500.
        assert await store.settle(record("r1", tokens=(60, 40)))
        fits = await store.admit(admission("r4", of=research, tokens=500, at=NOON + 2))
        assert fits.tokens == RateState(1_000, 400, 58.0)
        # Settling with more tokens than reserved takes the bucket up, with none down to 0.
        r5 = admission("r5", of=research, tokens=100, at=NOON + 3)
        r6 = admission("r6", of=research, tokens=100, at=NOON + 3)
        assert (await store.admit(r5)).admitted and (await store.admit(r6)).admitted
        assert await store.settle(record("r5", tokens=(200, 100)))
        assert await store.settle(record("r6", tokens=(0, 0)))
        after = await store.admit(admission("r7", of=research, tokens=0, at=NOON + 3))
        # In the window: r1's 100, r4's 500, r5's 300 and r6's 0 tokens.
        assert after.tokens == RateState(1_000, 100, 57.0)

    run(make_store, scenario)


def test_parallel_slots_free_on_settle_and_expire_at_their_deadline(
    make_store: StoreFactory,
) -> None:
    research = team()
    ab12 = key(max_parallel=2)

    def ask(request_id: str, at: float = NOON) -> Admission:
        return admission(request_id, of=research, key=ab12, at=at, deadline_s=30.0)

    async def scenario(store: Store) -> None:
        assert (await store.admit(ask("r1"))).admitted
        assert (await store.admit(ask("r2", NOON + 1))).admitted
        refused = await store.admit(ask("r3", NOON + 2))
        assert refused.refusal == "parallel"
        assert refused.detail == "key 'key_ab12' limit of 2 parallel requests reached"
        assert await store.settle(record("r1"))
        assert (await store.admit(ask("r3", NOON + 2))).admitted
        assert (await store.admit(ask("r4", NOON + 30.9))).refusal == "parallel"
        # r2 was never settled (a crashed replica): its slot expires at NOON + 31.
        assert (await store.admit(ask("r4", NOON + 31))).admitted

    run(make_store, scenario)


def test_a_team_slot_limit_counts_all_its_keys(make_store: StoreFactory) -> None:
    research = team(max_parallel=1)

    async def scenario(store: Store) -> None:
        assert (await store.admit(admission("r1", of=research, key=key("k1")))).admitted
        refused = await store.admit(admission("r2", of=research, key=key("k2")))
        assert refused.detail == "team 'research' limit of 1 parallel requests reached"

    run(make_store, scenario)


# --- spend totals and the ledger --------------------------------------------------------


def test_spend_groups_sums_over_teams_and_days_and_ranks_by_cost(
    make_store: StoreFactory,
) -> None:
    async def scenario(store: Store) -> None:
        await store.save_team(team("research"))
        settled = [
            record("a1", cost=300, tokens=(100, 10), ts=NOON - DAY),
            record("a2", cost=200, tokens=(50, 5), ts=NOON, alias="code", deployment="claude"),
            record(
                "a3", key_id="k2", ts=NOON + 60, source="local", deployment="qwen", reference=90
            ),
            record("b1", team_id="ops", key_id="k9", cost=200, ts=NOON, deployment="claude"),
            record("c1", team_id=DEFAULT_TEAM, key_id="-", cost=1, ts=NOON + DAY),
        ]
        for settled_record in settled:
            assert await store.settle(settled_record)

        by_deployment = await store.spend("deployment", NOON - DAY, NOON + DAY)
        assert by_deployment == [
            SpendRow("claude", 2, 50, 5, 400),
            SpendRow("gpt-4o", 2, 100, 10, 301),
            SpendRow("qwen", 1, reference_micros=90, savings_micros=90),
        ]
        assert await store.spend("team", NOON - 1, NOON + 1) == [
            SpendRow("ops", 1, cost_micros=200),
            SpendRow("research", 2, 50, 5, 200, reference_micros=90, savings_micros=90),
        ]
        assert await store.spend("key", NOON, NOON, team_id="research") == [
            SpendRow("key_ab12", 1, 50, 5, 200),
            SpendRow("k2", 1, reference_micros=90, savings_micros=90),
        ]
        aliases = await store.spend("alias", NOON - DAY, NOON + DAY, team_id="research")
        assert [(row.group, row.cost_micros) for row in aliases] == [("chat", 300), ("code", 200)]
        assert await store.spend("team", NOON + 2 * DAY, NOON + 3 * DAY) == []
        assert await store.spend("team", NOON, NOON - DAY) == []

    run(make_store, scenario)


def test_records_come_back_whole_oldest_first_across_teams_within_the_range(
    make_store: StoreFactory,
) -> None:
    async def scenario(store: Store) -> None:
        written = [
            record("r3", ts=NOON + 3),
            record("o1", team_id="ops", key_id="k9", ts=NOON + 1.5, cost=7),
            record("r1", ts=NOON, tokens=(12, 34), cost=5),
            record("r0", ts=NOON - 1),
            record("d2", team_id=DEFAULT_TEAM, key_id="-", ts=NOON + 2, source="cache"),
            record("r4", ts=NOON + 4),
        ]
        for settled in written:
            await store.settle(settled)
        found = await store.records(NOON, NOON + 4)
        assert [r.request_id for r in found] == ["r1", "o1", "d2", "r3"]
        assert found[0] == written[2]
        assert [r.request_id for r in await store.records(NOON, NOON + 4, "research")] == [
            "r1",
            "r3",
        ]
        assert await store.records(NOON + 5, NOON + 6) == []

    run(make_store, scenario)


def test_names_with_quotes_backslashes_and_non_ascii_survive_admission_and_settlement(
    make_store: StoreFactory,
) -> None:
    odd = 'ré"search\\ \u00e9\u4e2d\U0001f680'
    research = team(odd, rpm=5, max_parallel=2)
    ab12 = key('k"1\\\u00e9', team_id=odd, tpm=1_000)

    async def scenario(store: Store) -> None:
        held = admission('r"1\\\U0001f680', of=research, key=ab12, reserve=50, tokens=100)
        assert (await store.admit(held)).admitted
        settled = replace(
            record(held.request_id, team_id=odd, key_id=ab12.key_id, cost=40, tokens=(3, 4)),
            alias='ch"at\\\u00e9',
            deployment="gpt\t\u4e2d",
        )
        assert await store.settle(settled)
        assert await store.records(NOON - DAY, NOON + DAY, odd) == [settled]
        assert [r.group for r in await store.spend("alias", NOON, NOON, odd)] == [settled.alias]
        assert [r.group for r in await store.spend("key", NOON, NOON, odd)] == [ab12.key_id]
        assert await store.spent(odd, ab12.key_id, PeriodIds.at(NOON)) == spent(40, 40, 40)
        after = await store.admit(admission("r2", of=research, key=ab12, at=NOON + 1))
        assert after.tokens == RateState(1_000, 993, 59.0)  # corrected to the 7 used

    run(make_store, scenario)


# --- teams and keys ---------------------------------------------------------------------


def test_teams_are_saved_replaced_listed_by_id_and_deleted(make_store: StoreFactory) -> None:
    async def scenario(store: Store) -> None:
        research = Team("research", Limits({"day": 5, "total": 9}, 60, 1000, 4), {"cc": "42"}, 1.5)
        await store.save_team(research)
        await store.save_team(team("ops"))
        await store.save_team(replace(research, metadata={"cc": "43"}))
        assert await store.team("research") == replace(research, metadata={"cc": "43"})
        assert [t.team_id for t in await store.teams()] == ["ops", "research"]
        assert await store.delete_team("ops") is True
        assert await store.delete_team("ops") is False
        assert await store.team("ops") is None
        assert [t.team_id for t in await store.teams()] == ["research"]

    run(make_store, scenario)


def test_a_replaced_secret_no_longer_finds_the_key_and_deletion_drops_both(
    make_store: StoreFactory,
) -> None:
    async def scenario(store: Store) -> None:
        ab12 = replace(key(rpm=5), name="ci", hint="sk-gw-...wxyz", aliases=("chat",))
        await store.save_key(ab12)
        await store.save_key(key("key_00", team_id="ops"))
        assert await store.key_by_hash("hash-of-key_ab12") == ab12
        rotated = replace(ab12, secret_hash="new-hash")
        await store.save_key(rotated)
        assert await store.key_by_hash("hash-of-key_ab12") is None
        assert await store.key_by_hash("new-hash") == rotated
        assert await store.key("key_ab12") == rotated
        assert [k.key_id for k in await store.keys()] == ["key_00", "key_ab12"]
        assert [k.key_id for k in await store.keys("ops")] == ["key_00"]
        assert await store.delete_key("key_ab12") is True
        assert await store.delete_key("key_ab12") is False
        assert await store.key("key_ab12") is None
        assert await store.key_by_hash("new-hash") is None
        assert [k.key_id for k in await store.keys()] == ["key_00"]
        await store.ping()

    run(make_store, scenario)


def test_large_round_amounts_are_counted_to_the_micro_dollar(make_store: StoreFactory) -> None:
    # Round powers of ten are where a script writing numbers in exponent form would break.
    research = team(budget_micros={"total": 10**13}, tpm=10**9)

    async def scenario(store: Store) -> None:
        big = admission("r1", of=research, reserve=10**10, tokens=10**8)
        admitted = await store.admit(big)
        assert admitted.budget_left_micros == 10**13 - 10**10
        assert admitted.tokens == RateState(10**9, 9 * 10**8, 60.0)
        await store.settle(record("r1", cost=10**11, tokens=(10**8, 10**8)))
        assert await store.spent("research", None, PeriodIds.at(NOON)) == spent(
            10**11, 10**11, 10**11
        )
        after = await store.admit(admission("r2", of=research, at=NOON + 1))
        assert after.tokens == RateState(10**9, 8 * 10**8, 59.0)
        rows = await store.spend("team", NOON, NOON)
        assert rows == [SpendRow("research", 1, 10**8, 10**8, 10**11)]

    run(make_store, scenario)


def test_the_in_process_store_remembers_settled_ids_for_as_long_as_its_ledger() -> None:
    """A week of done markers (Redis's TTL) held in process memory grew the gateway by ~0.25
    KB per request; the embedded store keeps as many as its ledger keeps records."""
    store = MemoryStore(ledger_max_len=100)

    async def settle(count: int) -> None:
        await store.settle_many([record(f"r{n}") for n in range(count)])
        for n in range(count, count + 5000):
            await store.settle(record(f"r{n}"))

    asyncio.run(settle(100))
    assert len(store._done) <= 2 * 1024  # pruned to the newest 100 once 1024 were reached
    assert asyncio.run(store.settle(record("r5099"))) is False  # a recent id: still a duplicate
