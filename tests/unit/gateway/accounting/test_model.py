"""Spend records round-trip through flat fields; periods are UTC."""

from __future__ import annotations

from gateway.accounting.model import (
    Admission,
    Limits,
    PeriodIds,
    SpendRecord,
    Team,
    VirtualKey,
    hash_secret,
    new_secret,
)


def test_a_spend_record_round_trips_through_its_fields() -> None:
    record = SpendRecord(
        request_id="r1",
        ts=1764500000.25,
        key_id="key_1",
        team_id="research",
        alias="auto",
        deployment="qwen-7b-a",
        provider="local",
        source="local",
        input_tokens=10,
        output_tokens=20,
        cost_micros=0,
        shadow_micros=3,
        reference_micros=225,
        latency_ms=12.5,
        ttft_ms=None,
        status=200,
        estimated=True,
    )
    fields = record.to_fields()
    assert all(isinstance(v, str) for v in fields.values())
    assert SpendRecord.from_fields(fields) == record
    assert record.savings_micros == 225


def test_periods_are_utc_days_and_months() -> None:
    assert PeriodIds.at(1764547199.0) == PeriodIds("2025-11-30", "2025-11")  # 23:59:59 UTC
    assert PeriodIds.at(1764547200.0) == PeriodIds("2025-12-01", "2025-12")


def test_secrets_are_random_and_stored_only_as_a_hash() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and a.startswith("sk-gw-") and len(a) > 40
    assert hash_secret(a) != a and len(hash_secret(a)) == 64


def test_an_admission_takes_a_parallel_slot_when_its_key_or_its_team_limits_them() -> None:
    def takes(team: Limits, key: Limits | None) -> bool:
        found = None if key is None else VirtualKey("k", "h", "t", limits=key)
        return Admission("r", Team("t", team), found, 0, 0, 0.0, 60.0).takes_slot

    assert not takes(Limits(rpm=5), Limits(tpm=9))
    assert not takes(Limits(), None)
    assert takes(Limits(), Limits(max_parallel=1))
    assert takes(Limits(max_parallel=1), None)
    assert takes(Limits(max_parallel=1), Limits(max_parallel=4))
