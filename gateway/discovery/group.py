"""One discovery group kept in step with DNS: resolve, make members, hand them to the roster.

A member of group ``qwen-7b`` at address ``10.1.2.3`` (discovery port 8000, path ``/v1``) is
the group's deployment renamed ``qwen-7b@10.1.2.3:8000`` with base_url
``http://10.1.2.3:8000/v1``; an IPv6 address is bracketed (``qwen-7b@[fd00::7]:8000``). The
name is what metrics, logs, headers and the explain endpoint show; it is bounded by the pods
that exist at once, since a member that leaves is forgotten everywhere.

Every ``interval_s`` the watcher first lets drained retired members leave (``Roster.sweep``),
then resolves: an answer (empty for NXDOMAIN or no records) becomes the members; a resolver
failure keeps the last known members, is counted and logged once per run of failures.
Imports: ``gateway.config``, ``gateway.discovery``, ``gateway.metrics``, ``gateway.roster``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

from gateway import metrics
from gateway.config import Deployment
from gateway.discovery.resolver import DnsResolver, ResolveError
from gateway.discovery.settings import Discovery, Nameserver
from gateway.roster import Roster

log = logging.getLogger(__name__)

RESOLVE_TIMEOUT_S = 5.0
"""The longest one resolution may take (less when the interval is shorter)."""


def watchers(
    roster: Roster, nameserver: Nameserver | None, busy: Callable[[str], bool]
) -> list[GroupWatcher]:
    """One watcher per configured group, each with a resolver bounded by its interval."""
    return [
        GroupWatcher(
            group,
            DnsResolver(nameserver, min(RESOLVE_TIMEOUT_S, _discovery(group).interval_s)),
            roster,
            busy,
        )
        for group in roster.groups.values()
    ]


def member(group: Deployment, address: str) -> Deployment:
    """The group's deployment as served by the pod at ``address``."""
    discovery = _discovery(group)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{discovery.port}"
    return dataclasses.replace(
        group,
        name=f"{group.name}@{netloc}",
        base_url=f"http://{netloc}{discovery.path}",
        discovery=None,
        group=group.name,
    )


class GroupWatcher:
    """Resolves one group's DNS name every interval and sets its members."""

    def __init__(
        self,
        group: Deployment,
        resolver: DnsResolver,
        roster: Roster,
        busy: Callable[[str], bool],
    ) -> None:
        """``busy`` says whether a deployment has calls in flight (a retired one that has
        none leaves)."""
        self.group, self._discovery = group, _discovery(group)
        self._resolver, self._roster, self._busy = resolver, roster, busy
        self._failing = False
        self._members = metrics.child(metrics.DISCOVERY_MEMBERS, group.name)
        self._errors = metrics.child(metrics.DISCOVERY_ERRORS, group.name)

    async def run(self) -> None:
        """Every interval: let drained members leave, then refresh; until cancelled."""
        while True:
            await asyncio.sleep(self._discovery.interval_s)
            self._roster.sweep(self._busy)
            await self.refresh()

    async def refresh(self) -> None:
        """Resolve once and apply the answer; never raises (but cancellation)."""
        name = self.group.name
        try:
            addresses = await self._resolver.addresses(self._discovery.dns)
        except ResolveError as exc:
            self._errors.inc()
            if not self._failing:
                log.warning(
                    "discovery of %s: cannot resolve %s (%s); keeping its %d members",
                    name,
                    self._discovery.dns,
                    exc,
                    len(self._roster.members(name)),
                )
            self._failing = True
            return
        if self._failing:
            log.info("discovery of %s: %s resolves again", name, self._discovery.dns)
        self._failing = False
        had = len(self._roster.members(name))
        change = self._roster.set_members(name, (member(self.group, a) for a in addresses))
        self._members.set(len(addresses))
        if change.joined:
            metrics.child(metrics.DISCOVERY_CHANGES, name, "added").inc(len(change.joined))
            log.info("discovery of %s: joined %s", name, ", ".join(d.name for d in change.joined))
        if change.retired:
            metrics.child(metrics.DISCOVERY_CHANGES, name, "removed").inc(len(change.retired))
            log.info("discovery of %s: retired %s", name, ", ".join(d.name for d in change.retired))
        if had and not addresses:
            log.warning(
                "discovery of %s: %s has no addresses: no members", name, self._discovery.dns
            )


def _discovery(group: Deployment) -> Discovery:
    if group.discovery is None:
        raise ValueError(f"{group.name} is not a discovery group")
    return group.discovery
