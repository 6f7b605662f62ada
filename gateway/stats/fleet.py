"""Per-deployment live stats in this replica, and the ``Candidate`` snapshots policies read.

The dispatcher reports each upstream call (``started``, ``first_token``, ``finished``); this
keeps in-flight counts, EWMAs of TTFT, time per output token, error rate and throughput, a
circuit breaker, and for local workers the online ``Correction`` of the calibrated latency
model (``policies.predict``). ``candidates`` turns that, plus the scraper's last fresh sample,
into snapshots. Every method is synchronous and O(1) per deployment: it runs on the hot path.
All ``now`` arguments are seconds on one monotonic clock (the scraper's). It follows the
roster (``roster_changed``) as discovered members come and go. Imports: ``gateway.config``,
``gateway.roster``, ``gateway.stats``, ``policies``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from gateway.config import Deployment
from gateway.roster import Change
from gateway.stats.circuit import CircuitSettings
from gateway.stats.deployment import DeploymentStats, StatsSettings, Ticket
from gateway.stats.worker_scraper import WorkerSample
from policies.model import Candidate, CircuitState, RequestFeatures
from policies.predict import Correction, WorkerLoad, corrected, predict_ttft_s
from policies.worker_latency import PROFILES, GpuProfile, decode_step_s

NEUTRAL_KINDS = frozenset({"aborted", "saturated", "rejected"})
"""Failure kinds that say nothing about the deployment's health (the client left, the
gateway refused locally, the request itself was bad): no error, no circuit verdict."""
_NO_CORRECTION = Correction()

__all__ = [
    "NEUTRAL_KINDS",
    "CircuitSettings",
    "FleetStats",
    "SampleSource",
    "StatsSettings",
    "Ticket",
]


class SampleSource(Protocol):
    """Where fresh worker samples come from (``WorkerScraper``)."""

    def latest(self, name: str, now: float) -> WorkerSample | None:
        """The sample of ``name`` if fresh, else None."""
        ...


class FleetStats:
    """Live stats of every configured deployment, kept in this replica."""

    def __init__(
        self,
        deployments: Iterable[Deployment],
        *,
        gpus: Mapping[str, str] | None = None,
        samples: SampleSource | None = None,
        settings: StatsSettings | None = None,
    ) -> None:
        """``gpus`` maps local deployment names to a ``policies.worker_latency`` profile
        name (else the deployment's ``gpu``, else ``h100``); ``samples`` is the worker
        scraper (None: this replica's own counts only)."""
        self.settings = settings or StatsSettings()
        self._samples = samples
        self._gpus = dict(gpus or {})
        self._stats: dict[str, DeploymentStats] = {}
        for dep in deployments:
            self._add(dep)

    def roster_changed(self, change: Change) -> None:
        """Joined deployments start with fresh stats (one still known keeps its own, unless a
        reload changed its latency model: local or not, GPU kind); those that left are
        forgotten. A retired one keeps its stats while its calls finish."""
        for dep in change.joined:
            known = self._stats.get(dep.name)
            if known is None or known.profile != self._profile(dep):
                self._add(dep)
        for dep in change.left:
            del self._stats[dep.name]

    def _profile(self, dep: Deployment) -> GpuProfile | None:
        gpu = self._gpus.get(dep.name) or dep.gpu or "h100"
        if dep.local and gpu not in PROFILES:
            raise ValueError(f"{dep.name}: unknown GPU {gpu!r} (known: {sorted(PROFILES)})")
        return PROFILES[gpu] if dep.local else None

    def _add(self, dep: Deployment) -> None:
        self._stats[dep.name] = DeploymentStats(dep, self._profile(dep), self.settings)

    def __getitem__(self, name: str) -> DeploymentStats:
        """The stats of one deployment (for metrics export and tests)."""
        return self._stats[name]

    def inflight(self, name: str) -> int:
        """Calls to ``name`` started and not finished."""
        return self._stats[name].inflight

    def circuit_state(self, name: str, now: float) -> CircuitState:
        """The circuit of ``name`` as policies see it (``open`` while a probe is out)."""
        circuit = self._stats[name].circuit
        return circuit.state(now) if circuit.allows(now) else "open"

    def refusal(self, dep: Deployment, now: float) -> str | None:
        """Why ``dep`` may not be called right now (``circuit_open``, ``saturated``), or None.

        Call it just before ``started`` with no ``await`` between, so one half-open probe
        goes out at a time."""
        s = self._stats[dep.name]
        if not s.circuit.allows(now):
            return "circuit_open"
        if dep.max_concurrency is not None and s.inflight >= dep.max_concurrency:
            return "saturated"
        return None

    def retry_in_s(self, name: str, now: float) -> float:
        """Seconds until ``name``'s open circuit lets a probe through (0 if it does now)."""
        return max(0.0, self._stats[name].circuit.open_until - now)

    def started(
        self,
        name: str,
        now: float,
        *,
        prompt_tokens: int | None = None,
        stream: bool = True,
        output_tokens: int | None = None,
    ) -> Ticket:
        """A call to ``name`` is being sent; pass the ticket to ``first_token``/``finished``.

        ``prompt_tokens`` (the request's estimate) feeds the mean prompt size;
        ``output_tokens`` is what it is expected to generate (default: the mean so far); a
        call with ``stream=False`` has no observable first token, so it counts as running
        at once."""
        s = self._stats[name]
        base_ttft = base_tpot = 0.0
        if s.profile is not None and stream:  # only a stream shows its first token
            prompt = s.prompt_tokens.value if prompt_tokens is None else prompt_tokens
            load, _ = self._load(s, now)
            base_ttft = predict_ttft_s(s.profile, load, round(prompt), _NO_CORRECTION)
            base_tpot = decode_step_s(s.profile, load.running + 1, load.mean_context_tokens)
        if prompt_tokens is not None:
            s.prompt_tokens.update(prompt_tokens)
        expected = round(s.output_tokens.value) if output_tokens is None else output_tokens
        s.enter(now, awaiting=stream, expected_output=expected)
        probe = s.circuit.attempt(now)
        return Ticket(s, now, probe, base_ttft, base_tpot, stream, expected_output=expected)

    def first_token(self, ticket: Ticket, now: float) -> None:
        """The first output token (the first content chunk of a stream) arrived."""
        if ticket.first_token_at is not None or ticket.ended:
            return
        ticket.first_token_at = now
        s = ticket.stats
        if ticket.awaiting:
            ticket.awaiting = False
            s.awaiting_first -= 1
        observed = now - ticket.started_at
        s.ttft.update(observed)
        if ticket.base_ttft_s > 0:
            s.correction = corrected(s.correction, ticket.base_ttft_s, observed, s.alpha)

    def finished(
        self,
        ticket: Ticket,
        now: float,
        ok: bool,
        output_tokens: int | None = None,
        kind: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        """The call ended: ``ok``, or failed with ``kind`` (an ``UpstreamError`` kind,
        ``broken``, or a neutral one: ``aborted``, ``saturated``, ``rejected``)."""
        if ticket.ended:
            return
        ticket.ended = True
        s = ticket.stats
        s.leave(now, awaiting=ticket.awaiting, expected_output=ticket.expected_output)
        ticket.awaiting = False
        if ok:
            s.circuit.success(now, ticket.probe)
            s.errors.update(0.0)
            if output_tokens:
                self._observe_output(ticket, now, output_tokens)
        elif kind in NEUTRAL_KINDS:
            s.circuit.abandoned(ticket.probe)
        else:
            s.errors.update(1.0)
            if kind == "rate_limited":
                s.circuit.rate_limited(now, retry_after_s)
            else:
                s.circuit.failure(now, ticket.probe, retry_after_s)

    def candidates(
        self,
        deployments: Sequence[Deployment],
        features: RequestFeatures,
        now: float,
        *,
        predict: bool = True,
    ) -> list[Candidate]:
        """One snapshot per deployment, in the order given (the alias's order); with
        ``predict`` False (a policy that reads no predictions) latencies are left 0."""
        return [self._candidate(dep, features, now, predict) for dep in deployments]

    def _candidate(
        self, dep: Deployment, features: RequestFeatures, now: float, predict: bool
    ) -> Candidate:
        s = self._stats[dep.name]
        s.refresh_prices(dep)
        sample: WorkerSample | None = None
        if not predict:
            ttft = tpot = shadow = 0.0
        elif s.profile is not None:
            load, sample = self._load(s, now)
            ttft = predict_ttft_s(s.profile, load, features.prompt_tokens, s.correction)
            step = decode_step_s(s.profile, load.running + 1, load.mean_context_tokens)
            tpot = step * s.tpot_correction.factor
            shadow = s.gpu_usd_per_s / s.throughput.value
        else:
            ttft, tpot, shadow = s.ttft.value, s.tpot.value, 0.0
        return Candidate(
            name=dep.name,
            local=dep.local,
            input_usd_per_token=s.input_usd_per_token,
            output_usd_per_token=s.output_usd_per_token,
            shadow_usd_per_output_token=shadow,
            context_window=dep.context_window,
            circuit=self.circuit_state(dep.name, now),
            inflight=s.inflight,
            max_concurrency=dep.max_concurrency,
            running=None if sample is None else sample.running,
            waiting=None if sample is None else sample.waiting,
            kv_cache_usage=None if sample is None else sample.kv_cache_usage,
            predicted_ttft_s=ttft,
            tpot_s=tpot,
            error_rate=s.errors.value,
            group=dep.group,
            data_classes=dep.data_classes,
        )

    def _load(self, s: DeploymentStats, now: float) -> tuple[WorkerLoad, WorkerSample | None]:
        """The worker's queue: the fresh scrape, but never less than this replica's own
        calls (a burst since the last scrape counts at once)."""
        own_waiting = s.awaiting_first
        own_running = s.inflight - own_waiting
        sample = None if self._samples is None else self._samples.latest(s.name, now)
        running, waiting = own_running, own_waiting
        if sample is not None:
            running, waiting = max(sample.running, running), max(sample.waiting, waiting)
        prompt, output = s.prompt_tokens.value, s.output_tokens.value
        if s.inflight:
            # What the calls on the worker asked for says more than the history.
            output = s.expected_output_inflight / s.inflight
        blocked = 0 if sample is None else sample.waiting
        load = WorkerLoad(running, waiting, waiting * prompt, prompt + output / 2, blocked, output)
        return load, sample

    def _observe_output(self, ticket: Ticket, now: float, output_tokens: int) -> None:
        s = ticket.stats
        s.output_tokens.update(output_tokens)
        s.add_throughput_tokens(output_tokens)
        if ticket.first_token_at is None or output_tokens < 2:
            return
        tpot = (now - ticket.first_token_at) / (output_tokens - 1)
        s.tpot.update(tpot)
        if ticket.base_tpot_s > 0:
            s.tpot_correction = corrected(s.tpot_correction, ticket.base_tpot_s, tpot, s.alpha)
