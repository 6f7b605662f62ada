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
  accounting of its last call, which follows the call, is done too): forget it.

Imports: ``gateway.config``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from gateway.config import Config, Deployment


@dataclass(frozen=True, slots=True)
class Change:
    """One change of membership (see the module docstring for the three lists)."""

    joined: tuple[Deployment, ...] = ()
    retired: tuple[Deployment, ...] = ()
    left: tuple[Deployment, ...] = ()


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
        self._rebuild()

    def deployments_for(self, alias: str) -> tuple[Deployment, ...]:
        """The alias's live deployments in configured order (groups expanded in place)."""
        return self._by_alias[alias]

    def specialists_for(self, alias: str, topic: str) -> tuple[Deployment, ...]:
        """The live deployments of the alias's specialist for ``topic`` (expanded the same
        way); () when the alias has none for it."""
        return self._by_specialist.get((alias, topic), ())

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

    def _rebuild(self) -> None:
        live = dict(self._static)
        for members in self._members.values():
            live.update((d.name, d) for d in members)
        aliases = self._config.aliases.items()
        self._by_specialist = {
            (alias, topic): self._expand(names)
            for alias, spec in aliases
            for topic, names in spec.specialists.items()
        }
        self._live = live
        self._by_alias = {alias: self._expand(spec.deployments) for alias, spec in aliases}

    def _expand(self, names: tuple[str, ...]) -> tuple[Deployment, ...]:
        expanded: list[Deployment] = []
        for name in names:
            group = self._members.get(name)
            expanded.extend(group if group is not None else (self._static[name],))
        return tuple(expanded)

    def _announce(self, change: Change) -> None:
        for listener in self._listeners:
            listener.roster_changed(change)
