"""``RedisStore``: the accounting ``Store`` shared by all replicas, on ``redis.asyncio``.

Each admission and each settlement is one Lua script (``lua/admit.lua``, ``lua/settle.lua``),
atomic, and every key it touches carries the team's hash tag ``{t:TEAM}`` so Redis Cluster
can run it. An admission is one round trip; a batch of settlements is one pipeline round
trip. Scripts go by EVALSHA and are loaded again after a Redis restart (NOSCRIPT). Their keys
are declared (KEYS; but for the counters settle.lua names from a held entry, under the same
hash tag, so in the same Cluster slot) and the rest is one JSON text that the script decodes
(cjson), and commands are packed by hiredis: redis-py's own packer costs microseconds per
argument. Times come from the gateway's clock (``admitted_at``, ``ts``), never Redis TIME.
Every call has a deadline; any Redis error, timeout or lost connection is raised as
``StoreUnavailable``, never as a redis exception, so the caller can fail open or closed.

An admission records what it reserved in the request's held entry (its amounts, budget
periods, and which subjects' slots and TPM it took), and the settlement gives back exactly
that, whatever the caller knows: a gateway whose admission timed out (it fails open or
closed) may still see Redis run it afterwards, and its settlement then refunds it like any
other; an admission that Redis runs after the request was settled writes nothing. A held
entry expires with its admission's deadline: if the replica dies before settling, the
reservation stays counted (never an overshoot; the slot expires too).

Layout: ``gw:{t:TEAM}:{team|key}:ID:{slots|rpm|tpm|spent:day:D|spent:month:M|spent:total}``,
``gw:{t:TEAM}:done:REQUEST``, ``gw:{t:TEAM}:held:REQUEST``, ``gw:{t:TEAM}:spend:DAY:GROUPING``
(hash ``metric:name``), ``gw:{t:TEAM}:ledger`` (stream); ``gw:team:ID`` + ``gw:teams``,
``gw:key:ID`` + ``gw:keys``, ``gw:keyhash:SHA`` -> key id; ``gw:spendteams`` (teams with
settled spend). No KEYS command.
Imports: stdlib, ``redis``, ``hiredis``, ``model``, ``codec``, ``verdicts``, ``store``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import math
from collections.abc import Awaitable, Sequence
from importlib import resources
from typing import Any, TypeVar, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, RedisError

from gateway.accounting.codec import (
    DAY_TTL_S,
    DONE_TTL_S,
    GROUPS,
    MONTH_TTL_S,
    RATE_TTL_S,
    days_between,
    key_from_json,
    key_to_json,
    record_groups,
    record_metrics,
    spend_rows,
    team_from_json,
    team_to_json,
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
from gateway.accounting.store import StoreUnavailable
from gateway.accounting.verdicts import (
    Admitted,
    BudgetUse,
    Refused,
    WindowUse,
    subjects,
    verdict,
)
from gateway.redis_pool import connection_pool

T = TypeVar("T")
_Call = tuple[list[str], list[str]]
"""One script run's KEYS and ARGV."""
TEAMS = "gw:teams"
KEYS = "gw:keys"
SPEND_TEAMS = "gw:spendteams"
PAGE = 1000
AUDIT_KEY = "gw:audit"
"""Commands per pipeline and stream entries per XRANGE page (each its own deadline)."""
SETTLE_PAGE = 64
"""Settlements per pipeline round trip (each its own deadline: ~0.1 ms of Redis time each)."""
_REFUSALS: tuple[Refusal, ...] = ("parallel", "requests", "tokens", "budget")
_LUA = resources.files("gateway.accounting") / "lua"
ADMIT_LUA = (_LUA / "admit.lua").read_text()
SETTLE_LUA = (_LUA / "settle.lua").read_text()


class _Script:
    """A Lua script Redis runs by its SHA1 digest (EVALSHA)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    def command(self, keys: list[str], args: list[str]) -> tuple[str, ...]:
        return ("EVALSHA", self.sha, str(len(keys)), *keys, *args)


ADMIT = _Script(ADMIT_LUA)
SETTLE = _Script(SETTLE_LUA)


class _HiredisPacking:
    """Packs commands with hiredis (C) rather than redis-py's asyncio packer (Python, a few
    microseconds per argument: most of a script call's client CPU). Same bytes on the wire."""

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0]
        # As redis-py does: a command name given with its subcommand ("SCRIPT LOAD") is split.
        if isinstance(first, str):
            args = (*first.encode().split(), *args[1:])
        elif b" " in first:
            args = (*first.split(), *args[1:])
        return [hiredis.pack_command(args)]


def _packing_with_hiredis(base: type[AbstractConnection]) -> type[AbstractConnection]:
    """``base`` (the URL's connection class: TCP, TLS or unix socket) packing with hiredis."""
    packing = type(f"Hiredis{base.__name__}", (_HiredisPacking, base), {})
    return cast(type[AbstractConnection], packing)


def team_tag(team_id: str) -> str:
    """The prefix of every key a team's scripts touch (one Cluster hash slot)."""
    return f"gw:{{t:{team_id}}}"


def subject_prefix(team_id: str, kind: str, name: str) -> str:
    """Where a key's or team's counters live, under the team's hash tag."""
    return f"{team_tag(team_id)}:{kind}:{name}"


def periods_at(ts: float) -> PeriodIds:
    """``PeriodIds.at(ts)``, computed once per UTC day (its ``day`` is ``day_of(ts)``)."""
    return _periods_of_day(math.floor(ts / 86_400))


@functools.lru_cache(maxsize=16)
def _periods_of_day(day: int) -> PeriodIds:
    return PeriodIds.at(day * 86_400)


def request_keys(team_id: str, request_id: str) -> list[str]:
    """A request's done marker (it was settled) and held entry (what its admission took)."""
    tag = team_tag(team_id)
    return [f"{tag}:done:{request_id}", f"{tag}:held:{request_id}"]


def budget_keys(prefix: str, periods: PeriodIds) -> list[str]:
    """The day, month and total spent counters under ``prefix``."""
    return [
        f"{prefix}:spent:day:{periods.day}",
        f"{prefix}:spent:month:{periods.month}",
        f"{prefix}:spent:total",
    ]


def spend_key(team_id: str, day: str, group_by: GroupBy) -> str:
    """A team's totals for one UTC day and grouping (hash ``metric:name`` -> sum)."""
    return f"{team_tag(team_id)}:spend:{day}:{group_by}"


class RedisStore:
    """The Store in Redis (``shared = True``)."""

    shared = True

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 0.05,
        ledger_max_len: int = 1_000_000,
        audit_max_len: int = 100_000,
        max_connections: int = 100,
    ) -> None:
        self.timeout_s = timeout_s
        self.ledger_max_len = ledger_max_len
        self.audit_max_len = audit_max_len
        # Past max_connections a call waits for a free connection (within its deadline)
        # instead of failing at once. No client-side retries: a retried script could count
        # an admission twice. No socket timeout: every call runs under ``_io``'s deadline
        # (redis-py drops a connection whose read or write it interrupts), and redis-py would
        # wrap each write in a task for it, a large part of a call's CPU.
        pool = connection_pool(
            url,
            max_connections=max_connections,
            timeout_s=timeout_s,
            connect_timeout_s=timeout_s,
            decode_responses=True,
        )
        pool.connection_class = _packing_with_hiredis(pool.connection_class)
        self._redis: Redis = Redis.from_pool(pool)

    async def _io(self, pending: Awaitable[T]) -> T:
        """Await one round trip within the deadline; any failure is StoreUnavailable."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await pending
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc

    async def _call(self, *command: str) -> Any:
        """One command, within the deadline (replies are str: ``decode_responses``)."""
        # redis-py leaves execute_command untyped; the per-command methods return
        # ``bytes | str`` unions that say nothing more.
        return await self._io(self._redis.execute_command(*command))  # type: ignore[no-untyped-call]

    async def _pipelined(self, commands: Sequence[tuple[str, ...]]) -> list[Any]:
        """Run commands in pipelines of ``PAGE`` (no transaction: keys may be in any slot)."""
        replies: list[Any] = []
        for first in range(0, len(commands), PAGE):
            pipe = self._redis.pipeline(transaction=False)
            for command in commands[first : first + PAGE]:
                pipe.execute_command(*command)
            replies.extend(await self._io(pipe.execute()))
        return replies

    async def _eval(self, script: _Script, call: _Call) -> Any:
        """EVALSHA ``script`` once; if Redis lost it (NOSCRIPT), load it and run it again."""
        command = script.command(*call)
        try:
            return await self._redis.execute_command(*command)  # type: ignore[no-untyped-call]
        except NoScriptError:
            await self._redis.execute_command("SCRIPT", "LOAD", script.text)  # type: ignore[no-untyped-call]
            return await self._redis.execute_command(*command)  # type: ignore[no-untyped-call]

    async def _eval_many(
        self,
        script: _Script,
        calls: Sequence[_Call],
        before: Sequence[tuple[str, ...]] = (),
    ) -> list[Any]:
        """EVALSHA ``script`` once per call (after the ``before`` commands) in one pipeline
        round trip, without a transaction; the scripts' replies, in order. Redis refuses a
        script it has lost (restarted, or its cache flushed) with NOSCRIPT before running it:
        then the script is loaded and the refused calls run again, in a second round trip."""
        replies = await self._pipeline([*before, *(script.command(*c) for c in calls)])
        replies = replies[len(before) :]
        lost = [n for n, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if lost:
            await self._redis.execute_command("SCRIPT", "LOAD", script.text)  # type: ignore[no-untyped-call]
            again = await self._pipeline([script.command(*calls[n]) for n in lost])
            for n, reply in zip(lost, again, strict=True):
                replies[n] = reply
        return replies

    async def _pipeline(self, commands: Sequence[tuple[str, ...]]) -> list[Any]:
        """One pipeline round trip; raises the first error other than NOSCRIPT."""
        pipe = self._redis.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        replies = list(await pipe.execute(raise_on_error=False))
        for reply in replies:
            if isinstance(reply, Exception) and not isinstance(reply, NoScriptError):
                raise reply
        return replies

    # --- admissions and settlements ------------------------------------------------------

    async def admit(self, admission: Admission) -> Verdict:
        """Check and reserve in one script; see ``lua/admit.lua``."""
        team_id, now = admission.team.team_id, admission.admitted_at
        periods = periods_at(now)
        keys = request_keys(team_id, admission.request_id)
        payload: list[object] = [
            repr(float(now)),
            admission.request_id,
            repr(float(now + admission.deadline_s)),
            admission.tokens,
            admission.reserve_micros,
            DAY_TTL_S,
            MONTH_TTL_S,
            RATE_TTL_S,
            periods.day,
            periods.month,
            max(1, math.ceil(admission.deadline_s * 1000)),
        ]
        for subject in subjects(admission):
            prefix = subject_prefix(team_id, subject.kind, subject.name)
            keys += [f"{prefix}:slots", f"{prefix}:rpm", f"{prefix}:tpm"]
            keys += budget_keys(prefix, periods)
            limits = subject.limits
            budgets = limits.budget_micros
            payload += [limits.max_parallel, limits.rpm, limits.tpm]
            payload += [budgets.get("day"), budgets.get("month"), budgets.get("total")]
        args = [_json(payload)]
        reply = await self._io(self._eval(ADMIT, (keys, args)))
        return verdict(admission, _outcome(reply))

    async def settle(self, record: SpendRecord) -> bool:
        """Settle one request; see ``settle_many``."""
        (settled,) = await self.settle_many([record])
        return settled

    async def settle_many(self, records: Sequence[SpendRecord]) -> list[bool]:
        """Settle each request once per request id (``lua/settle.lua``, one script each), up to
        ``SETTLE_PAGE`` per pipeline round trip, after one SADD registering their teams."""
        settled: list[bool] = []
        for first in range(0, len(records), SETTLE_PAGE):
            page = records[first : first + SETTLE_PAGE]
            teams = sorted({record.team_id for record in page})
            calls = [self._settle_call(record) for record in page]
            # Registered first: harmless if a script then fails or finds its record settled.
            replies = await self._io(
                self._eval_many(SETTLE, calls, [("SADD", SPEND_TEAMS, *teams)])
            )
            settled += [int(reply) == 1 for reply in replies]
        return settled

    def _settle_call(self, record: SpendRecord) -> _Call:
        team_id = record.team_id
        periods = periods_at(record.ts)
        keys = [
            *request_keys(team_id, record.request_id),
            f"{team_tag(team_id)}:ledger",
            *(spend_key(team_id, periods.day, g) for g in GROUPS),
            *budget_keys(subject_prefix(team_id, "team", team_id), periods),
            *budget_keys(subject_prefix(team_id, "key", record.key_id), periods),
        ]
        metrics = record_metrics(record)
        payload = {
            "done_ttl": DONE_TTL_S,
            "day_ttl": DAY_TTL_S,
            "month_ttl": MONTH_TTL_S,
            "ledger_max": str(self.ledger_max_len),
            "charge_key": record.key_id != "-",
            "cost": record.cost_micros,
            "tokens": record.input_tokens + record.output_tokens,
            "request_id": record.request_id,
            "groups": list(record_groups(record).values()),
            "metrics": [item for m, v in metrics.items() if v != 0 for item in (m, v)],
            "entry": [item for pair in record.to_fields().items() for item in pair],
        }
        args = [_json(payload)]
        return keys, args

    # --- reports -------------------------------------------------------------------------

    async def spend(
        self, group_by: GroupBy, start: float, end: float, team_id: str | None = None
    ) -> list[SpendRow]:
        """Totals per group over the UTC days from ``start`` to ``end`` (inclusive)."""
        if group_by not in GROUPS:
            raise ValueError(f"unknown grouping {group_by!r}")
        teams = [team_id] if team_id is not None else await self._known_teams()
        days = days_between(start, end)
        hashes = await self._pipelined(
            [("HGETALL", spend_key(t, day, group_by)) for t in teams for day in days]
        )
        totals: dict[str, dict[str, int]] = {}
        for fields in hashes:
            for field, value in fields.items():
                metric, name = field.split(":", 1)
                row = totals.setdefault(name, {})
                row[metric] = row.get(metric, 0) + int(value)
        return spend_rows(totals)

    async def records(
        self, start: float, end: float, team_id: str | None = None
    ) -> Sequence[SpendRecord]:
        """Ledger records with ``start <= ts < end``, oldest first.

        Stream ids follow settlement, not ``ts`` (a backlog is flushed late), so each
        ledger is read whole, a page per round trip, and filtered by ``ts``.
        """
        teams = [team_id] if team_id is not None else await self._known_teams()
        found: list[SpendRecord] = []
        for team in teams:
            after = "-"
            while True:
                page = await self._call(
                    "XRANGE", f"{team_tag(team)}:ledger", after, "+", "COUNT", str(PAGE)
                )
                for entry_id, fields in page:
                    record = SpendRecord.from_fields(fields)
                    if start <= record.ts < end:
                        found.append(record)
                    after = f"({entry_id}"
                if len(page) < PAGE:
                    break
        return sorted(found, key=lambda record: record.ts)

    async def append_audit(self, records: Sequence[AuditRecord]) -> None:
        """XADD each record to ``gw:audit``, trimmed to about ``audit_max_len``, pipelined."""
        cap = str(self.audit_max_len)
        commands = [
            ("XADD", AUDIT_KEY, "MAXLEN", "~", cap, "*", *_flat(record.to_fields()))
            for record in records
        ]
        await self._pipelined(commands)

    async def audit(
        self, since: float, limit: int, team_id: str | None = None
    ) -> list[AuditRecord]:
        """Newest first, a page per round trip, down to the entry ids before ``since`` (ids
        follow the write, which trails ``ts`` by at most the writer's backlog)."""
        found: list[AuditRecord] = []
        before, floor = "+", f"{max(0, int(since * 1000) - 60_000)}-0"
        while len(found) < limit:
            page = await self._call("XREVRANGE", AUDIT_KEY, before, floor, "COUNT", str(PAGE))
            for entry_id, fields in page:
                record = AuditRecord.from_fields(fields)
                if record.ts >= since and (team_id is None or record.team_id == team_id):
                    found.append(record)
                before = f"({entry_id}"
            if len(page) < PAGE:
                break
        return found[:limit]

    async def spent(
        self, team_id: str, key_id: str | None, periods: PeriodIds
    ) -> dict[Period, int]:
        """Micro-dollars spent or reserved in each budget period (team's, or the key's)."""
        prefix = subject_prefix(team_id, "team", team_id)
        if key_id is not None:
            prefix = subject_prefix(team_id, "key", key_id)
        values = await self._pipelined([("GET", k) for k in budget_keys(prefix, periods)])
        return {p: int(v or 0) for p, v in zip(PERIODS, values, strict=True)}

    async def _known_teams(self) -> list[str]:
        saved, spending = await self._pipelined([("SMEMBERS", TEAMS), ("SMEMBERS", SPEND_TEAMS)])
        return sorted({*saved, *spending, DEFAULT_TEAM})

    # --- teams and keys ------------------------------------------------------------------

    async def save_team(self, team: Team) -> None:
        """Create or replace a team."""
        await self._pipelined(
            [("SET", f"gw:team:{team.team_id}", team_to_json(team)), ("SADD", TEAMS, team.team_id)]
        )

    async def team(self, team_id: str) -> Team | None:
        """A team by id."""
        text = await self._call("GET", f"gw:team:{team_id}")
        return None if text is None else team_from_json(text)

    async def teams(self) -> list[Team]:
        """All teams, by id."""
        ids = sorted(await self._call("SMEMBERS", TEAMS))
        texts = await self._pipelined([("GET", f"gw:team:{t}") for t in ids])
        return [team_from_json(text) for text in texts if text is not None]

    async def delete_team(self, team_id: str) -> bool:
        """Remove a team record (its keys and spend stay); False if it did not exist."""
        deleted, _ = await self._pipelined(
            [("DEL", f"gw:team:{team_id}"), ("SREM", TEAMS, team_id)]
        )
        return int(deleted) == 1

    async def save_key(self, key: VirtualKey) -> None:
        """Create or replace a key; a replaced secret's hash no longer finds it."""
        old = await self.key(key.key_id)
        commands: list[tuple[str, ...]] = [
            ("SET", f"gw:key:{key.key_id}", key_to_json(key)),
            ("SET", f"gw:keyhash:{key.secret_hash}", key.key_id),
            ("SADD", KEYS, key.key_id),
        ]
        if old is not None and old.secret_hash != key.secret_hash:
            commands.append(("DEL", f"gw:keyhash:{old.secret_hash}"))
        await self._pipelined(commands)

    async def key_by_hash(self, secret_hash: str) -> VirtualKey | None:
        """The key whose secret hashes to ``secret_hash``."""
        key_id = await self._call("GET", f"gw:keyhash:{secret_hash}")
        key = None if key_id is None else await self.key(key_id)
        # A stale index entry (a concurrent rotation) never finds the rotated key.
        return key if key is not None and key.secret_hash == secret_hash else None

    async def key(self, key_id: str) -> VirtualKey | None:
        """A key by id."""
        text = await self._call("GET", f"gw:key:{key_id}")
        return None if text is None else key_from_json(text)

    async def keys(self, team_id: str | None = None) -> list[VirtualKey]:
        """All keys (of one team), by id."""
        ids = sorted(await self._call("SMEMBERS", KEYS))
        texts = await self._pipelined([("GET", f"gw:key:{k}") for k in ids])
        found = [key_from_json(text) for text in texts if text is not None]
        return [k for k in found if team_id is None or k.team_id == team_id]

    async def delete_key(self, key_id: str) -> bool:
        """Remove a key for good; False if it did not exist."""
        key = await self.key(key_id)
        if key is None:
            return False
        await self._pipelined(
            [
                ("DEL", f"gw:key:{key_id}"),
                ("DEL", f"gw:keyhash:{key.secret_hash}"),
                ("SREM", KEYS, key_id),
            ]
        )
        return True

    async def ping(self) -> None:
        """Raise StoreUnavailable unless Redis answers within the deadline."""
        await self._io(self._redis.ping())

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _flat(fields: dict[str, str]) -> list[str]:
    return [item for pair in fields.items() for item in pair]


def _json(value: object) -> str:
    """A script's arguments as one compact JSON text (Lua's cjson reads it)."""
    return _JSON.encode(value)


def _outcome(reply: list[Any]) -> Refused | Admitted:
    """admit.lua's reply as the outcome ``verdicts.verdict`` reads."""
    if int(reply[0]) == 0:
        check, subject, limit, used, period, has_room, room = (int(v) for v in reply[1:])
        return Refused(
            _REFUSALS[check - 1],
            subject,
            limit,
            used,
            period=PERIODS[period - 1] if period else None,
            room_at=room if has_room else None,
        )
    requests, tokens, budgets = reply[1:]
    return Admitted(
        requests=_windows(requests),
        tokens=_windows(tokens),
        budgets=tuple(
            BudgetUse(int(s), PERIODS[int(p) - 1], int(limit), int(used))
            for s, p, limit, used in _fours(budgets)
        ),
    )


def _windows(flat: list[Any]) -> tuple[WindowUse, ...]:
    return tuple(WindowUse(int(s), int(lim), int(u), int(o)) for s, lim, u, o in _fours(flat))


def _fours(flat: list[Any]) -> list[tuple[Any, Any, Any, Any]]:
    return [(flat[i], flat[i + 1], flat[i + 2], flat[i + 3]) for i in range(0, len(flat), 4)]
