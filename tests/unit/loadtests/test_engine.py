"""The emulated engine's admission and pacing (a tiny time scale, real asyncio)."""

from __future__ import annotations

import asyncio

import uvloop

from loadtests.emulators.engine import Engine
from policies.worker_latency import H100


async def _hold(engine: Engine, started: asyncio.Event, release: asyncio.Event) -> None:
    async with engine.sequence(100):
        started.set()
        await release.wait()


def test_requests_beyond_max_num_seqs_wait_until_a_slot_frees() -> None:
    async def scenario() -> None:
        engine = Engine(H100, max_num_seqs=2, time_scale=0.001)
        release = asyncio.Event()
        events = [asyncio.Event() for _ in range(3)]
        tasks = [asyncio.create_task(_hold(engine, e, release)) for e in events]
        await asyncio.sleep(0.01)
        assert (len(engine.running), len(engine.waiting)) == (2, 1)
        assert engine.context_tokens == 200
        release.set()
        await asyncio.gather(*tasks)
        assert all(e.is_set() for e in events)
        assert (len(engine.running), len(engine.waiting), engine.context_tokens) == (0, 0, 0)

    asyncio.run(scenario())


def test_cancelled_sequence_leaves_running_and_frees_its_slot() -> None:
    async def scenario() -> None:
        engine = Engine(H100, max_num_seqs=1, time_scale=0.001)
        release = asyncio.Event()
        first, second = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(_hold(engine, first, release))
        waiter = asyncio.create_task(_hold(engine, second, release))
        await asyncio.sleep(0.01)
        holder.cancel()
        await asyncio.sleep(0.01)
        assert second.is_set()
        assert len(engine.running) == 1
        release.set()
        await waiter
        assert not engine.running

    asyncio.run(scenario())


def test_prefill_and_decode_count_tokens_into_the_kv_cache() -> None:
    async def scenario() -> None:
        engine = Engine(H100, max_num_seqs=4, time_scale=0.001)
        async with engine.sequence(1000) as seq:
            await engine.prefill(seq)
            await engine.decode(seq, 9)
            assert seq.generated == 10
            assert engine.kv_cache_usage() == 1010 / 1_000_000
        assert engine.context_tokens == 0

    asyncio.run(scenario())


def test_short_decode_steps_add_up_to_the_right_time_under_uvloop() -> None:
    """~0.4 ms steps (H100 at time scale 0.05): each sleep alone would round to nothing."""

    async def scenario() -> tuple[float, float]:
        engine = Engine(H100, max_num_seqs=4, time_scale=0.05)
        loop = asyncio.get_running_loop()
        async with engine.sequence(100) as seq:
            started = loop.time()
            step_s = sum([await engine.decode(seq, 1) for _ in range(256)])
            return loop.time() - started, step_s * engine.time_scale

    took, expected = uvloop.run(scenario())
    assert expected > 0.05  # the schedule is long enough to measure
    assert 0.9 * expected <= took <= 1.5 * expected + 0.01
