"""What accounting stores and exchanges: teams, virtual keys, admissions, spend records.

Money is integer micro-dollars (``micros``) everywhere it is stored or summed, so totals in
Redis, the ledger and a recomputation from token counts agree to the micro-dollar; ``Decimal``
dollars exist only where prices multiply tokens (``cost.py``). Times are epoch seconds (UTC).
Imports: stdlib, ``gateway.cache.settings`` and ``policies.model``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Literal

from gateway.cache.settings import Mode
from policies.model import DataClass

MICROS_PER_USD = 1_000_000
KEY_PREFIX = "sk-gw-"
DEFAULT_TEAM = "default"
Period = Literal["day", "month", "total"]
PERIODS: tuple[Period, ...] = ("day", "month", "total")
Source = Literal["paid", "local", "cache"]
GroupBy = Literal["team", "key", "alias", "deployment"]
Refusal = Literal["budget", "requests", "tokens", "parallel"]


def to_micros(usd: Decimal) -> int:
    """Dollars -> integer micro-dollars, half up (one rounding per record, never per sum)."""
    return int((usd * MICROS_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_usd(micros: int) -> Decimal:
    """Integer micro-dollars -> exact dollars."""
    return Decimal(micros) / MICROS_PER_USD


@dataclass(frozen=True, slots=True)
class PeriodIds:
    """The budget periods an instant falls in: ``2026-11-30``, ``2026-11`` (UTC)."""

    day: str
    month: str

    @classmethod
    def at(cls, ts: float) -> PeriodIds:
        """The periods of epoch second ``ts``."""
        return _periods_of_day(int(ts // _DAY_S))


_DAY_S = 86_400


@lru_cache(maxsize=64)
def _periods_of_day(day: int) -> PeriodIds:
    """Formatting dates costs microseconds per request; a day's ids are computed once."""
    moment = datetime.fromtimestamp(day * _DAY_S, UTC)
    return PeriodIds(moment.strftime("%Y-%m-%d"), moment.strftime("%Y-%m"))


@dataclass(frozen=True, slots=True)
class Limits:
    """Budgets (micro-dollars per period) and rate limits of one key or team; None = none."""

    budget_micros: Mapping[Period, int] = field(default_factory=dict)
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None

    @property
    def unlimited(self) -> bool:
        """No budget and no rate or parallel limit: nothing can refuse a request."""
        return not self.budget_micros and all(
            limit is None for limit in (self.rpm, self.tpm, self.max_parallel)
        )


@dataclass(frozen=True, slots=True)
class Team:
    """A group of keys with its own budgets and limits."""

    team_id: str
    limits: Limits = Limits()
    metadata: Mapping[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    data_class: DataClass | None = None
    """The least strict data class of the team's requests (None: no floor)."""


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """A client key ``sk-gw-...``; only ``secret_hash`` of the secret is ever stored."""

    key_id: str
    secret_hash: str
    team_id: str
    name: str = ""
    hint: str = ""
    """``sk-gw-...last4``: enough to recognise a key in a list, not to use it."""
    aliases: tuple[str, ...] = ()
    """Aliases this key may call; empty = all."""
    limits: Limits = Limits()
    policy: str | None = None
    slo_ttft_ms: float | None = None
    cache: Mode | None = None
    """The response cache's mode for this key's requests (None: the alias's)."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    expires_at: float | None = None
    disabled: bool = False
    created_at: float = 0.0
    data_class: DataClass | None = None
    """The least strict data class of the key's requests (None: no floor)."""

    def allows(self, alias: str) -> bool:
        """Whether this key may call ``alias``."""
        return not self.aliases or alias in self.aliases

    def usable_at(self, ts: float) -> bool:
        """Not disabled and not expired at ``ts``."""
        return not self.disabled and (self.expires_at is None or ts < self.expires_at)


def new_secret() -> str:
    """A fresh key secret: ``sk-gw-`` and 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The stored form of a secret (SHA-256 hex; secrets are random, so no salt is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is billed to: a key and its team (the demo's open mode: DEFAULT_TEAM)."""

    team: Team
    key: VirtualKey | None = None

    @property
    def key_id(self) -> str:
        """The key's id, or ``-`` when auth is off."""
        return self.key.key_id if self.key is not None else "-"


@dataclass(frozen=True, slots=True)
class Admission:
    """What one request asks of the store before its upstream call (one round trip)."""

    request_id: str
    team: Team
    key: VirtualKey | None
    reserve_micros: int
    """Worst-case billed cost: prompt estimate + max output tokens at the priciest price."""
    tokens: int
    """Tokens charged to TPM at admission (prompt estimate + max output); settled to actual."""
    admitted_at: float
    """The gateway's clock at admission: rate windows and budget periods are taken from it."""
    deadline_s: float
    """How long the request may hold a parallel slot if never settled (a crashed replica)."""

    @property
    def periods(self) -> PeriodIds:
        """The budget periods the reservation was made in (settling adjusts the same ones)."""
        return PeriodIds.at(self.admitted_at)

    @property
    def takes_slot(self) -> bool:
        """Whether the request takes a parallel slot (its key or its team limits them)."""
        key_slot = self.key is not None and self.key.limits.max_parallel is not None
        return key_slot or self.team.limits.max_parallel is not None


@dataclass(frozen=True, slots=True)
class RateState:
    """The tightest RPM/TPM window after this request, for ``x-ratelimit-*`` headers."""

    limit: int
    remaining: int
    reset_s: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """The store's answer to an admission."""

    admitted: bool
    refusal: Refusal | None = None
    detail: str = ""
    """Names the limit that refused, e.g. "team 'research' daily budget of $5.000000"."""
    retry_after_s: float | None = None
    requests: RateState | None = None
    tokens: RateState | None = None
    budget_left_micros: int | None = None
    """The tightest budget left (after this reservation) across key and team, if any is set."""
    budget_total_micros: int | None = None
    team_budget_left_micros: int | None = None
    """The team's tightest budget left, for the ``gateway_budget_remaining_usd`` gauge."""
    team_budget_used_ratio: float | None = None
    """The most used of the team's budgets, as a fraction (``gateway_budget_used_ratio``)."""


@dataclass(frozen=True, slots=True)
class SpendRecord:
    """One finished request, as the ledger keeps it (never prompt text, never a secret)."""

    request_id: str
    ts: float
    key_id: str
    team_id: str
    alias: str
    deployment: str
    provider: str
    source: Source
    input_tokens: int
    output_tokens: int
    cost_micros: int
    """Billed: 0 for local workers and cache hits."""
    shadow_micros: int
    """Local workers: the GPU time's cost at measured throughput (recorded, not billed)."""
    reference_micros: int
    """The same tokens on the configured reference paid model."""
    latency_ms: float
    ttft_ms: float | None
    status: int
    estimated: bool = False
    """Token counts came from the gateway's tokenizer, not the upstream's usage."""
    cache_hit: bool = False

    @property
    def savings_micros(self) -> int:
        """What serving locally or from cache avoided, against the reference model."""
        return self.reference_micros - self.cost_micros if self.source != "paid" else 0

    def to_fields(self) -> dict[str, str]:
        """Flat string fields (a Redis Stream entry, a CSV row)."""
        return {
            name: _encode(getattr(self, name))
            for name in SpendRecord.__dataclass_fields__  # declaration order
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> SpendRecord:
        """The inverse of ``to_fields``."""
        return cls(
            request_id=fields["request_id"],
            ts=float(fields["ts"]),
            key_id=fields["key_id"],
            team_id=fields["team_id"],
            alias=fields["alias"],
            deployment=fields["deployment"],
            provider=fields["provider"],
            source=_source(fields["source"]),
            input_tokens=int(fields["input_tokens"]),
            output_tokens=int(fields["output_tokens"]),
            cost_micros=int(fields["cost_micros"]),
            shadow_micros=int(fields["shadow_micros"]),
            reference_micros=int(fields["reference_micros"]),
            latency_ms=float(fields["latency_ms"]),
            ttft_ms=None if fields["ttft_ms"] == "" else float(fields["ttft_ms"]),
            status=int(fields["status"]),
            estimated=fields["estimated"] == "1",
            cache_hit=fields["cache_hit"] == "1",
        )


def _encode(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _source(value: str) -> Source:
    if value == "local":
        return "local"
    if value == "cache":
        return "cache"
    return "paid"


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One group's totals over a time range (``/admin/spend``, ``spend report``)."""

    group: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0
    shadow_micros: int = 0
    reference_micros: int = 0
    savings_micros: int = 0


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One request that privacy pinned, upgraded or refused (never prompt text or a match)."""

    ts: float
    request_id: str
    key_id: str
    team_id: str
    alias: str
    data_class: str
    sources: tuple[str, ...]
    """What set the class: ``default``, ``team``, ``key``, ``alias``, ``header``,
    ``detector:NAME``."""
    outcome: str
    """``served`` by ``deployment``, ``refused`` (``reason``), or ``failed`` upstream."""
    deployment: str
    reason: str
    """The routing decision's reason (``no_allowed_deployment`` for a privacy refusal)."""
    status: int
    waited_ms: float = 0.0
    """How long the request queued for an allowed deployment."""

    def to_fields(self) -> dict[str, str]:
        """Flat string fields (a Redis Stream entry)."""
        fields = {name: _encode(getattr(self, name)) for name in AuditRecord.__dataclass_fields__}
        fields["sources"] = ",".join(self.sources)
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> AuditRecord:
        """The inverse of ``to_fields``."""
        return cls(
            ts=float(fields["ts"]),
            request_id=fields["request_id"],
            key_id=fields["key_id"],
            team_id=fields["team_id"],
            alias=fields["alias"],
            data_class=fields["data_class"],
            sources=tuple(s for s in fields["sources"].split(",") if s),
            outcome=fields["outcome"],
            deployment=fields["deployment"],
            reason=fields["reason"],
            status=int(fields["status"]),
            waited_ms=float(fields.get("waited_ms") or 0.0),
        )
