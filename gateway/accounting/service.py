"""Accounting for the request path: who is calling, may they, and what it cost.

Per request, in order: ``principal`` (the bearer key -> key and team, from a short-lived
in-process cache, so usually no round trip), ``admit`` (one store round trip: rate limits,
parallel slots and the worst-case budget reservation, atomically), and after the answer
``finish`` (prices the tokens, updates the Prometheus counters at once and queues the record
for the ledger writer, which settles it off the request path).

When the store fails, it is skipped for ``store_retry_s`` (one probe per interval, not one
timeout per request); admissions then pass unmetered (``when_store_down: open``, the default)
or get 503 (``closed``), keys already seen keep working from the cache, and finished requests
wait in the ledger backlog. An admission that failed may still be applied by the store (a
slow Redis runs it after the deadline): the store holds what it took until the request's
record settles, so the request is always recorded - served, or refused with 503 after its
admission failed (nothing spent). Imports: ``gateway`` modules.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from time import monotonic
from time import time as _wall
from typing import Any

from gateway import metrics
from gateway.accounting.audit import AuditWriter
from gateway.accounting.cost import Costing
from gateway.accounting.estimate import estimate_usage
from gateway.accounting.ledger import LedgerWriter
from gateway.accounting.model import (
    DEFAULT_TEAM,
    KEY_PREFIX,
    Admission,
    Principal,
    Source,
    SpendRecord,
    Team,
    Verdict,
    hash_secret,
    to_usd,
)
from gateway.accounting.pricing import PriceBook
from gateway.accounting.refusals import AccountingUnavailable, rate_headers, refusal
from gateway.accounting.settings import AccountingSettings
from gateway.accounting.store import Store, StoreUnavailable
from gateway.config import Config, Deployment
from gateway.errors import AuthenticationFailed
from gateway.upstreams.base import Usage

log = logging.getLogger("gateway.accounting")
_BEARER = "bearer "
_MAX_CACHED = 100_000
_EMBEDDED_LEDGER = 10_000


@dataclass(slots=True)
class Ticket:
    """One admitted request: who pays, what was reserved, the headers to send back."""

    principal: Principal
    admission: Admission | None
    """None when the request was admitted without the store (down, failing open)."""
    headers: list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one request ended, as the hot path saw it."""

    request_id: str
    alias: str
    deployment: Deployment | None
    usage: Usage | None
    estimated: bool
    status: int
    latency_s: float
    ttft_s: float | None
    started_at: float
    ended_at: float
    """Monotonic times of the upstream call (shadow cost: the worker's busy time)."""
    source: Source | None = None
    """``cache`` for a cache hit; else derived from the deployment."""
    billed_micros: int | None = None
    """Already priced by the route (it sent the cost in a header); None: priced here."""


class Accounting:
    """Keys, admissions and spend for one gateway process."""

    def __init__(self, settings: AccountingSettings, store: Store, costing: Costing) -> None:
        self.settings = settings
        self.store = store
        self.costing = costing
        self.auth_required = settings.auth
        self.writer = LedgerWriter(
            store, capacity=settings.backlog_max, retry_s=settings.store_retry_s
        )
        self.auditor = AuditWriter(
            store, capacity=settings.backlog_max, retry_s=settings.store_retry_s
        )
        """The privacy audit log's writer (``audit`` queues a record for it)."""
        self._master = settings.master_key()
        self._principals: dict[str, tuple[Principal, float]] = {}
        self._loading: dict[str, asyncio.Future[tuple[Principal, float]]] = {}
        self._budgets: dict[tuple[str, str], tuple[int, int]] = {}
        self._down_until = 0.0
        self._estimating: set[asyncio.Task[None]] = set()

    @classmethod
    def for_config(cls, config: Config) -> Accounting:
        """The store the config names (Redis, or the embedded one) and its pricing."""
        settings = config.accounting
        store: Store
        if settings.redis_url:
            from gateway.accounting.redis_store import RedisStore

            store = RedisStore(
                settings.redis_url,
                timeout_s=settings.store_timeout_s,
                ledger_max_len=settings.ledger_max_len,
                audit_max_len=config.privacy.audit_max_len,
            )
        else:
            from gateway.accounting.memory_store import MemoryStore

            # In-process records cost memory, not disk: the embedded ledger keeps fewer.
            store = MemoryStore(
                ledger_max_len=min(settings.ledger_max_len, _EMBEDDED_LEDGER),
                audit_max_len=min(config.privacy.audit_max_len, _EMBEDDED_LEDGER),
            )
            log.warning(
                "accounting: no redis_url configured; keys, budgets and spend live in this "
                "process only (run ONE replica, and they are lost on restart)"
            )
        reference = settings.reference_price or PriceBook.bundled().lookup(settings.reference_model)
        if reference is None:
            raise ValueError(f"no price known for reference model {settings.reference_model!r}")
        costing = Costing(reference, config.deployments.values())
        return cls(settings, store, costing)

    def start(self) -> None:
        """Start the ledger and audit writers (inside the running loop)."""
        self.writer.start()
        self.auditor.start()

    async def aclose(self) -> None:
        """Settle what is queued (bounded), then close the store."""
        if self._estimating:
            await asyncio.wait(self._estimating, timeout=10.0)
        await self.writer.aclose()
        await self.auditor.aclose()
        await self.store.aclose()

    # -- who is calling ---------------------------------------------------------------

    def is_master(self, authorization: str | None) -> bool:
        """Whether the header carries the master key (constant-time compare)."""
        secret = _bearer(authorization)
        if self._master is None or secret is None:
            return False
        return hmac.compare_digest(secret.encode(), self._master.encode())

    async def principal(self, authorization: str | None, now: float) -> Principal:
        """The key and team a request is billed to; 401 for a missing or unusable key."""
        secret = _bearer(authorization)
        if self.is_master(authorization):
            return Principal(Team(DEFAULT_TEAM))
        if secret is None or not secret.startswith(KEY_PREFIX):
            if not self.auth_required:
                return Principal(Team(DEFAULT_TEAM))
            raise AuthenticationFailed(
                "missing or malformed API key: send 'Authorization: Bearer sk-gw-...'"
            )
        digest = hash_secret(secret)
        cached = self._principals.get(digest)
        if cached is None or now - cached[1] > self.settings.key_cache_s:
            cached = await self._load_principal(digest, cached, now)
        principal = cached[0]
        if principal.key is None or not principal.key.usable_at(now):
            if not self.auth_required:
                return Principal(Team(DEFAULT_TEAM))
            why = "revoked or disabled" if principal.key is not None else "not known"
            raise AuthenticationFailed(f"invalid API key: the key is {why} or expired")
        return principal

    async def _load_principal(
        self, digest: str, stale: tuple[Principal, float] | None, now: float
    ) -> tuple[Principal, float]:
        """The key's record from the store; concurrent requests with the same key share one
        read (a burst from a new key is one round trip, not one per request)."""
        loading = self._loading.get(digest)
        if loading is None:
            loading = asyncio.ensure_future(self._read_principal(digest, now))
            self._loading[digest] = loading
            loading.add_done_callback(lambda done: self._loaded(digest, done))
        try:
            return await asyncio.shield(loading)
        except StoreUnavailable:
            metrics.child(metrics.STORE_ERRORS, "auth").inc()
            if stale is not None:
                return stale  # a key seen before keeps working through an outage
            raise AccountingUnavailable(
                "cannot verify the API key: the accounting store is unavailable"
            ) from None

    async def _read_principal(self, digest: str, now: float) -> tuple[Principal, float]:
        key = await self.store.key_by_hash(digest)
        team = None if key is None else await self.store.team(key.team_id)
        if key is None:
            entry = (Principal(Team(DEFAULT_TEAM)), now)
        else:
            entry = (Principal(team or Team(key.team_id), key), now)
        if len(self._principals) >= _MAX_CACHED:
            self._principals.clear()
        self._principals[digest] = entry
        return entry

    def _loaded(self, digest: str, done: asyncio.Future[tuple[Principal, float]]) -> None:
        self._loading.pop(digest, None)
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every waiter has gone

    def forget_key(self, key_id: str) -> None:
        """Drop a changed or revoked key from this process's cache."""
        for digest, (principal, _) in list(self._principals.items()):
            if principal.key is not None and principal.key.key_id == key_id:
                del self._principals[digest]

    def budget_hint(self, principal: Principal) -> tuple[float, float] | None:
        """(left, total) USD of the tightest budget at this principal's last admission."""
        found = self._budgets.get((principal.team.team_id, principal.key_id))
        return None if found is None else (float(to_usd(found[0])), float(to_usd(found[1])))

    # -- before the upstream call -----------------------------------------------------

    async def admit(
        self,
        principal: Principal,
        request_id: str,
        alias: str,
        plan: Sequence[Deployment],
        *,
        prompt_bound: int,
        tokens_estimate: int,
        output_bound: int | None,
        now_mono: float,
    ) -> Ticket:
        """Reserve the worst case and take the rate-limit slots; 429 when something is full
        (the refusal is a ledger record too: status 429, nothing spent).

        A key and team without any limit skip the store: nothing could refuse them, and
        settling charges the cost to their budget counters all the same."""
        key_limits = principal.key.limits if principal.key is not None else None
        if principal.team.limits.unlimited and (key_limits is None or key_limits.unlimited):
            return Ticket(principal, None, [])
        outputs = output_bound if output_bound is not None else self._output_bound(plan)
        admission = Admission(
            request_id=request_id,
            team=principal.team,
            key=principal.key,
            reserve_micros=self.costing.worst_case_micros(plan, prompt_bound, outputs),
            tokens=tokens_estimate + outputs,
            admitted_at=_wall(),
            deadline_s=max(d.timeouts.read_s for d in plan) * 2 if plan else 600.0,
        )
        if now_mono < self._down_until:
            return self._store_down(principal, None)
        try:
            verdict = await self.store.admit(admission)
        except StoreUnavailable as exc:
            metrics.child(metrics.STORE_ERRORS, "admit").inc()
            self._down_until = now_mono + self.settings.store_retry_s
            if self.settings.when_store_down == "closed":
                # The store may yet run the admission it was sent: settling the refusal's
                # record (503, nothing spent) gives back whatever that reserves.
                self._record_refusal(principal, request_id, alias, 503, now_mono)
            return self._store_down(principal, exc)
        self._remember(principal, verdict)
        if not verdict.admitted:
            reason = verdict.refusal or "budget"
            metrics.child(metrics.ACCOUNTING_REFUSALS, principal.team.team_id, reason).inc()
            self._record_refusal(principal, request_id, alias, 429, now_mono)
            raise refusal(verdict)
        return Ticket(principal, admission, rate_headers(verdict))

    def _record_refusal(
        self, principal: Principal, request_id: str, alias: str, status: int, now_mono: float
    ) -> None:
        """A refused request's ledger record: ``status``, nothing spent."""
        took = monotonic() - now_mono
        refused = Outcome(request_id, alias, None, None, False, status, took, None, 0.0, 0.0)
        self.finish(Ticket(principal, None, []), refused)

    def _output_bound(self, plan: Sequence[Deployment]) -> int:
        windows = [d.context_window for d in plan if d.context_window]
        return max(windows) if windows else self.settings.max_output_tokens

    def _store_down(self, principal: Principal, exc: Exception | None) -> Ticket:
        if exc is not None:
            log.warning(
                "accounting store unavailable (%s); when_store_down: %s",
                exc,
                self.settings.when_store_down,
            )
        if self.settings.when_store_down == "closed":
            raise AccountingUnavailable(
                "budgets cannot be checked: the accounting store is unavailable"
            )
        return Ticket(principal, None, [])

    def _remember(self, principal: Principal, verdict: Verdict) -> None:
        team = principal.team.team_id
        if verdict.budget_left_micros is not None and verdict.budget_total_micros is not None:
            self._budgets[(team, principal.key_id)] = (
                verdict.budget_left_micros,
                verdict.budget_total_micros,
            )
        if verdict.team_budget_left_micros is not None:
            left = float(to_usd(verdict.team_budget_left_micros))
            metrics.child(metrics.BUDGET_REMAINING, team).set(left)
        if verdict.team_budget_used_ratio is not None:
            metrics.child(metrics.BUDGET_USED_RATIO, team).set(verdict.team_budget_used_ratio)

    # -- after the answer -------------------------------------------------------------

    def finish(self, ticket: Ticket, outcome: Outcome) -> SpendRecord:
        """Price the answer, count it in the metrics and queue it for the ledger."""
        dep, usage = outcome.deployment, outcome.usage or Usage()
        tokens_in, tokens_out = usage.prompt_tokens, usage.completion_tokens
        source: Source = outcome.source or ("local" if dep is not None and dep.local else "paid")
        cost = shadow = 0
        if outcome.billed_micros is not None:
            cost = outcome.billed_micros
        elif dep is not None and source != "cache":
            cost = self.costing.billed_micros(dep, tokens_in, tokens_out)
            if dep.local:
                shadow = self.costing.shadow_micros(
                    dep, tokens_out, outcome.started_at, outcome.ended_at
                )
        team = ticket.principal.team.team_id
        served_by = "cache" if source == "cache" else dep.name if dep is not None else "none"
        record = SpendRecord(
            request_id=outcome.request_id,
            ts=_wall(),
            key_id=ticket.principal.key_id,
            team_id=team,
            alias=outcome.alias,
            deployment=served_by,
            provider=dep.provider if dep is not None else served_by,
            source=source,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_micros=cost,
            shadow_micros=shadow,
            reference_micros=self.costing.reference_micros(tokens_in, tokens_out),
            latency_ms=round(outcome.latency_s * 1000, 3),
            ttft_ms=None if outcome.ttft_s is None else round(outcome.ttft_s * 1000, 3),
            status=outcome.status,
            estimated=outcome.estimated,
            cache_hit=source == "cache",
        )
        self._count(record)
        admission = ticket.admission
        self.writer.submit(record, frees_slot=admission is not None and admission.takes_slot)
        return record

    def finish_estimated(
        self, ticket: Ticket, outcome: Outcome, request: dict[str, Any], relayed: list[bytes]
    ) -> None:
        """``finish`` for an answer without usage: tokens counted in a thread first."""
        task = asyncio.get_running_loop().create_task(
            self._estimate_then_finish(ticket, outcome, request, relayed)
        )
        self._estimating.add(task)
        task.add_done_callback(self._estimating.discard)

    async def _estimate_then_finish(
        self, ticket: Ticket, outcome: Outcome, request: dict[str, Any], relayed: list[bytes]
    ) -> None:
        model = outcome.deployment.model if outcome.deployment is not None else outcome.alias
        try:
            usage = await asyncio.to_thread(estimate_usage, model, request, relayed)
        except Exception:  # a tokenizer failure must not lose the record
            log.exception("token estimate failed for request %s", outcome.request_id)
            usage = Usage()
        self.finish(ticket, replace(outcome, usage=usage, estimated=True))

    def _count(self, record: SpendRecord) -> None:
        labels = (record.alias, record.deployment, record.provider)
        if record.input_tokens or record.output_tokens:
            tokens = metrics.TOKENS
            metrics.child(tokens, *labels, "input").inc(record.input_tokens)
            metrics.child(tokens, *labels, "output").inc(record.output_tokens)
        if record.cost_micros:
            metrics.child(metrics.SPEND, *labels, record.team_id).inc(
                record.cost_micros / 1_000_000
            )
        if record.savings_micros:
            metrics.child(metrics.SAVINGS, record.source, record.alias, record.team_id).inc(
                record.savings_micros / 1_000_000
            )
        if record.shadow_micros:
            metrics.child(metrics.SHADOW_COST, record.deployment).inc(
                record.shadow_micros / 1_000_000
            )


def _bearer(authorization: str | None) -> str | None:
    if not authorization or not authorization[:7].lower() == _BEARER:
        return None
    return authorization[7:].strip() or None
