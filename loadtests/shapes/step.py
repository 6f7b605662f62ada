"""Step load: ``TG_STEP_USERS`` more users every ``TG_STEP_S`` seconds for ``TG_STEPS`` steps.

The capacity scenario's shape: each step holds long enough for the rates to settle, so the
step where the SLO breaks tells the highest load the gateway and its fleet sustain. The plan
is ``schedule.StepPlan``. Imports: locust, ``loadtests.shapes.schedule``.
"""

from __future__ import annotations

import os

from locust import LoadTestShape

from loadtests.shapes.schedule import StepPlan, Tick, step_from_env


class StepShape(LoadTestShape):
    """A staircase of user counts, then stop."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # locust leaves it unannotated
        self.plan: StepPlan = step_from_env(os.environ)

    def tick(self) -> Tick | None:
        """(users, spawn rate) for the current step, or None after the last one."""
        run_time_s: float = self.get_run_time()  # type: ignore[no-untyped-call]  # unannotated
        return self.plan.tick(run_time_s)
