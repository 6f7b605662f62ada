"""Choosing which deployments to try for a request, and in what order.

Until the policy engine lands this is the configured order with two adjustments: a
deployment cooling down after a rate limit (its Retry-After) is left out, and one cooling down
after errors is moved to the back, so a dead worker is not tried first but a fleet that is all
"cooling" is still tried rather than refused. ``choose_plan`` is the one function the policy
engine replaces. Imports: stdlib and ``gateway.config``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Config, Deployment


@dataclass(slots=True)
class DeploymentState:
    """What this replica has seen of one deployment lately."""

    inflight: int = 0
    cooldown_until: float = 0.0
    rate_limited: bool = False


class FleetState:
    """Per-deployment state kept in this replica (no network hop on the hot path)."""

    def __init__(self, config: Config) -> None:
        self._states = {name: DeploymentState() for name in config.deployments}

    def __getitem__(self, deployment: str) -> DeploymentState:
        return self._states[deployment]

    def cool_down(self, deployment: str, until: float, *, rate_limited: bool) -> None:
        """Keep ``deployment`` out of the front of plans until loop time ``until``."""
        state = self._states[deployment]
        state.cooldown_until = max(state.cooldown_until, until)
        state.rate_limited = rate_limited

    def recovered(self, deployment: str) -> None:
        """A success ends any cooldown."""
        state = self._states[deployment]
        state.cooldown_until, state.rate_limited = 0.0, False


def choose_plan(
    config: Config, alias: str, fleet: FleetState, now: float
) -> tuple[list[Deployment], float | None]:
    """The deployments to try in order, and (when none may be tried) the seconds to wait."""
    ready: list[Deployment] = []
    cooling: list[Deployment] = []
    wait: float | None = None
    for dep in config.deployments_for(alias):
        state = fleet[dep.name]
        if state.cooldown_until <= now:
            ready.append(dep)
        elif state.rate_limited:
            left = state.cooldown_until - now
            wait = left if wait is None else min(wait, left)
        else:
            cooling.append(dep)
    plan = ready + cooling
    return plan, (wait if not plan else None)
