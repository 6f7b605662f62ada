"""Spend adds up: three gateways on one Redis, 100 concurrent clients, 5,000 mixed requests.

What is compared, to the micro-dollar, after the load and once the ledgers have drained:

1. Redis's totals (``/admin/spend`` by team, key, alias and deployment) with the sums of the
   ledger records (``/admin/spend/export``), and the budget counters (``/admin/teams/{id}``,
   ``/admin/keys/{id}``) with the records' cost: every reservation was refunded.
2. The records with the upstreams' own request logs, joined by request id (the gateway sends
   it upstream as X-Request-Id), priced again from the config's price table with one rounding
   per record: tokens, cost and reference cost agree record by record, and in total.
   Records marked ``estimated`` (a stream the client cut before its usage chunk) cannot
   match the upstream's count - the gateway counted the text it had relayed with a
   tokenizer - so they are compared on their own terms: the upstream did serve that request as
   a stream (it may have sent all of it before the gateway stopped reading), the client left
   (status 499), the record's cost is its own token counts priced the same way, and the
   estimate is within a few tokens per word the upstream sent. How much the upstream sent
   beyond the estimate is printed (for a paid API, what its bill would exceed the ledger by).
3. Requests with records: every request a client sent has exactly one, by the x-request-id
   its response carried; and every request an upstream answered has the record of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.accounting import (
    AUTO,
    MINI,
    MINI_41,
    QWEN,
    AccountingFleet,
    NewKey,
    Result,
    Shot,
    admin_of,
    ledger_totals,
    priced,
    reference_priced,
    report_totals,
    run_load,
    start_accounting_fleet,
    wait_until_settled,
)
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

REQUESTS = 5_000
CLIENTS = 100
FAIL_RATE = 0.02
CUT_SHARE = 0.05
TIME_SCALE = 0.1
"""Slow enough that a client cutting a stream after a few events leaves it unfinished."""
STORE_TIMEOUT_MS = 1000
"""Not the 50 ms default: this box runs the clients, three gateways, the emulators and Redis
on 2 cores, where event-loop lag alone passes 50 ms. Store outages are the fault tests'
subject (test_accounting_redis_faults.py); this one counts money with the store up."""
ALIASES = (QWEN, MINI, MINI_41, AUTO)
ALIAS_WEIGHTS = (0.45, 0.25, 0.15, 0.15)


def _plan(keys: list[NewKey], gateways: int, seed: int = 7) -> list[Shot]:
    rng = random.Random(seed)
    shots: list[Shot] = []
    for i in range(REQUESTS):
        cut = rng.random() < CUT_SHARE
        stream = cut or rng.random() < 0.5
        shots.append(
            Shot(
                # Cut streams all go to one gateway: the first estimate imports litellm's
                # tokenizer (~5 s of CPU), which this box should pay once, not three times.
                gateway=0 if cut else i % gateways,
                secret=rng.choice(keys).secret,
                alias=rng.choices(ALIASES, ALIAS_WEIGHTS)[0],
                prompt=f"request {i}: " + " ".join(["summarise the spend"] * rng.randint(1, 12)),
                max_tokens=400 if cut else rng.randint(4, 24),
                stream=stream,
                cut_after=rng.randint(3, 6) if cut else None,
            )
        )
    return shots


@pytest.fixture
def fleet(redis_server: RedisServer, tmp_path: Path) -> Iterator[AccountingFleet]:
    """Three gateways on one Redis; emulators at a tenth of real time, 2% failing."""
    with contextlib.ExitStack() as stack:
        yield start_accounting_fleet(
            stack,
            tmp_path,
            redis_server.url,
            accounting={"store_timeout_ms": STORE_TIMEOUT_MS},
            fail_rate=FAIL_RATE,
            qwen_time_scale=TIME_SCALE,
            paid_time_scale=TIME_SCALE,
        )


@pytest.mark.slow
def test_redis_totals_ledger_and_upstream_logs_agree_to_the_micro_dollar(
    fleet: AccountingFleet,
) -> None:
    with admin_of(fleet) as admin:
        # alpha has a budget the load never reaches, so each of its requests is admitted
        # (a reservation, then a refund) in Redis; beta has no limit at all, so its requests
        # skip admission and are only charged when they settle. Both must add up.
        admin.create_team("alpha", budget_usd={"day": 1000})
        keys = [
            admin.create_key(team, name=f"{team}-{n}") for team in ("alpha", "beta") for n in (1, 2)
        ]
        started = time.monotonic()
        results = asyncio.run(
            run_load(fleet.urls, _plan(keys, len(fleet.urls)), concurrency=CLIENTS)
        )
        loaded = time.monotonic()
        settled = wait_until_settled(fleet, admin, REQUESTS)
        print(f"load {loaded - started:.1f} s, settling {time.monotonic() - loaded:.1f} s")
        records = admin.export()
        reports = {g: report_totals(admin.spend(g)) for g in ("team", "key", "alias", "deployment")}
        teams = {t: admin.team(t) for t in ("alpha", "beta")}
        key_spent = {k.key_id: admin.key(k.key_id)["spent_micros"]["total"] for k in keys}

    statuses = Counter(r.status for r in results)
    print(f"statuses {dict(statuses)}; settled {settled}; records {len(records)}")
    # Every request was answered by a gateway, with its request id; only upstream failures
    # (the emulators' --fail-rate) are errors.
    assert len(results) == REQUESTS and statuses[0] == 0, _first_bad(results)
    assert all(r.request_id for r in results)
    assert set(statuses) <= {200, 502, 503, 504}, dict(statuses)

    # 3. One record per request, by request id.
    by_id = {r["request_id"]: r for r in records}
    missing = Counter(
        (r.status, r.error_code, r.shot.alias, r.shot.stream, r.shot.cut_after is not None)
        for r in results
        if r.request_id not in by_id
    )
    assert len(records) == REQUESTS == len(by_id), f"requests without a record: {missing}"
    assert set(by_id) == {r.request_id for r in results}
    _check_statuses(results, by_id)

    # 1. Redis totals == ledger sums, per grouping; budget counters == settled cost.
    for group_by, report in reports.items():
        assert report == ledger_totals(records, group_by), group_by
    team_cost = ledger_totals(records, "team")
    key_cost = ledger_totals(records, "key")
    for team, body in teams.items():
        assert body["spent_micros"]["total"] == team_cost[team]["cost_micros"], team
    assert key_spent == {k: key_cost[k]["cost_micros"] for k in key_spent}

    # 2. Records == the upstreams' logs priced again.
    recomputed = _recompute(fleet, records)
    for team, total in team_cost.items():
        assert recomputed[team] == total["cost_micros"], team
    total_cost = sum(t["cost_micros"] for t in team_cost.values())
    estimated = sum(1 for r in records if r["estimated"])
    print(f"total cost {total_cost} micros; by team {recomputed}; estimated records {estimated}")
    assert total_cost > 0 and estimated > 0


def _first_bad(results: list[Result]) -> str:
    bad = [r for r in results if r.status == 0]
    return f"{len(bad)} without a response, e.g. {bad[0].message}" if bad else ""


def _check_statuses(results: list[Result], by_id: dict[str, dict[str, Any]]) -> None:
    """A record's status is what its client got (a cut stream: 499, or 200 if it had ended)."""
    for result in results:
        record = by_id[result.request_id or ""]
        if result.shot.cut_after is not None and result.status == 200:
            assert record["status"] in (200, 499), record
        else:
            assert record["status"] == result.status, (record, result)


def _recompute(fleet: AccountingFleet, records: list[dict[str, Any]]) -> dict[str, int]:
    """Each team's cost recomputed from the upstreams' request logs and the price table
    (estimated records: from their own token counts), checking every record on the way."""
    logs = fleet.upstream_requests()
    served: dict[tuple[str, str], dict[str, Any]] = {}
    for deployment, lines in logs.items():
        for line in lines:
            if line["status"] == 200:
                key = (deployment, line["request_id"])
                assert key not in served, f"an upstream served {key} twice"
                served[key] = line
    config = fleet.config
    totals: dict[str, int] = {}
    unrelayed = [0, 0]
    for record in records:
        deployment, rid = record["deployment"], record["request_id"]
        tokens = (record["input_tokens"], record["output_tokens"])
        if deployment == "none":  # no deployment answered: nothing to bill
            assert tokens == (0, 0) and record["cost_micros"] == 0, record
            assert record["status"] >= 500, record
            continue
        line = served.pop((deployment, rid))
        if record["estimated"]:
            # The upstream may have sent it all (usage chunk included) before the gateway
            # stopped reading for the client that left: the record counts what was relayed.
            assert line["stream"] and record["status"] == 499, (record, line)
            # The tokenizer's count of the relayed words: at least one token for the first,
            # at most a few per word the upstream had sent.
            assert 1 <= record["output_tokens"] <= 4 * line["completion_tokens"] + 4, (
                record,
                line,
            )
            unrelayed[0] += (
                priced(config, deployment, line["prompt_tokens"], line["completion_tokens"])
                - record["cost_micros"]
            )
            unrelayed[1] += line["completion_tokens"] - record["output_tokens"]
        else:
            assert tokens == (line["prompt_tokens"], line["completion_tokens"]), (record, line)
        assert record["cost_micros"] == priced(config, deployment, *tokens), record
        assert record["reference_micros"] == reference_priced(config, *tokens), record
        totals[record["team_id"]] = totals.get(record["team_id"], 0) + record["cost_micros"]
    # Every request an upstream answered is in the ledger.
    assert not served, f"{len(served)} served requests without a record, e.g. {next(iter(served))}"
    print(
        f"estimated records: upstream minus estimate = {unrelayed[0]} micros,"
        f" {unrelayed[1]} output tokens"
    )
    return totals


def test_two_requests_with_the_same_client_request_id_are_each_billed_once(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A client may send X-Request-Id (a retry sends the same one): both requests are
    served by the upstream, so both are billed and both reservations are settled."""
    with contextlib.ExitStack() as stack:
        fleet = start_accounting_fleet(stack, tmp_path, redis_server.url, gateways=1)
        with admin_of(fleet) as admin:
            key = admin.create_key("gamma", budget_usd={"day": 1000})  # admitted, reserved

            async def twice() -> list[int]:
                async with openai.AsyncOpenAI(
                    base_url=f"{fleet.urls[0]}/v1", api_key=key.secret, max_retries=0
                ) as client:
                    statuses = []
                    for _ in range(2):
                        raw = await client.chat.completions.with_raw_response.create(
                            model=MINI,
                            messages=[{"role": "user", "content": "same id twice"}],
                            max_tokens=8,
                            extra_headers={"X-Request-Id": "client-chosen-id-1"},
                        )
                        statuses.append(raw.status_code)
                    return statuses

            assert asyncio.run(twice()) == [200, 200]
            wait_until_settled(fleet, admin, 2, timeout_s=5.0)
            spend = admin.spend("team", team="gamma")["total"]
            records = admin.export()
            team = admin.team("gamma")
        upstream = [
            line
            for line in fleet.upstream_requests()["openai-gpt-4o-mini"]
            if line["status"] == 200
        ]

    billed = sum(
        priced(fleet.config, "openai-gpt-4o-mini", u["prompt_tokens"], u["completion_tokens"])
        for u in upstream
    )
    assert len(upstream) == 2
    # (requests in the ledger, records, their cost, the team's budget counter)
    got = (spend["requests"], len(records), spend["cost_micros"], team["spent_micros"]["total"])
    assert got == (2, 2, billed, billed)
