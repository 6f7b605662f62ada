"""Fault knobs shared by every emulator: fail, hang, and die after N requests.

- ``fail_rate``: that fraction of requests gets a 500 before any byte of a reply (written to
  the request log, if any).
- ``hang_rate``: that fraction is accepted and never answered, until the client gives up.
- ``die_after``: the process exits (status 3) right after answering its N-th request, as a
  worker that crashes.

Draws come from one ``random.Random(seed)``, so a run with a given seed and request order is
reproducible. Only inference requests (POST) are drawn and counted, never probes.
"""

from __future__ import annotations

import asyncio
import enum
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass

from loadtests.emulators.asgi import Handler, Headers, Request, respond, wait_for_disconnect
from loadtests.emulators.request_log import RequestLog

DIE_EXIT_STATUS = 3
_EXIT_DELAY_S = 0.05  # lets the transport flush the last reply before the process goes


class Fault(enum.Enum):
    """What the fault knobs decided for one request."""

    NONE = "none"
    FAIL = "fail"
    HANG = "hang"


@dataclass(frozen=True, slots=True)
class FaultKnobs:
    """The ``--fail-rate``, ``--hang-rate`` and ``--die-after`` options."""

    fail_rate: float = 0.0
    hang_rate: float = 0.0
    die_after: int | None = None


class Faults:
    """Draws a fault per request and counts answered requests for ``die_after``."""

    def __init__(
        self, knobs: FaultKnobs, rng: random.Random, log: RequestLog | None = None
    ) -> None:
        self.knobs = knobs
        self.rng = rng
        self.log = log
        self.answered = 0

    def draw(self) -> Fault:
        """The fault for the next request (one uniform draw when any rate is set)."""
        if not (self.knobs.fail_rate or self.knobs.hang_rate):
            return Fault.NONE
        x = self.rng.random()
        if x < self.knobs.fail_rate:
            return Fault.FAIL
        if x < self.knobs.fail_rate + self.knobs.hang_rate:
            return Fault.HANG
        return Fault.NONE

    def answered_one(self) -> None:
        """Count one answered request; schedule the exit when ``die_after`` is reached."""
        self.answered += 1
        if self.knobs.die_after is not None and self.answered == self.knobs.die_after:
            sys.stderr.write(f"die-after: exiting after {self.answered} requests\n")
            sys.stderr.flush()
            asyncio.get_running_loop().call_later(_EXIT_DELAY_S, os._exit, DIE_EXIT_STATUS)

    def guard(
        self,
        handler: Handler,
        fail_reply: tuple[int, bytes, Headers],
        on_hang_end: Callable[[], None] | None = None,
    ) -> Handler:
        """Wrap ``handler``: apply the drawn fault, then count the request as answered."""

        async def guarded(request: Request) -> None:
            fault = self.draw()
            if fault is Fault.HANG:
                await wait_for_disconnect(request.receive)
                if on_hang_end is not None:
                    on_hang_end()
                return
            if fault is Fault.FAIL:
                status, body, headers = fail_reply
                await respond(request.send, status, body, headers)
                if self.log is not None:
                    self.log.write(request, status)
            else:
                await handler(request)
            self.answered_one()

        return guarded
