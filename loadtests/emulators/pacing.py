"""Sleeping on a schedule: token-by-token delays that stay right when each is under 1 ms.

uvloop's timers have 1 ms grain, so ``asyncio.sleep(0.0004)`` returns at once: a stream of
time-scaled token steps would run unpaced (256 steps of 0.4 ms took 1 ms, measured), and a
wait that is kept may overshoot to the next millisecond. A ``Pacer`` keeps the time its steps
so far are due by: short steps add up until the wait is long enough to be kept, and an
overshoot is made up by the next steps, so the stream's total and average rate are right.
Only a stream that fell far behind (its reader was slow) starts its schedule again from now.
Imports: stdlib.
"""

from __future__ import annotations

import asyncio

RESTART_AFTER_S = 0.01
"""Behind schedule by more than this, a stream does not hurry to catch up."""


class Pacer:
    """One stream's schedule."""

    __slots__ = ("due",)

    def __init__(self) -> None:
        self.due = 0.0

    async def wait(self, seconds: float) -> None:
        """Sleep until ``seconds`` after the previous step was due (from now, if far late)."""
        now = asyncio.get_running_loop().time()
        if now - self.due > RESTART_AFTER_S:
            self.due = now
        self.due += seconds
        await asyncio.sleep(max(0.0, self.due - now))
