"""Reloading the config file while serving: on SIGHUP, or when polling sees it changed.

Every ``server.config_poll_s`` (0: never) the file's mtime, size and inode are checked; when
they moved, its bytes are hashed, and new content is reloaded once the next poll finds the
same bytes: a file an editor or a copy is still writing is never read half-way (it would be
rejected, or worse, a truncated file could be valid). SIGHUP reloads whatever the file holds,
at once. A reload validates the bytes it read (off the event loop), then
checks it against the config in force: settings built into long-lived objects at start
(``RESTART_ONLY``, the discovery groups, a first deployment of a kind no upstream client was
opened for) make it ``rejected`` with what needs a restart, as an invalid file is rejected
with its field path; the old config keeps serving and the file is not tried again until it
changes. Otherwise it is swapped in one synchronous step: the roster (deployments dropped
retire and drain, new ones join, changed ones join again under their name with their stats
kept), the dispatcher's aliases and policies, the model catalog. Requests that already
decided keep their deployments; the next decision sees the new config. Operator states
(``gateway.control``) are kept for every name that still exists.
Imports: stdlib, ``gateway.config``, ``gateway.dispatch``, ``gateway.metrics``,
``gateway.roster``, ``gateway.routes.models``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import fields

from gateway import metrics
from gateway.config import Config, ConfigError, config_from_bytes
from gateway.dispatch import Dispatcher
from gateway.roster import Roster
from gateway.routes.models import ModelCatalog

log = logging.getLogger(__name__)

LIVE_SERVER_KEYS = frozenset({"max_body_bytes"})
"""``server`` settings a reload changes; every other one needs a restart."""
RESTART_ONLY = ("server", "accounting", "cache", "privacy")
"""Sections whose settings (but ``LIVE_SERVER_KEYS``) are read once, at start (privacy: by
the dispatcher's gate and the audit log's cap)."""


def needs_restart(old: Config, new: Config, kinds: Iterable[str]) -> list[str]:
    """What differs between ``old`` and ``new`` that a reload cannot apply (field paths);
    ``kinds`` are the deployment kinds that have an upstream client in this process."""
    found: list[str] = []
    for section in RESTART_ONLY:
        before, after = getattr(old, section), getattr(new, section)
        for field in fields(before):
            if section == "server" and field.name in LIVE_SERVER_KEYS:
                continue
            if getattr(before, field.name) != getattr(after, field.name):
                found.append(f"{section}.{field.name}")
    groups = {n for n, d in (*old.deployments.items(), *new.deployments.items()) if d.discovery}
    for name in sorted(groups):
        if old.deployments.get(name) != new.deployments.get(name):
            found.append(f"deployments[{name}] (a discovery group)")
    known = set(kinds)
    for dep in new.deployments.values():
        if dep.kind not in known:
            found.append(f"deployments[{dep.name}].kind ({dep.kind}: no {dep.kind} client yet)")
    return found


class Reloader:
    """Keeps this process serving the config file's latest valid content."""

    def __init__(
        self,
        path: str,
        config: Config,
        roster: Roster,
        dispatcher: Dispatcher,
        models: ModelCatalog,
        kinds: Iterable[str],
    ) -> None:
        self.path, self.config = path, config
        self._roster, self._dispatcher, self._models = roster, dispatcher, models
        self._kinds = frozenset(kinds)
        self._seen = self._stat()
        content = self._read()
        self._digest = None if content is None else _digest(content)
        self._pending: str | None = None
        """The digest of new content seen at the last poll, reloaded if the next one agrees."""
        self._wake = asyncio.Event()
        for result in ("applied", "rejected"):  # at 0 from the start: increase() sees the 1st
            metrics.child(metrics.CONFIG_RELOADS, result)
        metrics.CONFIG_LAST_RELOAD_SUCCESS.set(time.time())
        metrics.CONFIG_LAST_RELOAD_SUCCESSFUL.set(1)

    def wake(self) -> None:
        """Reload now (the SIGHUP handler)."""
        self._wake.set()

    async def run(self) -> None:
        """Reload on every wake and whenever polling finds the file changed and settled;
        until cancelled."""
        poll_s = self.config.server.config_poll_s or None
        while True:
            try:
                async with asyncio.timeout(poll_s):
                    await self._wake.wait()
            except TimeoutError:
                content = await asyncio.to_thread(self._poll)
                if content is not None:
                    await self.reload("the file changed", content)
                continue
            self._wake.clear()
            await self.reload("SIGHUP")

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _read(self) -> bytes | None:
        try:
            with open(self.path, "rb") as file:
                return file.read()
        except OSError:
            return None

    def _poll(self) -> bytes | None:
        """The file's new content once two polls in a row read the same bytes; None: nothing
        to reload (unchanged, unreadable, or changed since the last poll)."""
        seen = self._stat()
        if seen == self._seen and self._pending is None:
            return None
        self._seen = seen
        content = self._read()
        digest = None if content is None else _digest(content)
        if digest is None or digest == self._digest:
            self._pending = None
            return None
        if digest != self._pending:
            self._pending = digest  # maybe still being written: look again next poll
            return None
        self._pending = None
        self._digest = digest  # tried once per content: a rejected file waits for a fix
        return content

    def _load(self, content: bytes | None) -> Config:
        if content is None:  # SIGHUP: what the file holds now
            self._seen = self._stat()
            with open(self.path, "rb") as file:
                content = file.read()
            self._digest, self._pending = _digest(content), None
        return config_from_bytes(content, self.path)

    async def reload(self, why: str, content: bytes | None = None) -> bool:
        """Check and swap in ``content`` (None: read the file now); True when applied."""
        try:
            new = await asyncio.to_thread(self._load, content)
        except (ConfigError, OSError) as exc:
            return self._reject(f"invalid config: {exc}")
        restart = needs_restart(self.config, new, self._kinds)
        if restart:
            return self._reject(f"these changes need a restart: {', '.join(restart)}")
        self._apply(new)
        log.info(
            "config reloaded (%s): %d aliases, %d deployments",
            why,
            len(new.aliases),
            len(new.deployments),
        )
        return True

    def _apply(self, new: Config) -> None:
        """The swap: no await from here to the end, so no request sees half of it."""
        self._dispatcher.reconfigure(new)
        self._roster.reconfigure(new)
        self._models.update(new)
        self.config = new
        metrics.child(metrics.CONFIG_RELOADS, "applied").inc()
        metrics.CONFIG_LAST_RELOAD_SUCCESS.set(time.time())
        metrics.CONFIG_LAST_RELOAD_SUCCESSFUL.set(1)

    def _reject(self, message: str) -> bool:
        metrics.child(metrics.CONFIG_RELOADS, "rejected").inc()
        metrics.CONFIG_LAST_RELOAD_SUCCESSFUL.set(0)
        log.error(
            "config reload of %s rejected; the old config keeps serving: %s", self.path, message
        )
        return False


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
