"""One replica following the operators' deployment states, and changing them.

``Control`` applies the stored states to the roster (``Roster.set_states``) at start and after
every change the store reports, ends drains (``Roster.settle``) on a short tick, lets
deployments a reload retired leave (``Roster.sweep``, every ``SWEEP_S``; with discovery groups
their watchers sweep, and one sweeper keeps the two idle sweeps apart), and exports
``gateway_deployment_state``. When the
store fails, the last known states stay in force, the failure is counted and logged once per
outage, and the watch starts again (subscribe, re-read) every ``retry_s`` until it answers.
``change`` is what the admin API calls: it checks the name, writes the wish to the store and
applies it here at once (the other replicas follow through the store within a tick).
Imports: ``gateway.control.store``, ``gateway.metrics``, ``gateway.roster``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from typing import Literal

from gateway import metrics
from gateway.control.store import ControlStore, ControlUnavailable
from gateway.roster import STATES, Change, Roster, State

log = logging.getLogger(__name__)

Action = Literal["disable", "enable", "drain"]
ACTIONS: dict[Action, State] = {"disable": "disabled", "enable": "active", "drain": "draining"}
Kind = Literal["deployment", "group", "member"]
TICK_S = 0.1
"""How often drains are checked (a drained deployment is disabled within this)."""
SWEEP_S = 1.0
"""How often retired deployments are checked for leaving (two idle sweeps in a row)."""
RETRY_S = 0.5


class Control:
    """The operators' states in this replica: follows the store, writes to it."""

    def __init__(
        self,
        roster: Roster,
        store: ControlStore,
        busy: Callable[[str], bool],
        *,
        retry_s: float = RETRY_S,
    ) -> None:
        """``busy`` says whether a deployment has calls in flight."""
        self.roster, self.store = roster, store
        self._busy, self._retry_s = busy, retry_s
        self._failing = False
        self.export(Change(joined=tuple(roster.live.values())))

    def kind(self, name: str) -> Kind | None:
        """What ``name`` names: a configured deployment, a group, a member (present or to
        come: ``group@IP:port``, an IPv6 address in brackets), or nothing."""
        roster = self.roster
        if name in roster.groups:
            return "group"
        if name in roster.live:
            return "member" if roster.live[name].group is not None else "deployment"
        group, _, where = name.partition("@")
        return "member" if group in roster.groups and _is_address(where) else None

    async def change(self, name: str, action: Action) -> None:
        """Store the wish ``action`` expresses for ``name`` (a known name) and apply it here.

        Enabling removes the name's entry, except for a member of a group that is held:
        there ``active`` is stored, since a member's own state wins over its group's."""
        state: State | None = ACTIONS[action]
        if state == "active":
            group = name.partition("@")[0] if self.kind(name) == "member" else None
            if group is None or self.roster.wanted.get(group, "active") == "active":
                state = None
        await self.store.write(name, state)
        metrics.child(metrics.CONTROL_CHANGES, action).inc()
        log.info("control: %s %s", action, name)
        self.apply(await self.store.read())

    def apply(self, wanted: dict[str, State]) -> None:
        """Make ``wanted`` the states in force in this replica (a drain with nothing in
        flight is disabled at once)."""
        self.roster.set_states(wanted)
        self.roster.settle(self._busy)

    async def load(self) -> None:
        """Read the stored states once (at start); a store that fails is counted and the
        watch will read them when it answers."""
        try:
            self.apply(await self.store.read())
        except ControlUnavailable as exc:
            self._failed(exc)

    async def run(self) -> None:
        """Follow the store and end drains, until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._follow())
            tasks.create_task(self._tick())

    async def _follow(self) -> None:
        while True:
            try:
                async for wanted in self.store.watch():
                    if self._failing:
                        log.info("control: the store answers again; states re-read")
                    self._failing = False
                    self.apply(wanted)
            except ControlUnavailable as exc:
                self._failed(exc)
            await asyncio.sleep(self._retry_s)

    def _failed(self, exc: ControlUnavailable) -> None:
        metrics.CONTROL_STORE_ERRORS.inc()
        if not self._failing:
            log.warning("control: the store is unavailable (%s); keeping the last states", exc)
        self._failing = True

    async def _tick(self) -> None:
        ticks = round(SWEEP_S / TICK_S)
        n = 0
        while True:
            await asyncio.sleep(TICK_S)
            self.roster.settle(self._busy)
            n += 1
            if n % ticks == 0 and not self.roster.groups:  # else the discovery watchers do
                self.roster.sweep(self._busy)

    def roster_changed(self, change: Change) -> None:
        """Export the state of every deployment that joined or changed state."""
        self.export(change)

    def export(self, change: Change) -> None:
        """Set ``gateway_deployment_state`` for the deployments ``change`` names."""
        for dep in (*change.joined, *change.restated):
            state = self.roster.state(dep.name)
            for each in STATES:
                value = 1.0 if each == state else 0.0
                metrics.child(metrics.DEPLOYMENT_STATE, dep.name, each).set(value)


def _is_address(where: str) -> bool:
    """Whether ``where`` is ``IP:port`` as discovery names members (``[IPv6]:port``)."""
    host, _, port = where.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return port.isdigit() and 0 < int(port) < 65536
