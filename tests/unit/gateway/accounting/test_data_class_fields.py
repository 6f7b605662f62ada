"""Data classes on teams and keys: stored only when set (records written before them decode
unchanged), validated in admin bodies with a 400 naming the field, shown in replies."""

from __future__ import annotations

import pytest

from gateway.accounting.codec import key_from_json, key_to_json, team_from_json, team_to_json
from gateway.accounting.model import Team, VirtualKey
from gateway.accounting.requests import key_json, new_key, new_team, patch_key, team_json
from gateway.errors import InvalidRequest

OLD_TEAM = (
    '{"created_at":1.0,"limits":{"budget_micros":{},"max_parallel":null,"rpm":null,'
    '"tpm":null},"metadata":{},"team_id":"research"}'
)
OLD_KEY = (
    '{"aliases":[],"cache":null,"created_at":1.0,"disabled":false,"expires_at":null,'
    '"hint":"sk-gw-...abcd","key_id":"key_1","limits":{"budget_micros":{},"max_parallel":null,'
    '"rpm":null,"tpm":null},"metadata":{},"name":"","policy":null,"secret_hash":"h",'
    '"slo_ttft_ms":null,"team_id":"research"}'
)


def test_records_written_before_data_classes_decode_without_one_and_encode_the_same() -> None:
    team, key = team_from_json(OLD_TEAM), key_from_json(OLD_KEY)

    assert (team.data_class, key.data_class) == (None, None)
    assert (team_to_json(team), key_to_json(key)) == (OLD_TEAM, OLD_KEY)


def test_a_data_class_round_trips_through_both_codecs() -> None:
    team = Team("research", created_at=1.0, data_class="internal")
    key = VirtualKey("key_1", "h", "research", created_at=1.0, data_class="private")

    assert team_from_json(team_to_json(team)) == team
    assert key_from_json(key_to_json(key)) == key


def test_a_stored_record_with_an_unknown_class_is_an_error_not_a_default() -> None:
    with pytest.raises(ValueError, match="data_class: must be one of"):
        team_from_json(OLD_TEAM[:-1] + ',"data_class":"secret"}')


def test_admin_bodies_set_show_and_clear_the_class() -> None:
    team = new_team({"team_id": "research", "data_class": "internal"}, 1.0)
    key = new_key(
        {"data_class": "private"}, key_id="key_1", secret_hash="h", hint="sk-gw-...abcd", now=1.0
    )

    assert team_json(team)["data_class"] == "internal"
    assert key_json(key)["data_class"] == "private"
    assert patch_key(key, {"data_class": None}, 2.0).data_class is None


@pytest.mark.parametrize("value", ["secret", 3, True, ["private"]])
def test_a_bad_class_in_an_admin_body_is_a_400_naming_the_field(value: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        new_team({"team_id": "research", "data_class": value}, 1.0)

    assert caught.value.param == "data_class"
    assert "must be one of public, internal, private" in caught.value.message
