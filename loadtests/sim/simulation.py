"""The discrete-event simulation: a trace replayed through one policy on one fleet.

One heap of timed events (arrivals, first tokens, paid completions, worker wake-ups); no
sleeping. At each arrival the request's ``RequestFeatures`` and the fleet's ``Candidate``
snapshots are built by the gateway's own ``gateway.stats.FleetStats`` (in-flight counts, paid
TTFT EWMAs, the online ``Correction`` of the local TTFT predictor, fed the same
``started``/``first_token``/``finished`` calls as the dispatcher makes) and a scraper stand-in
that samples each simulated worker once per ``scrape_interval_s``; the policy's plan is
followed (its first deployment that is not refused). Local workers are ``worker.WorkerState``;
paid APIs have TTFT ~ LogNormal(median, sigma) x (prompt / 1000)^0.3 above 1,000 tokens and a
constant output speed, as the paid emulators. Random draws are made per request up front, so
every policy sees the same paid latencies and weighted draws (common random numbers).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.stats.fleet import FleetStats, Ticket
from gateway.stats.worker_scraper import WorkerSample
from loadtests.emulators.paid import PROMPT_ALPHA, PROMPT_REFERENCE_TOKENS
from loadtests.sim.fleet import Fleet, PaidApi, slowed
from loadtests.sim.trace import TraceRequest, span_s
from loadtests.sim.worker import WorkerState
from policies.model import Policy, RequestFeatures

_ARRIVE, _FIRST, _DONE, _WAKE = 0, 1, 2, 3
REFUSED = -1


@dataclass(frozen=True, slots=True)
class SimSettings:
    """Knobs of one run."""

    slo_ttft_s: float = 1.0
    seed: int = 0
    slow_gpu: float = 1.0
    """Simulated GPUs are this many times slower than the calibration the predictor uses."""
    scrape_interval_s: float = 1.0
    alias: str = "sim"
    target_ttft_s: float | None = None
    """The TTFT SLO the policy is told (headroom below ``slo_ttft_s``); None: the SLO."""


@dataclass(slots=True)
class RunResult:
    """What happened to every request in one run."""

    policy: str
    fleet: Fleet
    requests: Sequence[TraceRequest]
    settings: SimSettings
    ttft_s: list[float] = field(default_factory=list)
    served_by: list[int] = field(default_factory=list)
    """Index into ``fleet.order`` per request (``REFUSED``: empty plan)."""
    paid_usd: float = 0.0
    predicted_ttft_s: list[float] = field(default_factory=list)
    """The chosen deployment's predicted TTFT at decision time (``nan`` if refused)."""

    @property
    def period_s(self) -> float:
        """The span of the trace: GPUs are paid for all of it."""
        return span_s(self.requests)


class _Scraper:
    """The worker scraper's view: a sample per worker, refreshed once per interval."""

    def __init__(self, workers: dict[str, WorkerState], interval_s: float) -> None:
        self._workers, self._interval = workers, interval_s
        self._samples: dict[str, WorkerSample] = {}

    def latest(self, name: str, now: float) -> WorkerSample | None:
        sample = self._samples.get(name)
        if sample is None or now - sample.at >= self._interval:
            w = self._workers[name]
            sample = WorkerSample(w.running, len(w.waiting), w.kv_cache_usage(), now)
            self._samples[name] = sample
        return sample


class Simulation:
    """One run's mutable state; ``run`` plays every event."""

    def __init__(
        self, requests: Sequence[TraceRequest], fleet: Fleet, policy: Policy, s: SimSettings
    ) -> None:
        self.requests, self.fleet, self.policy, self.s = requests, fleet, policy, s
        self.deployments = {w.name: w.deployment for w in fleet.locals} | {
            p.name: p.deployment for p in fleet.paid
        }
        self.ordered = [self.deployments[n] for n in fleet.order]
        self.index = {n: i for i, n in enumerate(fleet.order)}
        self.workers = {
            w.name: WorkerState(slowed(w.profile, s.slow_gpu) if s.slow_gpu != 1 else w.profile)
            for w in fleet.locals
        }
        self.paid = {p.name: p for p in fleet.paid}
        self.stats = FleetStats(
            self.deployments.values(),
            gpus={w.name: w.profile.name for w in fleet.locals},
            samples=_Scraper(self.workers, s.scrape_interval_s),
        )
        rng = random.Random(s.seed)
        self.z = [rng.gauss(0.0, 1.0) for _ in requests]
        self.draws = [rng.random() for _ in requests]
        self.tickets: list[Ticket | None] = [None] * len(requests)
        self.events: list[tuple[float, int, int, int]] = []
        self.counter = 0
        self.result = RunResult(policy.name, fleet, requests, s)
        self.result.ttft_s = [math.inf] * len(requests)
        self.result.served_by = [REFUSED] * len(requests)
        self.result.predicted_ttft_s = [math.nan] * len(requests)

    def push(self, at: float, kind: int, arg: int) -> None:
        """Schedule an event (FIFO among equal times)."""
        self.counter += 1
        heapq.heappush(self.events, (at, self.counter, kind, arg))

    def run(self, progress: Callable[[int, int], None] | None = None) -> RunResult:
        """Play the whole trace; ``progress(done, total)`` is called now and then."""
        for i, r in enumerate(self.requests):
            self.push(r.arrival_s, _ARRIVE, i)
        total, every, arrived = len(self.requests), max(1, len(self.requests) // 50), 0
        handlers = (self._arrive, self._first, self._done, self._wake)
        while self.events:
            now, _, kind, arg = heapq.heappop(self.events)
            handlers[kind](now, arg)
            if kind == _ARRIVE:
                arrived += 1
                if progress is not None and arrived % every == 0:
                    progress(arrived, total)
        if progress is not None:
            progress(total, total)
        return self.result

    def _arrive(self, now: float, i: int) -> None:
        r = self.requests[i]
        features = RequestFeatures(
            alias=self.s.alias,
            prompt_tokens=r.prompt_tokens,
            expected_output_tokens=r.output_tokens,
            stream=True,
            slo_ttft_s=self.s.target_ttft_s or self.s.slo_ttft_s,
            draw=self.draws[i],
        )
        candidates = self.stats.candidates(self.ordered, features, now)
        decision = self.policy.decide(features, candidates)
        for name in decision.plan:
            if self.stats.refusal(self.deployments[name], now) is None:
                chosen = next(c for c in candidates if c.name == name)
                self.result.predicted_ttft_s[i] = chosen.predicted_ttft_s
                self._send(now, i, name)
                return

    def _send(self, now: float, i: int, name: str) -> None:
        r = self.requests[i]
        self.result.served_by[i] = self.index[name]
        # As the dispatcher: the request's expected output (its max_tokens) enters the in-flight
        # sum that the admission-wait prediction reads.
        self.tickets[i] = self.stats.started(
            name, now, prompt_tokens=r.prompt_tokens, output_tokens=r.output_tokens
        )
        api = self.paid.get(name)
        if api is not None:
            ttft = _paid_ttft_s(api, r.prompt_tokens, self.z[i])
            self.result.paid_usd += api.cost_usd(r.prompt_tokens, r.output_tokens)
            self.push(now + ttft, _FIRST, i)
            self.push(now + ttft + (r.output_tokens - 1) / api.latency.tokens_per_s, _DONE, i)
            return
        worker = self.workers[name]
        self._started(worker.submit(now, i, r.prompt_tokens))
        self._schedule_wake(name, worker, now)

    def _started(self, admitted: list[tuple[float, int]]) -> None:
        for first_at, rid in admitted:
            self.push(first_at, _FIRST, rid)

    def _first(self, now: float, i: int) -> None:
        r, ticket = self.requests[i], self.tickets[i]
        assert ticket is not None
        self.result.ttft_s[i] = now - r.arrival_s
        self.stats.first_token(ticket, now)
        name = self.fleet.order[self.result.served_by[i]]
        worker = self.workers.get(name)
        if worker is None:
            return
        worker.first_token(now, i, r.prompt_tokens, r.output_tokens)
        if r.output_tokens <= 1:
            self._finished(now, i)
        self._step(name, worker, now)

    def _done(self, now: float, i: int) -> None:
        self._finished(now, i)

    def _finished(self, now: float, i: int) -> None:
        ticket = self.tickets[i]
        assert ticket is not None
        self.stats.finished(ticket, now, ok=True, output_tokens=self.requests[i].output_tokens)
        self.tickets[i] = None

    def _wake(self, now: float, packed: int) -> None:
        index, version = divmod(packed, 1 << 32)
        name = self.fleet.order[index]
        worker = self.workers[name]
        if version == worker.version % (1 << 32):
            self._step(name, worker, now)

    def _step(self, name: str, worker: WorkerState, now: float) -> None:
        """Finish what is done on ``worker``, start what it admits, and plan its next wake."""
        done, admitted = worker.wake(now)
        for rid in done:
            self._finished(now, rid)
        self._started(admitted)
        self._schedule_wake(name, worker, now)

    def _schedule_wake(self, name: str, worker: WorkerState, now: float) -> None:
        at = worker.next_finish_s(now)
        if at is not None:
            self.push(at, _WAKE, self.index[name] * (1 << 32) + worker.version % (1 << 32))


def _paid_ttft_s(api: PaidApi, prompt_tokens: int, z: float) -> float:
    profile = api.latency
    factor = (max(prompt_tokens, PROMPT_REFERENCE_TOKENS) / PROMPT_REFERENCE_TOKENS) ** PROMPT_ALPHA
    return float(profile.ttft_median_s * math.exp(profile.sigma * z) * factor)


def simulate(
    requests: Sequence[TraceRequest],
    fleet: Fleet,
    policy: Policy,
    settings: SimSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Replay ``requests`` through ``policy`` on ``fleet``."""
    return Simulation(requests, fleet, policy, settings or SimSettings()).run(progress)
