"""Spike load: a ``TG_USERS`` baseline and ``TG_SPIKE_USERS`` more for ``TG_SPIKE_S`` seconds.

What spillover is for: a burst the owned Qwen workers cannot absorb within the TTFT SLO
arrives within a second at ``TG_SPIKE_AT_S`` and leaves as fast; the run shows how the
gateway sheds it to paid APIs and recovers. The plan is ``schedule.SpikePlan``; the run
stops at ``TG_DURATION_S``. Imports: locust, ``loadtests.shapes.schedule``.
"""

from __future__ import annotations

import os

from locust import LoadTestShape

from loadtests.shapes.schedule import SpikePlan, Tick, spike_from_env


class SpikeShape(LoadTestShape):
    """Baseline, sudden spike, baseline again, then stop."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # locust leaves it unannotated
        self.plan: SpikePlan = spike_from_env(os.environ)

    def tick(self) -> Tick | None:
        """(users, spawn rate) now, or None when the duration is over."""
        run_time_s: float = self.get_run_time()  # type: ignore[no-untyped-call]  # unannotated
        return self.plan.tick(run_time_s)
