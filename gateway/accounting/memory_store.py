"""``MemoryStore``: the accounting ``Store`` in process, for one replica without Redis.

It keeps what ``RedisStore`` keeps, shaped the same way (per team: budget counters, one-second
rate buckets, parallel slots, day totals per group, a bounded ledger) and applies the same
rules through ``codec`` and ``verdicts``, so the two answer alike; the contract test checks
that. Every method runs to completion without awaiting, so on asyncio's single thread each
admission or settlement is atomic without locks. Like Redis, an admission holds what it took
(``_Held``) until its request settles or its deadline passes (then the reservation stays
counted), and an admission of a request already settled writes nothing. Nothing survives a
restart.
Imports: stdlib, ``model``, ``codec``, ``verdicts``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.accounting.codec import (
    DONE_TTL_S,
    GROUPS,
    day_of,
    days_between,
    record_groups,
    record_metrics,
    spend_rows,
)
from gateway.accounting.model import (
    DEFAULT_TEAM,
    PERIODS,
    Admission,
    AuditRecord,
    GroupBy,
    Period,
    PeriodIds,
    Refusal,
    SpendRecord,
    SpendRow,
    Team,
    Verdict,
    VirtualKey,
)
from gateway.accounting.verdicts import (
    Admitted,
    BudgetUse,
    Refused,
    Subject,
    SubjectKind,
    WindowUse,
    room_at,
    subjects,
    verdict,
    window_start,
)

Cell = tuple[str, SubjectKind, str]
"""(team_id, "key" | "team", key or team id): whose counters, under which team."""
Buckets = dict[int, int]
"""Epoch second -> requests or tokens counted in it."""


def _period_ids(periods: PeriodIds) -> dict[Period, str]:
    return {"day": f"day:{periods.day}", "month": f"month:{periods.month}", "total": "total"}


@dataclass(frozen=True, slots=True)
class _Held:
    """What one admission took, given back when its request settles (``admit.lua``'s held
    entry)."""

    reserve: int
    tokens: int
    second: int
    """The epoch second of the TPM bucket its tokens were added to."""
    periods: PeriodIds
    cells: tuple[tuple[Cell, bool, bool], ...]
    """Per subject: its counters, whether it took a parallel slot, whether it counted TPM."""
    until: float
    """Monotonic time it expires (the admission's deadline)."""


class MemoryStore:
    """The Store in this process's memory (``shared = False``)."""

    shared = False

    def __init__(self, *, ledger_max_len: int = 1_000_000, audit_max_len: int = 100_000) -> None:
        self.ledger_max_len = ledger_max_len
        self._audit: deque[AuditRecord] = deque(maxlen=audit_max_len)
        self._teams: dict[str, Team] = {}
        self._keys: dict[str, VirtualKey] = {}
        self._key_ids_by_hash: dict[str, str] = {}
        self._slots: dict[Cell, dict[str, float]] = {}
        self._rpm: dict[Cell, Buckets] = {}
        self._tpm: dict[Cell, Buckets] = {}
        self._budgets: dict[tuple[Cell, str], int] = {}
        self._done: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], _Held] = {}
        self._prune_at = 1024
        self._totals: dict[tuple[str, str, GroupBy], dict[str, dict[str, int]]] = {}
        self._ledgers: dict[str, deque[SpendRecord]] = {}
        self._spend_teams: set[str] = set()

    # --- admissions and settlements ------------------------------------------------------

    async def admit(self, admission: Admission) -> Verdict:
        """Check, then count, reserve and hold, with no await in between (atomic on asyncio);
        nothing at all if the request is already settled."""
        if (admission.team.team_id, admission.request_id) in self._done:
            return verdict(admission, Admitted())
        found = subjects(admission)
        cells = [self._cell(admission.team.team_id, s) for s in found]
        refused = self._refusal(admission, found, cells)
        if refused is not None:
            return verdict(admission, refused)
        return verdict(admission, self._reserve(admission, found, cells))

    def _refusal(
        self, admission: Admission, found: list[Subject], cells: list[Cell]
    ) -> Refused | None:
        now = admission.admitted_at
        lo = window_start(math.floor(now))
        periods = _period_ids(admission.periods)
        for index, (subject, cell) in enumerate(zip(found, cells, strict=True)):
            limits = subject.limits
            if limits.max_parallel is not None:
                active = sum(1 for e in self._slots.get(cell, {}).values() if e > now)
                if active >= limits.max_parallel:
                    return Refused("parallel", index, limits.max_parallel, active)
            rates: tuple[tuple[Refusal, int | None, dict[Cell, Buckets], int], ...] = (
                ("requests", limits.rpm, self._rpm, 1),
                ("tokens", limits.tpm, self._tpm, admission.tokens),
            )
            for refusal, limit, table, amount in rates:
                if limit is None:
                    continue
                window = _in_window(table.get(cell, {}), lo)
                used = sum(window.values())
                if used + amount > limit:
                    need = used + amount - limit
                    room = room_at(window.items(), need) if amount <= limit else None
                    return Refused(refusal, index, limit, used, room_at=room)
            for period in PERIODS:
                budget = limits.budget_micros.get(period)
                if budget is None:
                    continue
                used = self._budgets.get((cell, periods[period]), 0)
                if used + admission.reserve_micros > budget:
                    return Refused("budget", index, budget, used, period=period)
        return None

    def _reserve(self, admission: Admission, found: list[Subject], cells: list[Cell]) -> Admitted:
        now = admission.admitted_at
        second = math.floor(now)
        lo = window_start(second)
        periods = _period_ids(admission.periods)
        requests: list[WindowUse] = []
        tokens: list[WindowUse] = []
        budgets: list[BudgetUse] = []
        for index, (subject, cell) in enumerate(zip(found, cells, strict=True)):
            limits = subject.limits
            if limits.max_parallel is not None:
                slots = {r: e for r, e in self._slots.get(cell, {}).items() if e > now}
                slots[admission.request_id] = now + admission.deadline_s
                self._slots[cell] = slots
            for limit, table, amount, uses in (
                (limits.rpm, self._rpm, 1, requests),
                (limits.tpm, self._tpm, admission.tokens, tokens),
            ):
                if limit is None:
                    continue
                window = _in_window(table.get(cell, {}), lo)
                if amount:
                    window[second] = window.get(second, 0) + amount
                table[cell] = window
                oldest = min(window, default=second)
                uses.append(WindowUse(index, limit, sum(window.values()), oldest))
            for period in PERIODS:
                counter = (cell, periods[period])
                used = self._budgets.get(counter, 0) + admission.reserve_micros
                self._budgets[counter] = used
                budget = limits.budget_micros.get(period)
                if budget is not None:
                    budgets.append(BudgetUse(index, period, budget, used))
        held = tuple(
            (cell, subject.limits.max_parallel is not None, subject.limits.tpm is not None)
            for subject, cell in zip(found, cells, strict=True)
        )
        self._forget_expired()
        self._held[(admission.team.team_id, admission.request_id)] = _Held(
            admission.reserve_micros,
            admission.tokens,
            second,
            admission.periods,
            held,
            time.monotonic() + admission.deadline_s,
        )
        return Admitted(tuple(requests), tuple(tokens), tuple(budgets))

    async def settle(self, record: SpendRecord) -> bool:
        """Settle once per request id: budgets, slot, TPM, day totals, ledger."""
        return self._settle(record)

    async def settle_many(self, records: Sequence[SpendRecord]) -> list[bool]:
        """``settle`` each record in order (with no await in between)."""
        return [self._settle(record) for record in records]

    def _settle(self, record: SpendRecord) -> bool:
        self._forget_expired()
        marker = (record.team_id, record.request_id)
        if marker in self._done:
            return False
        now = time.monotonic()
        self._done[marker] = now + DONE_TTL_S
        held = self._held.pop(marker, None)
        if held is not None and held.until > now:
            self._release(record, held)
        else:
            owners: list[Cell] = [(record.team_id, "team", record.team_id)]
            if record.key_id != "-":
                owners.append((record.team_id, "key", record.key_id))
            self._charge(owners, PeriodIds.at(record.ts), record.cost_micros)
        self._add_totals(record)
        ledger = self._ledgers.setdefault(record.team_id, deque(maxlen=self.ledger_max_len))
        ledger.append(record)
        self._spend_teams.add(record.team_id)
        return True

    def _release(self, record: SpendRecord, held: _Held) -> None:
        """Give back what the admission held: the reservation (less the actual cost), its
        slots, its TPM tokens (less the actual tokens, never below zero)."""
        cells = [cell for cell, _, _ in held.cells]
        self._charge(cells, held.periods, record.cost_micros - held.reserve)
        tokens = record.input_tokens + record.output_tokens - held.tokens
        for cell, slot, tpm in held.cells:
            if slot:
                self._slots.get(cell, {}).pop(record.request_id, None)
            buckets = self._tpm.get(cell)
            if tpm and buckets is not None and held.second in buckets:
                buckets[held.second] = max(0, buckets[held.second] + tokens)

    def _charge(self, cells: Sequence[Cell], periods: PeriodIds, micros: int) -> None:
        for cell in cells:
            for period_id in _period_ids(periods).values():
                counter = (cell, period_id)
                self._budgets[counter] = self._budgets.get(counter, 0) + micros

    def _add_totals(self, record: SpendRecord) -> None:
        day = day_of(record.ts)
        metrics = record_metrics(record)
        for group_by, name in record_groups(record).items():
            groups = self._totals.setdefault((record.team_id, day, group_by), {})
            values = groups.setdefault(name, {})
            for metric, value in metrics.items():
                values[metric] = values.get(metric, 0) + value

    def _forget_expired(self) -> None:
        """Drop expired done markers and held entries, once they are many. Of the markers,
        the newest ``ledger_max_len`` are kept at most: in this process a settlement never
        fails halfway, so nothing is retried days later, and a week of markers (as Redis
        keeps) grew the gateway by ~0.25 KB per request (measured: +7 MiB per 26k)."""
        if len(self._done) + len(self._held) < self._prune_at:
            return
        now = time.monotonic()
        kept = [(m, until) for m, until in self._done.items() if until > now]
        self._done = dict(kept[-self.ledger_max_len :])
        self._held = {m: held for m, held in self._held.items() if held.until > now}
        self._prune_at = max(1024, 2 * (len(self._done) + len(self._held)))

    @staticmethod
    def _cell(team_id: str, subject: Subject) -> Cell:
        return (team_id, subject.kind, subject.name)

    # --- reports -------------------------------------------------------------------------

    async def spend(
        self, group_by: GroupBy, start: float, end: float, team_id: str | None = None
    ) -> list[SpendRow]:
        """Totals per group over the UTC days from ``start`` to ``end`` (inclusive)."""
        if group_by not in GROUPS:
            raise ValueError(f"unknown grouping {group_by!r}")
        totals: dict[str, dict[str, int]] = {}
        for team in [team_id] if team_id is not None else self._known_teams():
            for day in days_between(start, end):
                for name, values in self._totals.get((team, day, group_by), {}).items():
                    row = totals.setdefault(name, {})
                    for metric, value in values.items():
                        row[metric] = row.get(metric, 0) + value
        return spend_rows(totals)

    async def records(
        self, start: float, end: float, team_id: str | None = None
    ) -> Sequence[SpendRecord]:
        """Ledger records with ``start <= ts < end``, oldest first."""
        teams = [team_id] if team_id is not None else self._known_teams()
        found = [
            record
            for team in teams
            for record in self._ledgers.get(team, ())
            if start <= record.ts < end
        ]
        return sorted(found, key=lambda record: record.ts)

    async def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Append to the in-process audit log (capped)."""
        self._audit.extend(records)

    async def audit(
        self, since: float, limit: int, team_id: str | None = None
    ) -> list[AuditRecord]:
        """Up to ``limit`` audit records since ``since`` (of one team), newest first."""
        found: list[AuditRecord] = []
        for record in reversed(self._audit):
            if len(found) >= limit:
                break
            if record.ts >= since and (team_id is None or record.team_id == team_id):
                found.append(record)
        return found

    async def spent(
        self, team_id: str, key_id: str | None, periods: PeriodIds
    ) -> dict[Period, int]:
        """Micro-dollars spent or reserved in each budget period (team's, or the key's)."""
        cell: Cell = (team_id, "team", team_id) if key_id is None else (team_id, "key", key_id)
        return {p: self._budgets.get((cell, pid), 0) for p, pid in _period_ids(periods).items()}

    def _known_teams(self) -> list[str]:
        return sorted({*self._teams, DEFAULT_TEAM, *self._spend_teams})

    # --- teams and keys ------------------------------------------------------------------

    async def save_team(self, team: Team) -> None:
        """Create or replace a team."""
        self._teams[team.team_id] = team

    async def team(self, team_id: str) -> Team | None:
        """A team by id."""
        return self._teams.get(team_id)

    async def teams(self) -> list[Team]:
        """All teams, by id."""
        return [self._teams[t] for t in sorted(self._teams)]

    async def delete_team(self, team_id: str) -> bool:
        """Remove a team record (its keys and spend stay); False if it did not exist."""
        return self._teams.pop(team_id, None) is not None

    async def save_key(self, key: VirtualKey) -> None:
        """Create or replace a key; a replaced secret's hash no longer finds it."""
        old = self._keys.get(key.key_id)
        if old is not None and old.secret_hash != key.secret_hash:
            self._drop_hash(old)
        self._keys[key.key_id] = key
        self._key_ids_by_hash[key.secret_hash] = key.key_id

    async def key_by_hash(self, secret_hash: str) -> VirtualKey | None:
        """The key whose secret hashes to ``secret_hash``."""
        key = self._keys.get(self._key_ids_by_hash.get(secret_hash, ""))
        return key if key is not None and key.secret_hash == secret_hash else None

    async def key(self, key_id: str) -> VirtualKey | None:
        """A key by id."""
        return self._keys.get(key_id)

    async def keys(self, team_id: str | None = None) -> list[VirtualKey]:
        """All keys (of one team), by id."""
        return [
            self._keys[k]
            for k in sorted(self._keys)
            if team_id is None or self._keys[k].team_id == team_id
        ]

    async def delete_key(self, key_id: str) -> bool:
        """Remove a key for good; False if it did not exist."""
        key = self._keys.pop(key_id, None)
        if key is None:
            return False
        self._drop_hash(key)
        return True

    def _drop_hash(self, key: VirtualKey) -> None:
        if self._key_ids_by_hash.get(key.secret_hash) == key.key_id:
            del self._key_ids_by_hash[key.secret_hash]

    async def ping(self) -> None:
        """Always answers: the store is this process."""

    async def aclose(self) -> None:
        """Nothing to release."""


def _in_window(buckets: Buckets, lo: int) -> Buckets:
    """The buckets still in the window (second >= lo), as a new dict."""
    return {second: count for second, count in buckets.items() if second >= lo}
