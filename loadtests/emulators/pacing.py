"""Sleeping on a schedule: token-by-token delays that stay right when each is under 1 ms.

uvloop's timers have 1 ms grain, so ``asyncio.sleep(0.0004)`` returns at once: a stream of
time-scaled token steps would run unpaced (256 steps of 0.4 ms took 1 ms, measured). A
``Pacer`` keeps the time its steps so far are due by; short steps add up until the wait is
long enough to be kept, so the stream's total and average rate are right. Imports: stdlib.
"""

from __future__ import annotations

import asyncio


class Pacer:
    """One stream's schedule."""

    __slots__ = ("due",)

    def __init__(self) -> None:
        self.due = 0.0

    async def wait(self, seconds: float) -> None:
        """Sleep until ``seconds`` after the previous step was due (or from now, if late)."""
        now = asyncio.get_running_loop().time()
        self.due = max(self.due, now) + seconds
        await asyncio.sleep(self.due - now)
