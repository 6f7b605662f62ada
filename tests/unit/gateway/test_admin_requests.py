"""Admin bodies -> teams and keys: each bad field is a 400 naming it; money is exact; patches
merge; rendered keys never carry a secret or its hash."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from gateway.accounting.model import Limits, SpendRow, Team, VirtualKey
from gateway.accounting.requests import (
    Body,
    hint_for,
    json_body,
    key_json,
    new_key,
    new_key_id,
    new_team,
    patch_key,
    patch_team,
    row_json,
    team_json,
    total_row,
    usd_to_micros,
)
from gateway.errors import InvalidRequest

NOW = 1_795_000_000.0

BAD_TEAMS: list[tuple[Body, str]] = [
    ({}, "team_id"),
    ({"team_id": ""}, "team_id"),
    ({"team_id": "has space"}, "team_id"),
    ({"team_id": "{tag}"}, "team_id"),
    ({"team_id": "t" * 65}, "team_id"),
    ({"team_id": 7}, "team_id"),
    ({"team_id": "t", "budget_usd": 5}, "budget_usd"),
    ({"team_id": "t", "budget_usd": {"week": 1}}, "budget_usd.week"),
    ({"team_id": "t", "budget_usd": {"day": -1}}, "budget_usd.day"),
    ({"team_id": "t", "budget_usd": {"day": "-0.01"}}, "budget_usd.day"),
    ({"team_id": "t", "budget_usd": {"day": "NaN"}}, "budget_usd.day"),
    ({"team_id": "t", "budget_usd": {"month": "Infinity"}}, "budget_usd.month"),
    ({"team_id": "t", "budget_usd": {"month": float("inf")}}, "budget_usd.month"),
    ({"team_id": "t", "budget_usd": {"month": "ten"}}, "budget_usd.month"),
    ({"team_id": "t", "budget_usd": {"total": True}}, "budget_usd.total"),
    ({"team_id": "t", "budget_usd": {"total": [1]}}, "budget_usd.total"),
    ({"team_id": "t", "budget_usd": {"total": 1e12}}, "budget_usd.total"),
    ({"team_id": "t", "rpm": 0}, "rpm"),
    ({"team_id": "t", "rpm": 1.5}, "rpm"),
    ({"team_id": "t", "rpm": "10"}, "rpm"),
    ({"team_id": "t", "tpm": -1}, "tpm"),
    ({"team_id": "t", "max_parallel": True}, "max_parallel"),
    ({"team_id": "t", "metadata": []}, "metadata"),
    ({"team_id": "t", "metadata": {"owner": 1}}, "metadata.owner"),
    ({"team_id": "t", "metadata": {str(i): "" for i in range(65)}}, "metadata"),
    ({"team_id": "t", "budget": 1}, "budget"),
]

BAD_KEYS: list[tuple[Body, str]] = [
    ({"team_id": 5}, "team_id"),
    ({"team_id": "a/b"}, "team_id"),
    ({"name": 3}, "name"),
    ({"name": "n" * 1001}, "name"),
    ({"aliases": "chat"}, "aliases"),
    ({"aliases": ["chat", ""]}, "aliases[1]"),
    ({"aliases": ["chat", 3]}, "aliases[1]"),
    ({"policy": ""}, "policy"),
    ({"policy": 3}, "policy"),
    ({"slo_ttft_ms": 0}, "slo_ttft_ms"),
    ({"slo_ttft_ms": -5}, "slo_ttft_ms"),
    ({"slo_ttft_ms": "fast"}, "slo_ttft_ms"),
    ({"expires_at": NOW - 1}, "expires_at"),
    ({"expires_at": "tomorrow"}, "expires_at"),
    ({"expires_at": NOW + 60, "expires_in_s": 60}, "expires_in_s"),
    ({"expires_in_s": 0}, "expires_in_s"),
    ({"expires_in_s": 253_402_300_000}, "expires_in_s"),
    ({"expires_at": 1e300}, "expires_at"),
    ({"disabled": "yes"}, "disabled"),
    ({"budget_usd": {"day": "1e400"}}, "budget_usd.day"),
    ({"tpm": 10**10}, "tpm"),
    ({"secret": "sk-gw-mine"}, "secret"),
]


def _param(err: pytest.ExceptionInfo[InvalidRequest]) -> str | None:
    assert err.value.status == 400
    assert err.value.body()["error"] == {
        "message": err.value.message,
        "type": "invalid_request_error",
        "param": err.value.param,
        "code": None,
    }
    return err.value.param


@pytest.mark.parametrize(("body", "param"), [pytest.param(b, p, id=p) for b, p in BAD_TEAMS])
def test_a_bad_team_field_is_a_400_naming_it(body: Body, param: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        new_team(body, NOW)
    assert _param(err) == param


@pytest.mark.parametrize(("body", "param"), [pytest.param(b, p, id=p) for b, p in BAD_KEYS])
def test_a_bad_key_field_is_a_400_naming_it(body: Body, param: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        new_key(body, key_id="key_1", secret_hash="h", hint="sk-gw-...abcd", now=NOW)
    assert _param(err) == param


def test_a_patch_may_not_move_a_key_or_rename_a_team() -> None:
    key = VirtualKey("key_1", "h", "research")
    with pytest.raises(InvalidRequest) as err:
        patch_key(key, {"team_id": "other"}, NOW)
    assert _param(err) == "team_id"
    assert "cannot be changed" in err.value.message
    with pytest.raises(InvalidRequest) as err:
        patch_team(Team("research"), {"team_id": "other"})
    assert _param(err) == "team_id"


def test_money_is_exact_from_numbers_and_decimal_strings() -> None:
    team = new_team(
        {"team_id": "t", "budget_usd": {"day": 0.1, "month": "12.345678", "total": 100}}, NOW
    )
    assert dict(team.limits.budget_micros) == {
        "day": 100_000,
        "month": 12_345_678,
        "total": 100_000_000,
    }
    assert usd_to_micros("0.0000005", "x") == 1  # half up, once
    assert usd_to_micros(" 3 ", "x") == 3_000_000
    assert usd_to_micros(0, "x") == 0


def test_a_team_body_sets_every_field() -> None:
    body: Body = {
        "team_id": "research.ml-1",
        "budget_usd": {"day": 5, "month": None},
        "rpm": 60,
        "tpm": 100_000,
        "max_parallel": 4,
        "metadata": {"owner": "ana"},
    }
    team = new_team(body, NOW)
    assert team == Team(
        "research.ml-1",
        Limits({"day": 5_000_000}, rpm=60, tpm=100_000, max_parallel=4),
        {"owner": "ana"},
        created_at=NOW,
    )


def test_a_team_patch_merges_budgets_per_period_and_null_clears() -> None:
    team = Team("t", Limits({"day": 1, "month": 2}, rpm=10, tpm=20))
    patched = patch_team(team, {"budget_usd": {"day": None, "total": 3}, "rpm": None})
    assert dict(patched.limits.budget_micros) == {"month": 2, "total": 3_000_000}
    assert (patched.limits.rpm, patched.limits.tpm) == (None, 20)
    assert patch_team(team, {"budget_usd": None}).limits.budget_micros == {}
    assert patch_team(team, {}) == team


def test_a_key_body_sets_every_field_and_expiry_is_relative_or_absolute() -> None:
    body: Body = {
        "team_id": "research",
        "name": "notebook",
        "aliases": ["chat", "embed", "chat"],
        "budget_usd": {"total": "2.5"},
        "rpm": 5,
        "policy": "spillover",
        "slo_ttft_ms": 800,
        "metadata": {"ticket": "OPS-1"},
        "expires_in_s": 3600,
    }
    key = new_key(body, key_id="key_1", secret_hash="h", hint="sk-gw-...abcd", now=NOW)
    assert key.team_id == "research" and key.name == "notebook"
    assert key.aliases == ("chat", "embed")
    assert dict(key.limits.budget_micros) == {"total": 2_500_000} and key.limits.rpm == 5
    assert (key.policy, key.slo_ttft_ms, key.expires_at) == ("spillover", 800.0, NOW + 3600)
    assert dict(key.metadata) == {"ticket": "OPS-1"}
    assert key.created_at == NOW and not key.disabled
    default = new_key({}, key_id="key_2", secret_hash="h2", hint="", now=NOW)
    assert default.team_id == "default" and default.expires_at is None
    patched = patch_key(key, {"expires_at": None, "disabled": True, "policy": None}, NOW)
    assert (patched.expires_at, patched.disabled, patched.policy) == (None, True, None)
    assert patch_key(key, {"expires_at": NOW + 5}, NOW).expires_at == NOW + 5


def test_json_bodies_must_be_objects() -> None:
    assert json_body(b"") == {} and json_body(b" \n") == {}
    assert json_body(b'{"a": 1}') == {"a": 1}
    for raw in (b"{", b"[1]", b'"x"', b"\xff", b"[" * 100_000):
        with pytest.raises(InvalidRequest) as err:
            json_body(raw)
        assert err.value.param is None


def test_a_rendered_key_has_its_hint_but_never_its_secret_or_hash() -> None:
    secret = "sk-gw-" + "s" * 39 + "wxyz"
    key = VirtualKey(new_key_id(), "f" * 64, "t", hint=hint_for(secret))
    rendered = json.dumps(key_json(key, {"day": 1}))
    assert "f" * 64 not in rendered and secret not in rendered and "secret" not in rendered
    assert key_json(key)["hint"] == "sk-gw-...wxyz"
    assert str(key_json(key)["key_id"]).startswith("key_") and len(key.key_id) == 16


def test_team_spend_shows_budget_left_per_period() -> None:
    team = Team("t", Limits({"day": 5_000_000, "total": 1_000_000}))
    shown = team_json(team, {"day": 1_250_000, "month": 1_250_000, "total": 1_500_000})
    assert shown["spent_usd"] == {"day": 1.25, "month": 1.25, "total": 1.5}
    assert shown["spent_micros"] == {"day": 1_250_000, "month": 1_250_000, "total": 1_500_000}
    assert shown["budget_left_usd"] == {"day": 3.75, "month": None, "total": -0.5}
    assert shown["budget_usd"] == {"day": 5.0, "month": None, "total": 1.0}


def test_spend_rows_carry_dollars_and_exact_micros_and_sum_to_a_total() -> None:
    rows = [
        SpendRow("a", 2, 10, 20, 1_234_567, 0, 3_000_001, 0),
        SpendRow("b", 1, 5, 5, 0, 7, 1, 1),
    ]
    total = total_row(rows)
    assert total == SpendRow("total", 3, 15, 25, 1_234_567, 7, 3_000_002, 1)
    shown = row_json(rows[0])
    assert shown["cost_usd"] == 1.234567 and shown["reference_usd"] == 3.000001
    assert shown["cost_micros"] == 1_234_567
    assert Decimal(str(shown["cost_usd"])) * 1_000_000 == 1_234_567
