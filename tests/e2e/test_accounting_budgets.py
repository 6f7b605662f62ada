"""Team budgets hold across replicas: three gateways on one Redis, a load worth 5x the budget.

Each request reserves its worst case (prompt bound and max_tokens at the price of the
priciest deployment it may reach) in the same Lua script that checks the budget, so no
interleaving of replicas can spend past it: the overshoot must be 0, and the refused
requests get OpenAI's ``insufficient_quota`` 429 naming the budget.

What the load would cost is known in advance: the paid emulator's answer length is a
function of the prompt, so one calibration request per distinct request (on a team without a
budget) prices every request of the load exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.accounting.model import to_usd
from tests.support.accounting import (
    MINI,
    MINI_41,
    Shot,
    admin_of,
    run_load,
    start_accounting_fleet,
    wait_until_settled,
)
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

REQUESTS = 600
CLIENTS = 50
OVER = 5
"""The load would cost this many times the budget."""
STORE_TIMEOUT_MS = 1000  # see test_accounting_exactness.py: 2 cores, many processes


def _variants() -> list[tuple[str, str, int, bool]]:
    """Twelve distinct requests (alias, prompt, max_tokens, stream): 6 per paid alias."""
    return [
        (
            alias,
            f"budget request {n}: " + "how much is left " * (n + 1),
            16 + 8 * (n % 3),
            n % 2 == 0,
        )
        for alias in (MINI, MINI_41)
        for n in range(6)
    ]


@pytest.mark.slow
def test_team_budget_is_never_overshot_by_three_gateways_under_5x_load(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    variants = _variants()
    with contextlib.ExitStack() as stack:
        fleet = start_accounting_fleet(
            stack, tmp_path, redis_server.url, accounting={"store_timeout_ms": STORE_TIMEOUT_MS}
        )
        urls = fleet.urls
        with admin_of(fleet) as admin:
            calibrator = admin.create_key("calibration")
            probes = [Shot(0, calibrator.secret, a, p, m, s) for a, p, m, s in variants]
            calibration = asyncio.run(run_load(urls, probes, concurrency=len(probes)))
            assert [r.status for r in calibration] == [200] * len(probes)
            wait_until_settled(fleet, admin, len(probes), timeout_s=20.0)
            cost_of = {r["request_id"]: r["cost_micros"] for r in admin.export()}
            price = [cost_of[r.request_id or ""] for r in calibration]
            assert all(p > 0 for p in price)

            plan = [i % len(variants) for i in range(REQUESTS)]
            would_cost = sum(price[v] for v in plan)
            budget = would_cost // OVER
            admin.create_team("capped", budget_usd={"total": str(to_usd(budget))})
            keys = [admin.create_key("capped", name=f"capped-{n}") for n in range(3)]
            shots = [
                Shot(i % len(urls), keys[i % len(keys)].secret, *variants[v])
                for i, v in enumerate(plan)
            ]
            results = asyncio.run(run_load(urls, shots, concurrency=CLIENTS))
            admitted = sum(1 for r in results if r.status == 200)
            # Calibration's records are in the count too; a refusal is a record (429, $0).
            wait_until_settled(fleet, admin, len(probes) + REQUESTS)
            team = admin.team("capped")
            report = admin.spend("team", team="capped")["total"]
            records = admin.export(team="capped")

    spent = team["spent_micros"]["total"]
    refused = [r for r in results if r.status == 429]
    print(
        f"budget {budget} micros; load would cost {would_cost}; admitted {admitted}, refused "
        f"{len(refused)}; spent {spent} (ledger {report['cost_micros']}); overshoot "
        f"{max(0, spent - budget)}"
    )
    assert Counter(r.status for r in results).keys() <= {200, 429}
    # The budget counter is the settled cost (every reservation refunded), and within budget.
    assert spent == report["cost_micros"] and report["requests"] == REQUESTS
    assert spent <= budget
    ledger = Counter((r["status"], r["cost_micros"] > 0) for r in records)
    assert ledger == {(200, True): admitted, (429, False): len(refused)}
    # Most of the load is refused, but not before most of the budget is used.
    assert len(refused) >= REQUESTS // 2
    assert spent >= budget // 2
    limit = f"team 'capped' total budget of ${Decimal(budget) / 1_000_000:.6f}"
    for result in refused:
        assert result.error_type == "insufficient_quota", result
        assert result.message.startswith("Error code: 429"), result
        assert "budget exceeded" in result.message and limit in result.message, result.message
