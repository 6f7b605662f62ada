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
    failing_until: float = 0.0  # after errors: tried last until then
    rate_limited_until: float = 0.0  # after a 429: not tried until then (its Retry-After)


class FleetState:
    """Per-deployment state kept in this replica (no network hop on the hot path)."""

    def __init__(self, config: Config) -> None:
        self._states = {name: DeploymentState() for name in config.deployments}

    def __getitem__(self, deployment: str) -> DeploymentState:
        return self._states[deployment]

    def cool_down(self, deployment: str, until: float, *, rate_limited: bool) -> None:
        """After a failure: rate limited -> not tried until ``until``; else tried last."""
        state = self._states[deployment]
        if rate_limited:
            state.rate_limited_until = max(state.rate_limited_until, until)
        else:
            state.failing_until = max(state.failing_until, until)

    def recovered(self, deployment: str) -> None:
        """A success ends any cooldown."""
        state = self._states[deployment]
        state.failing_until = state.rate_limited_until = 0.0


def choose_plan(
    config: Config, alias: str, fleet: FleetState, now: float
) -> tuple[list[Deployment], float | None]:
    """The deployments to try in order, and (when none may be tried) the seconds to wait."""
    ready: list[Deployment] = []
    cooling: list[Deployment] = []
    wait: float | None = None
    for dep in config.deployments_for(alias):
        state = fleet[dep.name]
        if state.rate_limited_until > now:
            left = state.rate_limited_until - now
            wait = left if wait is None else min(wait, left)
        elif state.failing_until > now:
            cooling.append(dep)
        else:
            ready.append(dep)
    plan = ready + cooling
    return plan, (wait if not plan else None)
