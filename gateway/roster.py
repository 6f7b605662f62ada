"""The live roster: which deployments exist right now and what each alias expands to.

Config names deployments and groups; a group (a deployment with ``discovery``) stands for its
current members, which discovery sets with ``set_members``. The roster keeps, per alias, an
immutable tuple of deployments in configured order (a group expanded in place to its members,
sorted by name) that the hot path reads in O(1) and a change swaps whole; the same for each
of its specialists' lists (``specialists_for``). Every change of
membership goes through here and is announced once to the subscribed ``RosterListener``s
(stats, scraper, costing, the dispatcher's metrics) as a ``Change``:

- ``joined``: may be picked from now on;
- ``retired``: gets no new picks, calls in flight finish;
- ``left``: retired and drained (two sweeps in a row found no call in flight, so the
  accounting of its last call, which follows the call, is done too): forget it;
- ``restated``: its control state changed (below); it stays a member either way.

Operators hold deployments out of service without changing membership (``set_states``, fed by
``gateway.control``): each present deployment is ``active``, ``draining`` (no new picks; once
``settle`` finds it idle it is ``disabled`` in this replica) or ``disabled`` (no new picks).
The state wanted for a member's own name wins over its group's; an alias's tuple holds its
active deployments only, so no policy ever sees the others (``held_for`` lists them).
``reconfigure`` swaps in a reloaded config: deployments it drops retire, new ones join, a
changed one joins again under its name with its new definition (calls in flight keep theirs).

Imports: ``gateway.config``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from gateway.config import Config, Deployment

State = Literal["active", "draining", "disabled"]
STATES: tuple[State, ...] = ("active", "draining", "disabled")


@dataclass(frozen=True, slots=True)
class Change:
    """One change of membership (see the module docstring for the three lists)."""

    joined: tuple[Deployment, ...] = ()
    retired: tuple[Deployment, ...] = ()
    left: tuple[Deployment, ...] = ()
    restated: tuple[Deployment, ...] = ()


class RosterListener(Protocol):
    """Keeps per-deployment state in step with the roster."""

    def roster_changed(self, change: Change) -> None:
        """Called once per change, synchronously, after the roster swapped its tuples."""
        ...


class Roster:
    """The deployments that may serve, per alias and by name."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._static = {n: d for n, d in config.deployments.items() if d.discovery is None}
        self.groups: Mapping[str, Deployment] = {
            n: d for n, d in config.deployments.items() if d.discovery is not None
        }
        """The configured groups (deployments with ``discovery``) by name."""
        self._members: dict[str, tuple[Deployment, ...]] = dict.fromkeys(self.groups, ())
        self._retiring: dict[str, tuple[Deployment, bool]] = {}
        """Retired, not yet left: the deployment and whether the last sweep found it idle."""
        self._listeners: list[RosterListener] = []
        self._wanted: dict[str, State] = {}
        """The operators' wishes by name (a deployment, a group or a member), as stored."""
        self._drained: set[str] = set()
        """Draining deployments found idle: disabled in this replica."""
        self._states: dict[str, State] = {}
        """The state of every present deployment that is not active."""
        self._rebuild()

    def deployments_for(self, alias: str) -> tuple[Deployment, ...]:
        """The alias's live, active deployments in configured order (groups expanded in
        place): what policies choose from."""
        return self._by_alias[alias]

    def specialists_for(self, alias: str, topic: str) -> tuple[Deployment, ...]:
        """The live deployments of the alias's specialist for ``topic`` (expanded the same
        way); () when the alias has none for it."""
        return self._by_specialist.get((alias, topic), ())

    def held_for(self, alias: str) -> tuple[tuple[Deployment, State], ...]:
        """The alias's live deployments an operator holds out (draining or disabled)."""
        return self._held_by_alias[alias]

    def state(self, name: str) -> State:
        """The state of a present deployment in this replica."""
        return self._states.get(name, "active")

    @property
    def wanted(self) -> Mapping[str, State]:
        """The states operators asked for, by the name they gave."""
        return self._wanted

    @property
    def live(self) -> Mapping[str, Deployment]:
        """Every deployment that may get new calls, by name (groups as their members)."""
        return self._live

    def members(self, group: str) -> tuple[Deployment, ...]:
        """The group's current members, sorted by name."""
        return self._members[group]

    def subscribe(self, listener: RosterListener) -> None:
        """Announce every later change to ``listener``."""
        self._listeners.append(listener)

    def set_members(self, group: str, members: Iterable[Deployment]) -> Change:
        """Make ``members`` the group's members: new ones join, missing ones retire.

        A retiring member that comes back joins again before it ever left, so listeners
        must take a ``joined`` deployment they still know as it is."""
        old = {d.name: d for d in self._members[group]}
        new = {d.name: old.get(d.name, d) for d in members}
        change = Change(
            joined=tuple(d for name, d in new.items() if name not in old),
            retired=tuple(d for name, d in old.items() if name not in new),
        )
        if not change.joined and not change.retired:
            return change
        for dep in change.joined:
            self._retiring.pop(dep.name, None)
        for dep in change.retired:
            self._retiring[dep.name] = (dep, False)
        self._members[group] = tuple(sorted(new.values(), key=lambda d: d.name))
        self._rebuild()
        self._announce(change)
        return change

    def set_states(self, wanted: Mapping[str, State]) -> Change:
        """Make ``wanted`` (every operator wish, by name) the states in force; the
        deployments whose state changed are announced as ``restated``."""
        self._wanted = dict(wanted)
        self._drained &= {n for n in self._drained if self._wish(n) == "draining"}
        return self._restate()

    def settle(self, busy: Callable[[str], bool]) -> Change:
        """Draining deployments that ``busy`` says have no call in flight become disabled
        (call it often: it is what ends a drain)."""
        idle = {n for n, s in self._states.items() if s == "draining" and not busy(n)}
        if not idle:
            return Change()
        self._drained |= idle
        return self._restate()

    def reconfigure(self, config: Config) -> Change:
        """Serve ``config`` (already checked to have the same groups): deployments it drops
        retire, new ones join, changed ones join again with their new definition. The
        change is announced even when empty (listeners re-read the aliases)."""
        old = self._static
        new = {n: d for n, d in config.deployments.items() if d.discovery is None}
        joined = tuple(d for n, d in new.items() if old.get(n) != d)
        retired = tuple(d for n, d in old.items() if n not in new)
        for dep in joined:
            self._retiring.pop(dep.name, None)
        for dep in retired:
            self._retiring[dep.name] = (dep, False)
        self._config, self._static = config, new
        self._rebuild()
        change = Change(joined=joined, retired=retired)
        self._announce(change)
        return change

    def sweep(self, busy: Callable[[str], bool]) -> Change:
        """Retired deployments that ``busy`` says had no call in flight at this sweep and
        the one before leave (call it every interval)."""
        left: list[Deployment] = []
        for name, (dep, was_idle) in list(self._retiring.items()):
            idle = not busy(name)
            if idle and was_idle:
                del self._retiring[name]
                left.append(dep)
            else:
                self._retiring[name] = (dep, idle)
        change = Change(left=tuple(left))
        if left:
            self._announce(change)
        return change

    def _wish(self, name: str) -> State:
        """The state wanted for a present deployment: its own name's, else its group's."""
        wish = self._wanted.get(name)
        if wish is None:
            dep = self._live.get(name)
            if dep is not None and dep.group is not None:
                wish = self._wanted.get(dep.group)
        return wish or "active"

    def _effective(self) -> dict[str, State]:
        states: dict[str, State] = {}
        for name in self._live:
            wish = self._wish(name)
            if wish == "draining" and name in self._drained:
                wish = "disabled"
            if wish != "active":
                states[name] = wish
        return states

    def _restate(self) -> Change:
        before = self._states
        self._rebuild()
        names = {*before, *self._states}
        restated = tuple(
            self._live[n]
            for n in sorted(names)
            if n in self._live and before.get(n) != self._states.get(n)
        )
        change = Change(restated=restated)
        if restated:
            self._announce(change)
        return change

    def _rebuild(self) -> None:
        live = dict(self._static)
        for members in self._members.values():
            live.update((d.name, d) for d in members)
        self._live = live
        self._drained &= set(live)
        states = self._effective()
        by_alias: dict[str, tuple[Deployment, ...]] = {}
        held_by_alias: dict[str, tuple[tuple[Deployment, State], ...]] = {}
        for alias, spec in self._config.aliases.items():
            expanded = self._expand(spec.deployments)
            by_alias[alias] = tuple(d for d in expanded if d.name not in states)
            held_by_alias[alias] = tuple((d, states[d.name]) for d in expanded if d.name in states)
        self._by_specialist = {
            (alias, topic): tuple(d for d in self._expand(names) if d.name not in states)
            for alias, spec in self._config.aliases.items()
            for topic, names in spec.specialists.items()
        }
        self._by_alias, self._held_by_alias, self._states = by_alias, held_by_alias, states

    def _expand(self, names: tuple[str, ...]) -> tuple[Deployment, ...]:
        """``names`` in order, each group expanded in place to its members."""
        expanded: list[Deployment] = []
        for name in names:
            group = self._members.get(name)
            expanded.extend(group if group is not None else (self._static[name],))
        return tuple(expanded)

    def _announce(self, change: Change) -> None:
        for listener in self._listeners:
            listener.roster_changed(change)
