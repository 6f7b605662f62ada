"""Teams and keys survive JSON exactly and encode stably; day ranges are UTC."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from gateway.accounting.codec import (
    days_between,
    key_from_json,
    key_to_json,
    team_from_json,
    team_to_json,
)
from gateway.accounting.model import Limits, Team, VirtualKey

FULL_TEAM = Team(
    "research",
    Limits({"total": 9_000_000, "day": 5_000_000}, rpm=60, tpm=10_000, max_parallel=4),
    {"cost_center": "42", "owner": "ana"},
    1_764_504_000.25,
)
FULL_KEY = VirtualKey(
    key_id="key_ab12",
    secret_hash="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    team_id="research",
    name="ci runner",
    hint="sk-gw-...wxyz",
    aliases=("chat", "code"),
    limits=Limits({"month": 1}, rpm=None, tpm=5, max_parallel=None),
    policy="spillover",
    slo_ttft_ms=850.5,
    metadata={"env": "ci"},
    expires_at=1_800_000_000.0,
    disabled=True,
    created_at=1_764_504_000.0,
)


@pytest.mark.parametrize("team", [FULL_TEAM, Team("bare")], ids=["full", "bare"])
def test_a_team_round_trips_exactly(team: Team) -> None:
    assert team_from_json(team_to_json(team)) == team
    assert team_from_json(team_to_json(team).encode()) == team


@pytest.mark.parametrize("key", [FULL_KEY, VirtualKey("k", "h", "default")], ids=["full", "bare"])
def test_a_key_round_trips_exactly(key: VirtualKey) -> None:
    assert key_from_json(key_to_json(key)) == key


def test_encoding_is_stable_and_keys_budgets_by_period_name() -> None:
    text = team_to_json(FULL_TEAM)
    assert text == (
        '{"created_at":1764504000.25,"limits":{"budget_micros":{"day":5000000,"total":9000000},'
        '"max_parallel":4,"rpm":60,"tpm":10000},"metadata":{"cost_center":"42","owner":"ana"},'
        '"team_id":"research"}'
    )
    assert "secret" not in json.loads(key_to_json(FULL_KEY))


@pytest.mark.parametrize(
    "text",
    [
        '{"team_id":"t","limits":{"budget_micros":{"week":1}},"metadata":{},"created_at":0}',
        '{"team_id":"t","limits":{"budget_micros":{"day":1.5}},"metadata":{},"created_at":0}',
        '{"team_id":7,"limits":{"budget_micros":{}},"metadata":{},"created_at":0}',
        '{"team_id":"t","limits":{"budget_micros":{}},"metadata":{"a":1},"created_at":0}',
        "[]",
    ],
    ids=["unknown-period", "float-budget", "numeric-id", "non-string-metadata", "not-object"],
)
def test_malformed_team_json_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        team_from_json(text)


def test_days_between_is_inclusive_in_utc() -> None:
    start = datetime(2026, 11, 29, 23, 0, tzinfo=UTC).timestamp()
    assert days_between(start, start + 3600) == ["2026-11-29", "2026-11-30"]
    assert days_between(start, start) == ["2026-11-29"]
    assert days_between(start, start - 86_400) == []
