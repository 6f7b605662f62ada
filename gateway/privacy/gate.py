"""What privacy does for each request before routing, and the wait for an allowed deployment.

``PrivacyGate.classify``: the request's class from the config default, team, key, alias and
header (``classes.py``), then, unless it is already ``private``, the content detector
(``detector.py``; text longer than ``thread_above_bytes`` is scanned in a worker thread, off
the event loop). Each upgrade is counted in ``gateway_privacy_upgrades_total{detector}``.

``Capacity``: a pinned request whose allowed deployments are all busy waits here for one to
finish a call. ``released`` (the dispatcher calls it as each upstream call ends) wakes the
longest waiter; waiters also look again every ``POLL_S`` (a circuit closes with time, not
with a call ending). Imports: stdlib, ``gateway`` modules.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping

from gateway import metrics
from gateway.accounting.model import Principal
from gateway.asgi import Scope
from gateway.config import Alias
from gateway.privacy.classes import Classification, classify, upgraded
from gateway.privacy.detector import Detector, request_text
from gateway.privacy.settings import PrivacySettings

POLL_S = 0.25


class Capacity:
    """Waiters for a deployment's call to end, woken one per ended call, oldest first."""

    def __init__(self) -> None:
        self._waiters: deque[asyncio.Future[None]] = deque()

    def released(self) -> None:
        """A call ended: wake the longest waiter still waiting (no-op when none waits)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def wait(self, timeout_s: float) -> None:
        """Return when a call ends or after ``min(timeout_s, POLL_S)``, whichever is first."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, min(timeout_s, POLL_S))
        except TimeoutError:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)


class PrivacyGate:
    """Classification, the detector and the queue of one gateway process."""

    def __init__(self, settings: PrivacySettings) -> None:
        self.settings = settings
        detector = settings.detector
        self.detector = Detector(detector) if detector.enabled else None
        self.capacity = Capacity()

    async def classify(
        self, scope: Scope, principal: Principal, alias: Alias, parsed: Mapping[str, object]
    ) -> Classification:
        """The request's class (raises InvalidRequest for a bad or loosening header)."""
        found = classify(scope, self.settings.default_class, principal, alias)
        if self.detector is None or found.data_class == "private":
            return found
        text = request_text(parsed)
        if len(text) > self.detector.settings.thread_above_bytes:
            matched = await asyncio.to_thread(self.detector.scan, text)
        else:
            matched = self.detector.scan(text)
        if not matched:
            return found
        for name in matched:
            metrics.child(metrics.PRIVACY_UPGRADES, name).inc()
        return upgraded(found, matched)
