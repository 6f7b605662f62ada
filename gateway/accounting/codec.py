"""What both accounting stores share, so they agree to the byte.

- Teams and virtual keys as JSON (stable key order; decoding gives back an equal object).
- The counters' lifetimes (TTLs).
- The spend totals' shared rules (the metrics a day's totals keep, day ranges, row order).

Admissions' outcomes and their verdicts are in ``verdicts.py``.

Records written before a field existed read as its default (``data_class``: none).
Imports: stdlib, ``model``, ``gateway.cache.settings`` and ``gateway.privacy.settings``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from gateway.accounting.model import (
    PERIODS,
    GroupBy,
    Limits,
    Period,
    SpendRecord,
    SpendRow,
    Team,
    VirtualKey,
)
from gateway.cache.settings import parse_mode
from gateway.privacy.settings import parse_data_class
from policies.model import DataClass

RATE_TTL_S = 120
DAY_TTL_S = 40 * 86_400
MONTH_TTL_S = 400 * 86_400
DONE_TTL_S = 7 * 86_400
"""How long a settled request id is remembered (settle is idempotent within it)."""
SPEND_METRICS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cost_micros",
    "shadow_micros",
    "reference_micros",
    "savings_micros",
)
GROUPS: tuple[GroupBy, ...] = ("team", "key", "alias", "deployment")

# --- teams and keys as JSON -------------------------------------------------------------


def team_to_json(team: Team) -> str:
    """A team as compact JSON with sorted keys."""
    return _dump(
        {
            "team_id": team.team_id,
            "limits": _limits_to_dict(team.limits),
            "metadata": dict(team.metadata),
            "created_at": team.created_at,
            **_data_class_field(team.data_class),
        }
    )


def team_from_json(text: str | bytes) -> Team:
    """The inverse of ``team_to_json``; ValueError on anything else."""
    data = _object(json.loads(text), "team")
    return Team(
        team_id=_str(data, "team_id"),
        limits=_limits_from_dict(_object(data.get("limits"), "limits")),
        metadata=_str_map(data.get("metadata")),
        created_at=_float(data, "created_at"),
        data_class=_data_class(data),
    )


def key_to_json(key: VirtualKey) -> str:
    """A virtual key (its secret's hash, never the secret) as compact JSON."""
    return _dump(
        {
            "key_id": key.key_id,
            "secret_hash": key.secret_hash,
            "team_id": key.team_id,
            "name": key.name,
            "hint": key.hint,
            "aliases": list(key.aliases),
            "limits": _limits_to_dict(key.limits),
            "policy": key.policy,
            "slo_ttft_ms": key.slo_ttft_ms,
            "cache": key.cache,
            "metadata": dict(key.metadata),
            "expires_at": key.expires_at,
            "disabled": key.disabled,
            "created_at": key.created_at,
            **_data_class_field(key.data_class),
        }
    )


def key_from_json(text: str | bytes) -> VirtualKey:
    """The inverse of ``key_to_json``; ValueError on anything else."""
    data = _object(json.loads(text), "key")
    aliases = data.get("aliases")
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ValueError("key: aliases must be a list of strings")
    policy = data.get("policy")
    if policy is not None and not isinstance(policy, str):
        raise ValueError("key: policy must be a string or null")
    disabled = data.get("disabled")
    if not isinstance(disabled, bool):
        raise ValueError("key: disabled must be a boolean")
    return VirtualKey(
        key_id=_str(data, "key_id"),
        secret_hash=_str(data, "secret_hash"),
        team_id=_str(data, "team_id"),
        name=_str(data, "name"),
        hint=_str(data, "hint"),
        aliases=tuple(aliases),
        limits=_limits_from_dict(_object(data.get("limits"), "limits")),
        policy=policy,
        slo_ttft_ms=_optional_float(data, "slo_ttft_ms"),
        cache=parse_mode(data.get("cache"), "key: cache"),
        metadata=_str_map(data.get("metadata")),
        expires_at=_optional_float(data, "expires_at"),
        disabled=disabled,
        created_at=_float(data, "created_at"),
        data_class=_data_class(data),
    )


def _data_class_field(value: DataClass | None) -> dict[str, object]:
    """Written only when set: a record without a class encodes as it did before classes."""
    return {} if value is None else {"data_class": value}


def _data_class(data: Mapping[str, object]) -> DataClass | None:
    """Records written before data classes existed have none: no floor."""
    value = data.get("data_class")
    return None if value is None else parse_data_class(value, "data_class")


def _dump(data: dict[str, object]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _limits_to_dict(limits: Limits) -> dict[str, object]:
    return {
        "budget_micros": {p: limits.budget_micros[p] for p in PERIODS if p in limits.budget_micros},
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "max_parallel": limits.max_parallel,
    }


def _limits_from_dict(data: dict[str, object]) -> Limits:
    budgets = _object(data.get("budget_micros"), "budget_micros")
    budget_micros: dict[Period, int] = {}
    for period in PERIODS:
        value = budgets.pop(period, None)
        if value is not None:
            budget_micros[period] = _int(value, f"budget_micros.{period}")
    if budgets:
        raise ValueError(f"limits: unknown budget periods {sorted(budgets)}")
    return Limits(
        budget_micros=budget_micros,
        rpm=_optional_int(data, "rpm"),
        tpm=_optional_int(data, "tpm"),
        max_parallel=_optional_int(data, "max_parallel"),
    )


def _object(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ValueError(f"{what}: expected a JSON object")
    return {str(k): v for k, v in value.items()}


def _str(data: Mapping[str, object], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def _int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer")
    return value


def _optional_int(data: Mapping[str, object], name: str) -> int | None:
    value = data.get(name)
    return None if value is None else _int(value, name)


def _float(data: Mapping[str, object], name: str) -> float:
    value = data.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number")
    return float(value)


def _optional_float(data: Mapping[str, object], name: str) -> float | None:
    return None if data.get(name) is None else _float(data, name)


def _str_map(value: object) -> dict[str, str]:
    data = _object(value, "metadata")
    if not all(isinstance(v, str) for v in data.values()):
        raise ValueError("metadata values must be strings")
    return {k: str(v) for k, v in data.items()}


# --- spend totals -----------------------------------------------------------------------


def record_groups(record: SpendRecord) -> dict[GroupBy, str]:
    """The group names a record adds to, per grouping."""
    return {
        "team": record.team_id,
        "key": record.key_id,
        "alias": record.alias,
        "deployment": record.deployment,
    }


def record_metrics(record: SpendRecord) -> dict[str, int]:
    """What a record adds to its groups' day totals (``SPEND_METRICS`` order)."""
    return {
        "requests": 1,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cost_micros": record.cost_micros,
        "shadow_micros": record.shadow_micros,
        "reference_micros": record.reference_micros,
        "savings_micros": record.savings_micros,
    }


def day_of(ts: float) -> str:
    """The UTC day of epoch second ``ts`` (``2026-11-30``)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def days_between(start: float, end: float) -> list[str]:
    """The UTC days from ``start``'s to ``end``'s, inclusive (empty if end is before start)."""
    first = datetime.fromtimestamp(start, UTC).date()
    last = datetime.fromtimestamp(end, UTC).date()
    count = (last - first).days + 1
    return [(first + timedelta(days=n)).isoformat() for n in range(max(0, count))]


def spend_rows(totals: Mapping[str, Mapping[str, int]]) -> list[SpendRow]:
    """Rows from ``{group: {metric: value}}``, by cost descending, then group."""
    rows = [
        SpendRow(
            group,
            requests=values.get("requests", 0),
            input_tokens=values.get("input_tokens", 0),
            output_tokens=values.get("output_tokens", 0),
            cost_micros=values.get("cost_micros", 0),
            shadow_micros=values.get("shadow_micros", 0),
            reference_micros=values.get("reference_micros", 0),
            savings_micros=values.get("savings_micros", 0),
        )
        for group, values in totals.items()
    ]
    return sorted(rows, key=lambda row: (-row.cost_micros, row.group))
