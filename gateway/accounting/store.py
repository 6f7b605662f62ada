"""The accounting store: one interface, two implementations with the same semantics.

``RedisStore`` (``redis_store.py``) is the shared one: every replica sees the same keys,
budgets, windows and ledger, and each admission or settlement is one Lua script (atomic; one
round trip per admission, one per batch of settlements). ``MemoryStore``
(``memory_store.py``) runs the same rules in-process for a single replica with no Redis
configured (the demo). Both are tested against one contract.

An admission that fits records what it took in a per-request held entry, and the settlement
gives back exactly that, so settling needs only the record: an admission the caller gave up
on (a timeout; the store may still apply it) is refunded all the same when its request
settles, and one the store applies after the settlement writes nothing. The held entry
expires at the admission's deadline: a request never settled (its replica died) keeps its
reservation counted, conservatively, while its parallel slot expires.

Layout in Redis (every key one script touches shares the team's hash tag, so Redis Cluster
works unchanged): ``gw:{t:TEAM}:...`` holds the team's and its keys' budget counters, rate
windows, parallel slots, held entries, per-day spend totals and ledger stream; ``gw:key:ID``
and ``gw:keyhash:SHA`` the key records; ``gw:team:ID`` and ``gw:teams`` the team records;
``gw:audit`` the privacy audit log (a capped stream, one key: each command touches only it).
Imports: stdlib and ``model``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.accounting.model import (
    Admission,
    AuditRecord,
    GroupBy,
    Period,
    PeriodIds,
    SpendRecord,
    SpendRow,
    Team,
    Verdict,
    VirtualKey,
)


class StoreUnavailable(Exception):
    """The store could not be reached in time (Redis down, slow or refusing)."""


class Store(Protocol):
    """Keys, teams, admissions, settlements and the spend they add up to."""

    shared: bool
    """True when several replicas share this store (Redis)."""

    async def admit(self, admission: Admission) -> Verdict:
        """Check key and team rate limits, parallel slots and budgets; if all fit, count the
        request, reserve ``reserve_micros`` and ``tokens`` and hold what it took until the
        request settles or the admission's deadline passes, atomically. A request already
        settled is not counted again: nothing is written and the verdict is admitted."""
        ...

    async def settle(self, record: SpendRecord) -> bool:
        """If the request's admission is held, turn its reservation into the actual cost (a
        failed request refunds all of it) in the periods it was made in, free its parallel
        slots and correct its TPM; otherwise charge the record's cost to the record's periods.
        Then add the day's totals and append the record to the ledger, atomically.
        Idempotent by request id: False when already settled (nothing changes)."""
        ...

    async def settle_many(self, records: Sequence[SpendRecord]) -> list[bool]:
        """``settle`` each record, in order, in one round trip; one answer per record.

        Each settlement is atomic on its own, the batch is not: on StoreUnavailable some
        may have been applied, and settling the whole batch again answers False for those."""
        ...

    async def spend(
        self, group_by: GroupBy, start: float, end: float, team_id: str | None = None
    ) -> list[SpendRow]:
        """Totals per group over the UTC days from ``start`` to ``end`` (inclusive)."""
        ...

    async def records(
        self, start: float, end: float, team_id: str | None = None
    ) -> Sequence[SpendRecord]:
        """Ledger records with ``start <= ts < end``, oldest first."""
        ...

    async def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """Append privacy audit records to the audit log (capped: the oldest go first)."""
        ...

    async def audit(
        self, since: float, limit: int, team_id: str | None = None
    ) -> list[AuditRecord]:
        """Up to ``limit`` audit records with ``ts >= since`` (of one team), newest first."""
        ...

    async def spent(
        self, team_id: str, key_id: str | None, periods: PeriodIds
    ) -> dict[Period, int]:
        """Micro-dollars spent or reserved in each budget period (team's, or the key's)."""
        ...

    async def save_team(self, team: Team) -> None:
        """Create or replace a team."""
        ...

    async def team(self, team_id: str) -> Team | None:
        """A team by id."""
        ...

    async def teams(self) -> list[Team]:
        """All teams, by id."""
        ...

    async def delete_team(self, team_id: str) -> bool:
        """Remove a team record (its keys and spend stay); False if it did not exist."""
        ...

    async def save_key(self, key: VirtualKey) -> None:
        """Create or replace a key (indexed by id and by secret hash)."""
        ...

    async def key_by_hash(self, secret_hash: str) -> VirtualKey | None:
        """The key whose secret hashes to ``secret_hash``."""
        ...

    async def key(self, key_id: str) -> VirtualKey | None:
        """A key by id."""
        ...

    async def keys(self, team_id: str | None = None) -> list[VirtualKey]:
        """All keys (of one team), by id."""
        ...

    async def delete_key(self, key_id: str) -> bool:
        """Remove a key for good; False if it did not exist."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
