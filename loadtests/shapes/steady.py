"""Steady load: ``TG_USERS`` users, ramped at ``TG_SPAWN_RATE``, held for ``TG_DURATION_S``.

The baseline of every scenario: a fixed population of simulated clients (the user classes in
``loadtests/locustfiles``), each sending, waiting a moment and sending again (closed loop).
The plan is ``schedule.SteadyPlan``. Imports: locust, ``loadtests.shapes.schedule``.
"""

from __future__ import annotations

import os

from locust import LoadTestShape

from loadtests.shapes.schedule import SteadyPlan, Tick, steady_from_env


class SteadyShape(LoadTestShape):
    """A constant user count for a fixed time, then stop."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # locust leaves it unannotated
        self.plan: SteadyPlan = steady_from_env(os.environ)

    def tick(self) -> Tick | None:
        """(users, spawn rate) now, or None when the duration is over."""
        run_time_s: float = self.get_run_time()  # type: ignore[no-untyped-call]  # unannotated
        return self.plan.tick(run_time_s)
