"""An admission's raw outcome turned into a ``Verdict``, the same way by both stores.

``Refused`` or ``Admitted`` are plain counts, as the Redis Lua script returns them and as
``MemoryStore`` computes them; ``verdict`` adds the refusal's wording and its Retry-After, and
the rate headers' state. The rate window's rules (its bounds, where room frees) live here too.
Imports: stdlib and ``model``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from gateway.accounting.model import (
    Admission,
    Limits,
    Period,
    RateState,
    Refusal,
    Verdict,
    to_usd,
)

WINDOW_S = 60
"""Rate windows: the last 60 one-second buckets (second > now - 60)."""
SubjectKind = Literal["key", "team"]


@dataclass(frozen=True, slots=True)
class Subject:
    """One party an admission is checked against: the key (if any), then the team."""

    kind: SubjectKind
    name: str
    limits: Limits


def subjects(admission: Admission) -> list[Subject]:
    """The key (when there is one) and the team, in the order they are checked."""
    found = [Subject("team", admission.team.team_id, admission.team.limits)]
    if admission.key is not None:
        found.insert(0, Subject("key", admission.key.key_id, admission.key.limits))
    return found


@dataclass(frozen=True, slots=True)
class Refused:
    """The first check that failed (index into ``subjects``), with what it counted."""

    refusal: Refusal
    subject: int
    limit: int
    used: int
    """Active slots, requests or tokens in the window, or micros spent or reserved."""
    period: Period | None = None
    """Budget refusals: the period whose limit refused."""
    room_at: int | None = None
    """Rate refusals: the epoch second of the bucket whose leaving makes room (None: never)."""


@dataclass(frozen=True, slots=True)
class WindowUse:
    """A subject's rate window after the admission counted in it."""

    subject: int
    limit: int
    used: int
    oldest: int
    """The oldest bucket's epoch second (the window's first room frees when it leaves)."""


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """A subject's limited budget counter after the reservation."""

    subject: int
    period: Period
    limit: int
    used: int


@dataclass(frozen=True, slots=True)
class Admitted:
    """What an admission counted, for the limits that are set."""

    requests: tuple[WindowUse, ...] = ()
    tokens: tuple[WindowUse, ...] = ()
    budgets: tuple[BudgetUse, ...] = ()


def window_start(second: int) -> int:
    """The oldest bucket second still in the window at any instant within ``second``."""
    return second - WINDOW_S + 1


def room_at(buckets: Iterable[tuple[int, int]], need: int) -> int | None:
    """The second of the bucket whose leaving frees ``need`` units (oldest leave first)."""
    freed = 0
    for second, count in sorted(buckets):
        freed += count
        if freed >= need:
            return second
    return None


def verdict(admission: Admission, outcome: Refused | Admitted) -> Verdict:
    """The Verdict both stores return for ``outcome``."""
    found = subjects(admission)
    now = admission.admitted_at
    if isinstance(outcome, Refused):
        retry_after = _retry_after(outcome, now)
        # A rate refusal reports the window that refused (x-ratelimit-* on the 429).
        window = None
        if outcome.refusal in ("requests", "tokens"):
            reset = retry_after if retry_after is not None else float(WINDOW_S)
            window = RateState(outcome.limit, max(0, outcome.limit - outcome.used), reset)
        return Verdict(
            admitted=False,
            refusal=outcome.refusal,
            detail=refusal_detail(found[outcome.subject], outcome, admission),
            retry_after_s=retry_after,
            requests=window if outcome.refusal == "requests" else None,
            tokens=window if outcome.refusal == "tokens" else None,
        )
    budgets = outcome.budgets
    tightest = min(budgets, key=lambda b: b.limit - b.used, default=None)
    team_index = len(found) - 1
    team = [b for b in budgets if b.subject == team_index]
    return Verdict(
        admitted=True,
        requests=_rate_state(outcome.requests, now),
        tokens=_rate_state(outcome.tokens, now),
        budget_left_micros=None if tightest is None else tightest.limit - tightest.used,
        budget_total_micros=None if tightest is None else tightest.limit,
        team_budget_left_micros=min((b.limit - b.used for b in team), default=None),
        team_budget_used_ratio=max((b.used / b.limit for b in team if b.limit > 0), default=None),
    )


_PERIOD_WORDS: dict[Period, str] = {"day": "daily", "month": "monthly", "total": "total"}


def refusal_detail(subject: Subject, refused: Refused, admission: Admission) -> str:
    """Names the limit that refused (ids only, never a secret)."""
    who = f"{subject.kind} '{subject.name}'"
    if refused.refusal == "budget":
        period = _PERIOD_WORDS[refused.period or "total"]
        return (
            f"{who} {period} budget of {_usd(refused.limit)} is used up"
            f" ({_usd(refused.used)} spent or reserved;"
            f" this request may cost up to {_usd(admission.reserve_micros)})"
        )
    if refused.refusal == "requests":
        return f"{who} limit of {refused.limit} requests per minute reached"
    if refused.refusal == "tokens":
        return (
            f"{who} limit of {refused.limit} tokens per minute reached"
            f" ({refused.used} used in the last minute; this request counts {admission.tokens})"
        )
    return f"{who} limit of {refused.limit} parallel requests reached"


def _usd(micros: int) -> str:
    return f"${to_usd(micros):.6f}"


def _retry_after(refused: Refused, now: float) -> float | None:
    if refused.refusal == "budget":
        return _next_period_start(refused.period, now)
    if refused.refusal in ("requests", "tokens") and refused.room_at is not None:
        return refused.room_at + WINDOW_S - now
    return None  # parallel: a slot frees when a request ends, which the store cannot know


def _next_period_start(period: Period | None, now: float) -> float | None:
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        start = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)
    elif period == "month":
        year, month = (
            (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        )
        start = datetime(year, month, 1, tzinfo=UTC)
    else:
        return None
    return start.timestamp() - now


def _rate_state(windows: tuple[WindowUse, ...], now: float) -> RateState | None:
    if not windows:
        return None
    tightest = min(windows, key=lambda w: w.limit - w.used)
    return RateState(
        limit=tightest.limit,
        remaining=max(0, tightest.limit - tightest.used),
        reset_s=tightest.oldest + WINDOW_S - now,
    )
