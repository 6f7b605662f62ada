"""The worker scraper against a real vLLM emulator process: it sees the queue grow under
load and drain afterwards, and a dead worker's sample goes stale without an exception."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

import aiohttp
import pytest

from gateway.stats.worker_scraper import WorkerSample, WorkerScraper
from loadtests.fleet import Service, start_emulator
from tests.support.deployments import local

pytestmark = pytest.mark.integration

QWEN = "Qwen/Qwen2.5-7B-Instruct"
MAX_NUM_SEQS = 4
CALLS = 12  # three waves of four: some run while the rest wait
SLOW_BODY = {
    "model": QWEN,
    "messages": [{"role": "user", "content": "tell me about routing"}],
    "max_tokens": 1000,  # ~0.4 s per wave at time scale 0.05
    "ignore_eos": True,
}


@pytest.fixture(scope="module")
def worker() -> Iterator[Service]:
    """A vLLM emulator admitting at most four sequences, at 1/20 of real time."""
    with contextlib.ExitStack() as stack:
        yield start_emulator(
            stack, "vllm", "--max-num-seqs", str(MAX_NUM_SEQS), time_scale=0.05, max_lifetime_s=120
        )


async def scrape_until(
    scraper: WorkerScraper, done: Callable[[WorkerSample], bool], timeout_s: float = 10.0
) -> WorkerSample:
    """Scrape every 10 ms until ``done`` holds for the fresh sample; return it."""
    deadline = time.monotonic() + timeout_s
    while True:
        await scraper.scrape_once()
        sample = scraper.latest("qwen", time.monotonic())
        if sample is not None and done(sample):
            return sample
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen in {timeout_s} s; last sample {sample}")
        await asyncio.sleep(0.01)


def test_scraper_sees_the_queue_grow_under_load_and_drain(worker: Service) -> None:
    async def scenario() -> tuple[WorkerSample, WorkerSample, int]:
        async with aiohttp.ClientSession() as session:
            scraper = WorkerScraper(session, [local("qwen", f"{worker.url}/v1")])

            async def call() -> int:
                url = f"{worker.url}/v1/chat/completions"
                async with session.post(url, json=SLOW_BODY) as response:
                    await response.read()
                    return response.status

            async with asyncio.TaskGroup() as group:
                calls = [group.create_task(call()) for _ in range(CALLS)]
                busy = await scrape_until(scraper, lambda s: s.running > 0 and s.waiting > 0)
            idle = await scrape_until(scraper, lambda s: s.running == 0 and s.waiting == 0)
            assert all(c.result() == 200 for c in calls)
            return busy, idle, scraper.failures

    busy, idle, failures = asyncio.run(scenario())
    assert busy.running == MAX_NUM_SEQS
    assert 0 < busy.waiting <= CALLS - MAX_NUM_SEQS
    assert busy.kv_cache_usage is not None and busy.kv_cache_usage > 0
    assert (idle.running, idle.waiting) == (0, 0)
    assert failures == 0


def test_a_dead_workers_sample_goes_stale_without_raising() -> None:
    async def scenario() -> tuple[WorkerSample | None, WorkerSample | None, int]:
        with contextlib.ExitStack() as stack:
            dying = start_emulator(stack, "vllm", time_scale=0.05, max_lifetime_s=60)
            async with aiohttp.ClientSession() as session:
                scraper = WorkerScraper(
                    session,
                    [local("qwen", f"{dying.url}/v1")],
                    stale_after_s=0.3,
                    timeout_s=0.5,
                )
                await scraper.scrape_once()
                alive = scraper.latest("qwen", time.monotonic())
                dying.process.kill()
                for _ in range(3):
                    await scraper.scrape_once()
                await asyncio.sleep(0.35)
                await scraper.scrape_once()
                return alive, scraper.latest("qwen", time.monotonic()), scraper.failures

    alive, after, failures = asyncio.run(scenario())
    assert alive is not None and (alive.running, alive.waiting) == (0, 0)
    assert after is None
    assert failures == 4
