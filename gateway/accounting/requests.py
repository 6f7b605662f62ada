"""Admin API bodies -> model objects, and model objects -> JSON.

Every check raises ``InvalidRequest`` (400) whose ``param`` names the bad field
(``budget_usd.day``, ``metadata.owner``, ``aliases[2]``), so a client sees what to fix. Unknown
fields are refused, as in the config file. Money arrives as US dollars (a JSON number or a
decimal string), converted once with ``to_micros(Decimal(str(x)))``; it leaves as dollars
rounded to the micro-dollar next to the exact ``*_micros`` integers. Creating is applying a
body to an empty record, patching is applying it to the stored one: one set of field rules.
Imports: stdlib, ``gateway.errors``, ``gateway.privacy.settings`` and ``model``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from gateway.accounting.model import (
    DEFAULT_TEAM,
    KEY_PREFIX,
    PERIODS,
    Limits,
    Period,
    SpendRow,
    Team,
    VirtualKey,
    to_micros,
    to_usd,
)
from gateway.cache.settings import Mode, parse_mode
from gateway.errors import InvalidRequest
from gateway.privacy.settings import parse_data_class
from policies.model import DataClass

Body = Mapping[str, object]
T = TypeVar("T")

MAX_USD = Decimal(1_000_000_000)
"""Larger budgets are typos; the cap keeps micro-dollar counters far inside Redis's int64."""
MAX_COUNT = 1_000_000_000
MAX_METADATA = 64
MAX_TEXT = 1000
LATEST_TS = 253_402_300_799.0  # 9999-12-31T23:59:59Z, the last instant datetime can hold
_TEAM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""No braces or colons: a team id goes inside Redis hash tags (``gw:{t:TEAM}:...``)."""

_LIMIT_FIELDS = {"budget_usd", "rpm", "tpm", "max_parallel"}
TEAM_FIELDS = frozenset({"team_id", "metadata", "data_class", *_LIMIT_FIELDS})
KEY_FIELDS = frozenset(
    {
        "team_id",
        "name",
        "aliases",
        "policy",
        "slo_ttft_ms",
        "cache",
        "metadata",
        "expires_at",
        "expires_in_s",
        "disabled",
        "data_class",
        *_LIMIT_FIELDS,
    }
)


# --- bodies -> model objects -------------------------------------------------------------


def json_body(raw: bytes) -> Body:
    """The body as a JSON object (an empty body is ``{}``)."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidRequest("the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"the body must be a JSON object, got {_kind(value)}")
    return value


def new_team(body: Body, now: float) -> Team:
    """``POST /admin/teams``: a team from its body (``team_id`` required)."""
    _known(body, TEAM_FIELDS)
    if "team_id" not in body:
        raise InvalidRequest("team_id is required", param="team_id")
    return _apply_team(Team(team_id_from(body["team_id"], "team_id"), created_at=now), body)


def patch_team(team: Team, body: Body) -> Team:
    """``PATCH /admin/teams/{id}``: the fields given replace the stored ones (null clears a
    limit; ``budget_usd`` merges per period)."""
    _known(body, TEAM_FIELDS - {"team_id"}, fixed="team_id")
    return _apply_team(team, body)


def new_key(body: Body, *, key_id: str, secret_hash: str, hint: str, now: float) -> VirtualKey:
    """``POST /admin/keys``: a key from its body; the team defaults to ``default``."""
    _known(body, KEY_FIELDS)
    team_id = team_id_from(body.get("team_id", DEFAULT_TEAM), "team_id")
    key = VirtualKey(key_id, secret_hash, team_id, hint=hint, created_at=now)
    return _apply_key(key, body, now)


def patch_key(key: VirtualKey, body: Body, now: float) -> VirtualKey:
    """``PATCH /admin/keys/{id}``: the fields given replace the stored ones."""
    _known(body, KEY_FIELDS - {"team_id"}, fixed="team_id")
    return _apply_key(key, body, now)


def new_key_id() -> str:
    """``key_`` and 12 hex digits (48 random bits: an id, not a secret)."""
    return "key_" + secrets.token_hex(6)


def hint_for(secret: str) -> str:
    """``sk-gw-...abcd``: recognisable in a list, useless as a credential."""
    return f"{KEY_PREFIX}...{secret[-4:]}"


def team_id_from(value: object, param: str) -> str:
    """A team id: 1-64 of ``A-Z a-z 0-9 . _ -``, starting with a letter or digit."""
    if not isinstance(value, str) or not _TEAM_ID.fullmatch(value):
        raise InvalidRequest(
            f"{param} must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter "
            f"or digit), got {shown(value)}",
            param=param,
        )
    return value


def usd_to_micros(value: object, param: str) -> int:
    """US dollars (a JSON number or a decimal string) -> micro-dollars; 400 unless finite,
    not negative and at most ``MAX_USD``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidRequest(
            f"{param} must be an amount of US dollars, got {_kind(value)}", param=param
        )
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidRequest(
            f"{param} must be an amount of US dollars, got {shown(value)}", param=param
        ) from None
    if not amount.is_finite():
        raise InvalidRequest(f"{param} must be a finite amount, got {value}", param=param)
    if amount < 0:
        raise InvalidRequest(f"{param} must not be negative, got {value}", param=param)
    if amount > MAX_USD:
        raise InvalidRequest(f"{param} must be at most ${MAX_USD}, got {value}", param=param)
    return to_micros(amount)


def _apply_team(team: Team, body: Body) -> Team:
    limits = _limits(team.limits, body)
    metadata = _metadata(body["metadata"]) if "metadata" in body else team.metadata
    data_class = _data_class(body["data_class"]) if "data_class" in body else team.data_class
    return replace(team, limits=limits, metadata=metadata, data_class=data_class)


def _apply_key(key: VirtualKey, body: Body, now: float) -> VirtualKey:
    changes: dict[str, object] = {"limits": _limits(key.limits, body)}
    if "name" in body:
        changes["name"] = _text(body["name"], "name", empty_ok=True)
    if "aliases" in body:
        changes["aliases"] = _aliases(body["aliases"])
    if "policy" in body:
        changes["policy"] = _optional(body["policy"], "policy", _text)
    if "slo_ttft_ms" in body:
        changes["slo_ttft_ms"] = _optional(body["slo_ttft_ms"], "slo_ttft_ms", _positive)
    if "cache" in body:
        changes["cache"] = _cache_mode(body["cache"])
    if "metadata" in body:
        changes["metadata"] = _metadata(body["metadata"])
    if "data_class" in body:
        changes["data_class"] = _data_class(body["data_class"])
    if "disabled" in body:
        if not isinstance(body["disabled"], bool):
            raise InvalidRequest(
                f"disabled must be true or false, got {_kind(body['disabled'])}",
                param="disabled",
            )
        changes["disabled"] = body["disabled"]
    if "expires_at" in body or "expires_in_s" in body:
        changes["expires_at"] = _expiry(body, now)
    return replace(key, **changes)  # type: ignore[arg-type]


def _limits(base: Limits, body: Body) -> Limits:
    budget = dict(base.budget_micros)
    if "budget_usd" in body:
        budget = _budget(budget, body["budget_usd"])
    return Limits(
        budget_micros=budget,
        rpm=_optional(body["rpm"], "rpm", _count) if "rpm" in body else base.rpm,
        tpm=_optional(body["tpm"], "tpm", _count) if "tpm" in body else base.tpm,
        max_parallel=(
            _optional(body["max_parallel"], "max_parallel", _count)
            if "max_parallel" in body
            else base.max_parallel
        ),
    )


def _budget(budget: dict[Period, int], value: object) -> dict[Period, int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(
            f"budget_usd must be an object with day, month and/or total, got {_kind(value)}",
            param="budget_usd",
        )
    for name, amount in value.items():
        period = _period(name)
        if amount is None:
            budget.pop(period, None)
        else:
            budget[period] = usd_to_micros(amount, f"budget_usd.{period}")
    return budget


def _period(name: object) -> Period:
    for period in PERIODS:
        if name == period:
            return period
    raise InvalidRequest(
        f"budget_usd has no period {shown(name)}; periods: {', '.join(PERIODS)}",
        param=f"budget_usd.{name}",
    )


def _expiry(body: Body, now: float) -> float | None:
    if "expires_at" in body and "expires_in_s" in body:
        raise InvalidRequest("give expires_at or expires_in_s, not both", param="expires_in_s")
    if "expires_in_s" in body:
        relative = now + _positive(body["expires_in_s"], "expires_in_s")
        if relative > LATEST_TS:
            raise InvalidRequest("expires_in_s reaches past the year 9999", param="expires_in_s")
        return relative
    expires_at = _optional(body["expires_at"], "expires_at", _positive)
    if expires_at is not None and expires_at <= now:
        raise InvalidRequest(
            f"expires_at ({expires_at}) is in the past; revoke a key to stop it now",
            param="expires_at",
        )
    return expires_at


def _aliases(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InvalidRequest(
            f"aliases must be a list of model names, got {_kind(value)}", param="aliases"
        )
    names = [_text(item, f"aliases[{i}]") for i, item in enumerate(value)]
    return tuple(dict.fromkeys(names))


def _metadata(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidRequest(
            f"metadata must be an object of strings, got {_kind(value)}", param="metadata"
        )
    if len(value) > MAX_METADATA:
        raise InvalidRequest(
            f"metadata may have at most {MAX_METADATA} entries, got {len(value)}",
            param="metadata",
        )
    return {name: _text(item, f"metadata.{name}", empty_ok=True) for name, item in value.items()}


def _text(value: object, param: str, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{param} must be a string, got {_kind(value)}", param=param)
    if not value and not empty_ok:
        raise InvalidRequest(f"{param} must not be empty", param=param)
    if len(value) > MAX_TEXT:
        raise InvalidRequest(f"{param} is longer than {MAX_TEXT} characters", param=param)
    return value


def _count(value: object, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{param} must be a whole number, got {_kind(value)}", param=param)
    if not 1 <= value <= MAX_COUNT:
        raise InvalidRequest(
            f"{param} must be from 1 to {MAX_COUNT} (null for no limit), got {value}",
            param=param,
        )
    return value


def _positive(value: object, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{param} must be a number, got {_kind(value)}", param=param)
    number = float(value)
    if not 0 < number < LATEST_TS:
        raise InvalidRequest(f"{param} must be a positive finite number, got {value}", param=param)
    return number


def _data_class(value: object) -> DataClass | None:
    """``public``, ``internal``, ``private``, or null for no floor."""
    if value is None:
        return None
    try:
        return parse_data_class(value, "data_class")
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="data_class") from None


def _cache_mode(value: object) -> Mode | None:
    try:
        return parse_mode(value, "cache")
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="cache") from None


def _optional(value: object, param: str, parse: Callable[[object, str], T]) -> T | None:
    return None if value is None else parse(value, param)


def _known(body: Body, allowed: frozenset[str], *, fixed: str | None = None) -> None:
    for name in body:
        if name == fixed:
            raise InvalidRequest(f"{name} cannot be changed", param=name)
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise InvalidRequest(f"unknown field {name!r}; known fields: {known}", param=name)


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def shown(value: object) -> str:
    """``repr(value)``, cut to 80 characters (for messages)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- model objects -> JSON ---------------------------------------------------------------


def usd(micros: int) -> float:
    """Micro-dollars as a JSON number of dollars (6 decimals; the exact value is in micros)."""
    return float(to_usd(micros))


def limits_json(limits: Limits) -> dict[str, object]:
    """Budgets per period (null = none) and the rate limits."""
    return {
        "budget_usd": {p: _maybe_usd(limits.budget_micros.get(p)) for p in PERIODS},
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "max_parallel": limits.max_parallel,
    }


def team_json(team: Team, spent: Mapping[Period, int] | None = None) -> dict[str, object]:
    """A team; with ``spent``, the spend and the budget left in each period too."""
    reply: dict[str, object] = {
        "object": "team",
        "team_id": team.team_id,
        **limits_json(team.limits),
        "metadata": dict(team.metadata),
        "data_class": team.data_class,
        "created_at": team.created_at,
    }
    if spent is not None:
        reply.update(spend_json(team.limits, spent))
    return reply


def key_json(key: VirtualKey, spent: Mapping[Period, int] | None = None) -> dict[str, object]:
    """A key, never its secret or the secret's hash."""
    reply: dict[str, object] = {
        "object": "key",
        "key_id": key.key_id,
        "hint": key.hint,
        "team_id": key.team_id,
        "name": key.name,
        "aliases": list(key.aliases),
        **limits_json(key.limits),
        "policy": key.policy,
        "slo_ttft_ms": key.slo_ttft_ms,
        "cache": key.cache,
        "metadata": dict(key.metadata),
        "data_class": key.data_class,
        "expires_at": key.expires_at,
        "disabled": key.disabled,
        "created_at": key.created_at,
    }
    if spent is not None:
        reply.update(spend_json(key.limits, spent))
    return reply


def spend_json(limits: Limits, spent: Mapping[Period, int]) -> dict[str, object]:
    """Spent (or reserved) per period and the budget left (negative when overspent)."""
    left = {
        p: limits.budget_micros[p] - spent.get(p, 0) if p in limits.budget_micros else None
        for p in PERIODS
    }
    return {
        "spent_usd": {p: usd(spent.get(p, 0)) for p in PERIODS},
        "spent_micros": {p: spent.get(p, 0) for p in PERIODS},
        "budget_left_usd": {p: _maybe_usd(left[p]) for p in PERIODS},
    }


def row_json(row: SpendRow) -> dict[str, object]:
    """One group's totals: dollars (6 decimals) and the exact micro-dollars."""
    return {
        "group": row.group,
        "requests": row.requests,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cost_usd": usd(row.cost_micros),
        "shadow_usd": usd(row.shadow_micros),
        "reference_usd": usd(row.reference_micros),
        "savings_usd": usd(row.savings_micros),
        "cost_micros": row.cost_micros,
        "shadow_micros": row.shadow_micros,
        "reference_micros": row.reference_micros,
        "savings_micros": row.savings_micros,
    }


def total_row(rows: Sequence[SpendRow]) -> SpendRow:
    """The sum of ``rows``, as the group ``total``."""
    return SpendRow(
        group="total",
        requests=sum(r.requests for r in rows),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        cost_micros=sum(r.cost_micros for r in rows),
        shadow_micros=sum(r.shadow_micros for r in rows),
        reference_micros=sum(r.reference_micros for r in rows),
        savings_micros=sum(r.savings_micros for r in rows),
    )


def _maybe_usd(micros: int | None) -> float | None:
    return None if micros is None else usd(micros)
