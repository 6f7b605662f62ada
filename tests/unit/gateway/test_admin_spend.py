"""Spend through HTTP: totals per group with exact micros, the ledger export as CSV and JSONL,
and ``/v1/spend``, where a key of team A sees team A's spend and nothing of team B's."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.accounting.memory_store import MemoryStore
from gateway.accounting.model import Source, SpendRecord
from gateway.errors import InvalidRequest
from gateway.routes.admin_spend import MAX_SPAN_DAYS, export_format, group_by, time_range
from tests.unit.gateway.test_admin_routes import (
    AUTH,
    MASTER,
    MASTER_ENV,
    Client,
    make_accounting,
)

DAY = "2026-11-30"
NOON = datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp()
MIDNIGHT = datetime(2026, 11, 30, tzinfo=UTC).timestamp()


class Teams:
    """Two teams with a key each (a has two), and the callers' headers."""

    def __init__(self, client: Client) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        for name, team in (("a1", "a"), ("a2", "a"), ("b1", "b")):
            response = client.post("/admin/keys", json={"team_id": team}, headers=AUTH)
            self.keys[name] = response.json()

    def id(self, name: str) -> str:
        key_id: str = self.keys[name]["key_id"]
        return key_id

    def caller(self, name: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[name]['key']}"}


def _record(
    n: int,
    ts: float,
    key_id: str,
    team_id: str,
    *,
    source: Source = "paid",
    deployment: str = "gpt-4o-mini",
    cost: int = 0,
    shadow: int = 0,
    reference: int = 0,
) -> SpendRecord:
    return SpendRecord(
        request_id=f"r{n}",
        ts=ts,
        key_id=key_id,
        team_id=team_id,
        alias="chat",
        deployment=deployment,
        provider="local" if source == "local" else "openai",
        source=source,
        input_tokens=100 * n,
        output_tokens=10 * n,
        cost_micros=cost,
        shadow_micros=shadow,
        reference_micros=reference,
        latency_ms=12.5,
        ttft_ms=None if n % 2 else 3.25,
        status=200,
    )


def _settle(store: MemoryStore, records: list[SpendRecord]) -> None:
    async def settle_all() -> None:
        for record in records:
            assert await store.settle(record)

    asyncio.run(settle_all())


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def client(store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.setenv(MASTER_ENV, MASTER)
    return Client(make_accounting(store))


@pytest.fixture
def teams(client: Client, store: MemoryStore) -> Teams:
    teams = Teams(client)
    a1, a2, b1 = teams.id("a1"), teams.id("a2"), teams.id("b1")
    _settle(
        store,
        [
            _record(1, NOON, a1, "a", cost=1_000_000, reference=2_000_000),
            _record(2, NOON + 60, a1, "a", cost=1_234_567, reference=2_000_000),
            _record(3, NOON, a2, "a", source="local", deployment="qwen", shadow=5, reference=7),
            _record(4, NOON, b1, "b", cost=7_000_000, reference=9_000_000),
            _record(5, NOON - 86_400, a1, "a", cost=500_000, reference=500_000),
        ],
    )
    return teams


def _json(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _groups(body: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {row["group"]: (row["requests"], row["cost_micros"]) for row in body["data"]}


def test_spend_is_totalled_per_team_with_dollars_and_exact_micros(
    client: Client, teams: Teams
) -> None:
    body = _json(client.get(f"/admin/spend?group_by=team&from={DAY}&to={DAY}", headers=AUTH))
    assert body["object"] == "spend" and body["group_by"] == "team" and body["team"] is None
    assert (body["from"], body["to"]) == ("2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z")
    assert [row["group"] for row in body["data"]] == ["b", "a"]  # by cost, descending
    a = body["data"][1]
    assert (a["requests"], a["input_tokens"], a["output_tokens"]) == (3, 600, 60)
    assert (a["cost_micros"], a["cost_usd"]) == (2_234_567, 2.234567)
    assert (a["reference_micros"], a["shadow_micros"], a["savings_micros"]) == (4_000_007, 5, 7)
    assert (a["reference_usd"], a["shadow_usd"], a["savings_usd"]) == (4.000007, 5e-06, 7e-06)
    total = body["total"]
    assert total["group"] == "total" and total["requests"] == 4
    assert total["cost_micros"] == 9_234_567 and total["cost_usd"] == 9.234567


def test_spend_groups_by_key_alias_and_deployment_and_filters_by_team_and_days(
    client: Client, teams: Teams
) -> None:
    a1, a2 = teams.id("a1"), teams.id("a2")
    by_key = _json(client.get(f"/admin/spend?group_by=key&team=a&from={DAY}", headers=AUTH))
    assert by_key["team"] == "a"
    assert _groups(by_key) == {a1: (2, 2_234_567), a2: (1, 0)}
    by_deployment = _json(
        client.get(f"/admin/spend?group_by=deployment&from={DAY}&to={DAY}", headers=AUTH)
    )
    assert _groups(by_deployment) == {"gpt-4o-mini": (3, 9_234_567), "qwen": (1, 0)}
    two_days = f"from=2026-11-29&to={DAY}"
    by_alias = _json(client.get(f"/admin/spend?group_by=alias&{two_days}", headers=AUTH))
    assert _groups(by_alias) == {"chat": (5, 9_734_567)}
    epochs = f"from={MIDNIGHT - 86_400:.0f}&to={MIDNIGHT - 1:.0f}&team=a"
    assert _groups(_json(client.get(f"/admin/spend?{epochs}", headers=AUTH))) == {"a": (1, 500_000)}


def test_spend_defaults_to_today(client: Client, store: MemoryStore) -> None:
    _settle(store, [_record(9, time.time(), "key_x", "c", cost=3)])
    body = _json(client.get("/admin/spend", headers=AUTH))
    assert body["group_by"] == "team" and _groups(body) == {"c": (1, 3)}
    assert body["from"] == datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")


def test_a_key_sees_its_own_teams_spend_and_nothing_of_another_team(
    client: Client, teams: Teams
) -> None:
    span = f"from={DAY}&to={DAY}"
    own = _json(client.get(f"/v1/spend?{span}", headers=teams.caller("a2")))
    assert own["team"] == "a" and _groups(own) == {"a": (3, 2_234_567)}
    assert own["total"]["cost_micros"] == 2_234_567
    by_key = _json(client.get(f"/v1/spend?group_by=key&{span}", headers=teams.caller("a1")))
    assert set(_groups(by_key)) == {teams.id("a1"), teams.id("a2")}
    named = _json(client.get(f"/v1/spend?team=a&{span}", headers=teams.caller("a1")))
    assert _groups(named) == {"a": (3, 2_234_567)}
    other = client.get(f"/v1/spend?team=b&{span}", headers=teams.caller("a1"))
    assert other.status_code == 403
    assert other.json()["error"]["param"] == "team" and "data" not in other.json()
    b = _json(client.get(f"/v1/spend?{span}", headers=teams.caller("b1")))
    assert _groups(b) == {"b": (1, 7_000_000)}
    everyone = _json(client.get(f"/v1/spend?{span}", headers=AUTH))
    assert set(_groups(everyone)) == {"a", "b"}


def test_v1_spend_needs_a_usable_key(client: Client, teams: Teams) -> None:
    assert client.get("/v1/spend").status_code == 401
    assert client.get("/v1/spend", headers={"authorization": "Bearer sk-gw-x"}).status_code == 401
    client.post(f"/admin/keys/{teams.id('a1')}/revoke", headers=AUTH)
    response = client.get("/v1/spend", headers=teams.caller("a1"))
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_the_export_is_the_ledger_as_csv_with_the_record_fields_as_header(
    client: Client, teams: Teams, store: MemoryStore
) -> None:
    response = client.get(f"/admin/spend/export?from=2026-11-29&to={DAY}", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="spend-2026-11-29-2026-11-30.csv"' in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == list(SpendRecord.__dataclass_fields__)
    records = asyncio.run(store.records(0, NOON * 2))
    assert [SpendRecord.from_fields(dict(zip(rows[0], row, strict=True))) for row in rows[1:]] == (
        sorted(records, key=lambda r: r.ts)
    )
    assert [row[0] for row in rows[1:]] == ["r5", "r1", "r3", "r4", "r2"]
    team_b = client.get(f"/admin/spend/export?team=b&from={DAY}", headers=AUTH)
    assert [row[0] for row in csv.reader(io.StringIO(team_b.text))] == ["request_id", "r4"]


def test_the_export_as_jsonl_has_typed_values(client: Client, teams: Teams) -> None:
    query = f"format=jsonl&team=a&from={NOON:.0f}&to={NOON + 60:.0f}"
    response = client.get(f"/admin/spend/export?{query}", headers=AUTH)
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["request_id"] for line in lines] == ["r1", "r3"]  # to is exclusive
    assert lines[0]["cost_micros"] == 1_000_000 and lines[0]["ttft_ms"] is None
    assert lines[1]["source"] == "local" and lines[1]["shadow_micros"] == 5
    assert list(lines[0]) == list(SpendRecord.__dataclass_fields__)


def test_an_empty_export_is_just_the_header(client: Client) -> None:
    response = client.get("/admin/spend/export", headers=AUTH)
    assert response.text.splitlines() == [",".join(SpendRecord.__dataclass_fields__)]
    assert client.get("/admin/spend/export?format=jsonl", headers=AUTH).text == ""


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("group_by=user", "group_by"),
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-12-01&to=2026-11-30", "from"),
        ("from=-5", "from"),
        ("to=nan", "to"),
        ("to=1e300", "to"),
        ("from=9000-01-02", "from"),
        (f"from=2000-01-01&to={DAY}", "to"),
        ("team=a%7Bb%7D", "team"),
    ],
)
def test_bad_spend_queries_are_400_naming_the_parameter(
    client: Client, query: str, param: str
) -> None:
    paths = ["/admin/spend", "/v1/spend"]
    if param != "group_by":  # the export has no groups
        paths.append("/admin/spend/export")
    for path in paths:
        response = client.get(f"{path}?{query}", headers=AUTH)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"]["param"] == param
    export = client.get("/admin/spend/export?format=xlsx", headers=AUTH)
    assert export.status_code == 400 and export.json()["error"]["param"] == "format"


def test_time_ranges_default_to_today_and_a_to_date_includes_its_day() -> None:
    now = NOON + 3600
    assert time_range(None, None, now) == time_range(DAY, DAY, now)
    today = time_range(None, None, now)
    assert (today.start, today.end) == (MIDNIGHT, MIDNIGHT + 86_400)
    assert today.last_instant == MIDNIGHT + 86_400 - 0.001
    assert time_range(None, "2026-11-01", now).start == MIDNIGHT - 29 * 86_400
    since = time_range("2026-11-01", None, now)
    assert (since.start, since.end) == (MIDNIGHT - 29 * 86_400, MIDNIGHT + 86_400)
    later = time_range("2026-12-05", None, now)
    assert later.end - later.start == 86_400
    exact = time_range(f"{NOON}", f"{NOON + 1}", now)
    assert (exact.start, exact.end, exact.last_instant) == (NOON, NOON + 1, NOON + 0.999)
    assert time_range("0", "1", now).last_instant == 0.999
    longest = time_range("2017-01-01", None, MIDNIGHT)
    assert longest.end - longest.start <= MAX_SPAN_DAYS * 86_400
    with pytest.raises(InvalidRequest) as err:
        time_range("2000-01-01", None, now)
    assert err.value.param == "to"
    assert group_by(None) == "team" and export_format(None) == "csv"
