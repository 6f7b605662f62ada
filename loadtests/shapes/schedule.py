"""The load shapes' plans as pure values: (users, spawn rate) for a run time, or None to stop.

Read from ``TG_*`` environment variables by the ``*_from_env`` functions (bad values raise
``ValueError`` naming the variable, so Locust refuses to start):

- steady: ``TG_USERS`` (8) users, reached at ``TG_SPAWN_RATE`` users/s (default: all in the
  first second), held until ``TG_DURATION_S`` (60).
- step: ``TG_STEP_USERS`` (4) more users every ``TG_STEP_S`` (20) seconds, ``TG_STEPS`` (5)
  steps, then stop; each step is spawned at ``TG_SPAWN_RATE`` (default: within a second).
- spike: a ``TG_USERS`` baseline; at ``TG_SPIKE_AT_S`` (20) ``TG_SPIKE_USERS`` (24) more
  users arrive within a second and leave as fast after ``TG_SPIKE_S`` (10); stop at
  ``TG_DURATION_S``.
- trace: open loop. The requests of a trace slice (``TG_TRACE``, from ``TG_TRACE_START_S``
  for ``TG_DURATION_S`` x ``TG_TRACE_RATE_SCALE`` trace seconds, arrivals divided by the rate
  scale: ``loadtests.sim.replay.replay_slice``, the same list the live replay driver and the
  simulator use) wait in an ``ArrivalQueue``. Each user takes the next request and sleeps
  until its arrival time, so requests leave when the trace says, not when a user is free;
  how late each one left is measured (``send lag``). The user count is only the pool that
  makes that possible: by Little's law the requests in flight are arrivals/s x mean response
  time, so the pool is ``ceil(HEADROOM x rate x latency) + 1``, with the rate of the next
  ``WINDOW_S`` seconds of the slice and the run's measured mean response time (a prior before
  ``MIN_SAMPLES`` answers). The slice starts ``LEAD_S`` after the run (the first pool's spawn
  time), the pool never shrinks (a stopped user would drop the arrival it holds), and the run
  stops once every request has been answered, or ``DRAIN_S`` after the last arrival.

Imports: stdlib, ``loadtests`` (no locust: the unit tests import this module).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from loadtests.locustfiles.traffic import env_float, env_int, trace_path
from loadtests.sim.replay import ReplayItem, replay_slice, schedule
from loadtests.sim.trace import read_trace

Tick = tuple[int, float]
"""(total users, users started or stopped per second), as ``LoadTestShape.tick`` returns."""

WINDOW_S = 10.0
"""How far ahead (run seconds) the trace shape looks for the arrival rate."""
HEADROOM = 2.0
"""Pool size over the mean in flight: arrivals are bursty, and a late user delays a request."""
PRIOR_LATENCY_S = 1.0
"""Mean response time assumed until ``MIN_SAMPLES`` requests have been answered."""
MIN_SAMPLES = 10
DRAIN_S = 60.0
"""How long after the last arrival the trace shape waits for answers before it stops."""
LEAD_S = 1.0
"""The trace slice starts this long after the run, the time its first pool takes to spawn."""


@dataclass(frozen=True, slots=True)
class SteadyPlan:
    """``users`` from the start (ramped at ``spawn_rate``) until ``duration_s``."""

    users: int
    spawn_rate: float
    duration_s: float

    def tick(self, run_time_s: float) -> Tick | None:
        """The target at ``run_time_s``."""
        return None if run_time_s >= self.duration_s else (self.users, self.spawn_rate)


@dataclass(frozen=True, slots=True)
class StepPlan:
    """``step_users`` x (k + 1) users during step k (each ``step_s`` long), ``steps`` steps."""

    step_users: int
    step_s: float
    steps: int
    spawn_rate: float

    def tick(self, run_time_s: float) -> Tick | None:
        """The target at ``run_time_s``."""
        if run_time_s >= self.steps * self.step_s:
            return None
        return (int(run_time_s // self.step_s) + 1) * self.step_users, self.spawn_rate

    @property
    def duration_s(self) -> float:
        """When the last step ends."""
        return self.steps * self.step_s


@dataclass(frozen=True, slots=True)
class SpikePlan:
    """A ``users`` baseline with ``spike_users`` more in ``[spike_at_s, spike_at_s + spike_s)``."""

    users: int
    spawn_rate: float
    spike_users: int
    spike_at_s: float
    spike_s: float
    duration_s: float

    def tick(self, run_time_s: float) -> Tick | None:
        """The target at ``run_time_s``; the spike comes and goes within a second."""
        if run_time_s >= self.duration_s:
            return None
        sudden = float(max(1, self.spike_users))
        if run_time_s < self.spike_at_s:
            return self.users, self.spawn_rate
        if run_time_s < self.spike_at_s + self.spike_s:
            return self.users + self.spike_users, sudden
        return self.users, sudden


@dataclass(frozen=True, slots=True)
class Claim:
    """One trace request a user took: what to send and when (``perf_counter`` seconds)."""

    item: ReplayItem
    due: float


@dataclass(slots=True)
class ArrivalQueue:
    """The trace slice's requests, handed out in arrival order to whichever user asks next.

    Locust users are greenlets of one process, so no lock is needed; with ``--processes``
    each process would replay the whole slice, so the trace shape is a single-process shape.
    """

    items: tuple[ReplayItem, ...]
    origin: float | None = None
    """``perf_counter`` at the start of the run (None until the shape starts)."""
    claimed: int = 0
    finished: int = 0

    def start(self, now: float) -> None:
        """Start the slice's clock at ``now``, with every request still to send."""
        self.origin, self.claimed, self.finished = now, 0, 0

    def claim(self) -> Claim | None:
        """The next request and its due time, or None when all are taken (or not started)."""
        if self.origin is None or self.claimed >= len(self.items):
            return None
        item = self.items[self.claimed]
        self.claimed += 1
        return Claim(item, self.origin + item.send_at_s)

    def done(self) -> None:
        """A claimed request has been answered (or has failed)."""
        self.finished += 1

    @property
    def in_flight(self) -> int:
        """Requests claimed and not yet done (including those waiting for their time)."""
        return self.claimed - self.finished

    @property
    def finished_all(self) -> bool:
        """Every request of the slice has been sent and answered."""
        return self.finished >= len(self.items)


@dataclass(frozen=True, slots=True)
class TracePlan:
    """Send times of a trace slice (run seconds) and the pool of users they need."""

    send_at_s: tuple[float, ...]

    def rate_at(self, run_time_s: float) -> float:
        """Arrivals per second in ``[run_time_s, run_time_s + WINDOW_S)``."""
        first = bisect.bisect_left(self.send_at_s, run_time_s)
        last = bisect.bisect_left(self.send_at_s, run_time_s + WINDOW_S)
        return (last - first) / WINDOW_S

    def pool_size(self, run_time_s: float, latency_s: float) -> int:
        """Users for the next window: ``ceil(HEADROOM x rate x latency) + 1`` (Little's law)."""
        return math.ceil(HEADROOM * self.rate_at(run_time_s) * latency_s) + 1

    @property
    def end_s(self) -> float:
        """The latest the run lasts: ``DRAIN_S`` after the last arrival."""
        return (self.send_at_s[-1] if self.send_at_s else 0.0) + DRAIN_S


def mean_latency_s(answered: int, total_ms: float) -> float:
    """Mean response time so far, or ``PRIOR_LATENCY_S`` until ``MIN_SAMPLES`` answers."""
    return total_ms / answered / 1000.0 if answered >= MIN_SAMPLES else PRIOR_LATENCY_S


def steady_from_env(env: Mapping[str, str]) -> SteadyPlan:
    """``TG_USERS``, ``TG_SPAWN_RATE``, ``TG_DURATION_S``."""
    users = env_int(env, "TG_USERS", 8, minimum=1)
    return SteadyPlan(
        users=users,
        spawn_rate=env_float(env, "TG_SPAWN_RATE", float(users), minimum=0.01),
        duration_s=env_float(env, "TG_DURATION_S", 60.0, minimum=0.1),
    )


def step_from_env(env: Mapping[str, str]) -> StepPlan:
    """``TG_STEP_USERS``, ``TG_STEP_S``, ``TG_STEPS``, ``TG_SPAWN_RATE``."""
    step_users = env_int(env, "TG_STEP_USERS", 4, minimum=1)
    return StepPlan(
        step_users=step_users,
        step_s=env_float(env, "TG_STEP_S", 20.0, minimum=0.1),
        steps=env_int(env, "TG_STEPS", 5, minimum=1),
        spawn_rate=env_float(env, "TG_SPAWN_RATE", float(step_users), minimum=0.01),
    )


def spike_from_env(env: Mapping[str, str]) -> SpikePlan:
    """``TG_USERS``, ``TG_SPAWN_RATE``, ``TG_SPIKE_USERS``, ``TG_SPIKE_AT_S``, ``TG_SPIKE_S``,
    ``TG_DURATION_S``."""
    users = env_int(env, "TG_USERS", 8, minimum=1)
    return SpikePlan(
        users=users,
        spawn_rate=env_float(env, "TG_SPAWN_RATE", float(users), minimum=0.01),
        spike_users=env_int(env, "TG_SPIKE_USERS", 24, minimum=1),
        spike_at_s=env_float(env, "TG_SPIKE_AT_S", 20.0, minimum=0.0),
        spike_s=env_float(env, "TG_SPIKE_S", 10.0, minimum=0.1),
        duration_s=env_float(env, "TG_DURATION_S", 60.0, minimum=0.1),
    )


def trace_items_from_env(env: Mapping[str, str]) -> tuple[ReplayItem, ...]:
    """The slice ``TG_TRACE`` / ``TG_TRACE_START_S`` / ``TG_DURATION_S`` (run seconds) /
    ``TG_TRACE_RATE_SCALE`` selects, as send times from the start of the run."""
    rate_scale = env_float(env, "TG_TRACE_RATE_SCALE", 1.0, minimum=1e-6)
    start_s = env_float(env, "TG_TRACE_START_S", 0.0, minimum=0.0)
    duration_s = env_float(env, "TG_DURATION_S", 60.0, minimum=0.1)
    path = trace_path(env)
    kept = replay_slice(read_trace(path), start_s, duration_s * rate_scale, rate_scale)
    if not kept:
        raise ValueError(f"TG_TRACE: no request of {path} arrives in the slice")
    return tuple(schedule(kept))


def trace_plan(items: Sequence[ReplayItem]) -> TracePlan:
    """The pool plan for a slice's items."""
    return TracePlan(tuple(item.send_at_s for item in items))
