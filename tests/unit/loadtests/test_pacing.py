"""Pacing token steps under 1 ms (loadtests/emulators/pacing.py), on uvloop as the emulators run."""

from __future__ import annotations

import asyncio

import uvloop

from loadtests.emulators.pacing import Pacer


def test_waits_under_a_millisecond_add_up_to_their_total() -> None:
    async def stream(steps: int, step_s: float) -> float:
        loop, pacer = asyncio.get_running_loop(), Pacer()
        started = loop.time()
        for _ in range(steps):
            await pacer.wait(step_s)
        return loop.time() - started

    took = uvloop.run(stream(200, 0.0003))
    assert 0.06 * 0.9 <= took <= 0.06 * 1.5 + 0.01


def test_a_late_step_does_not_make_the_next_ones_hurry() -> None:
    async def scenario() -> float:
        loop, pacer = asyncio.get_running_loop(), Pacer()
        await pacer.wait(0.001)
        await asyncio.sleep(0.05)  # the consumer was slow: the schedule restarts from now
        started = loop.time()
        for _ in range(10):
            await pacer.wait(0.002)
        return loop.time() - started

    assert uvloop.run(scenario()) >= 0.02 * 0.9
