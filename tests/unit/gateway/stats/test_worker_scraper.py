"""WorkerScraper: URL, parsing, staleness and failure counting, against a loopback server."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from gateway.stats.worker_scraper import ScrapeError, WorkerScraper, metrics_url, parse_sample
from tests.support.deployments import QWEN, FakeClock, MetricsServer, local, paid, vllm_page


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://w:8000/v1", "http://w:8000/metrics"),
        ("http://w:8000/v1/", "http://w:8000/metrics"),
        ("http://w:8000", "http://w:8000/metrics"),
        ("http://w/qwen/v1", "http://w/qwen/metrics"),
    ],
)
def test_metrics_url_drops_a_trailing_v1(base_url: str, expected: str) -> None:
    assert metrics_url(base_url) == expected


def test_parse_sums_the_served_models_label_sets_only() -> None:
    page = (
        vllm_page(2, 3, 0.25)
        + vllm_page(1, 4, 0.5).replace('engine="0"', 'engine="1"')
        + vllm_page(9, 9, 0.9, model="other")
    )
    sample = parse_sample(page, QWEN, at=7.0)
    assert (sample.running, sample.waiting, sample.at) == (3, 7, 7.0)
    assert sample.kv_cache_usage == pytest.approx(0.75)


def test_parse_reads_any_model_when_the_served_name_differs() -> None:
    sample = parse_sample(vllm_page(2, 1, 0.1, model="qwen-served"), QWEN, at=0.0)
    assert (sample.running, sample.waiting) == (2, 1)


def test_parse_falls_back_to_the_v0_kv_cache_gauge() -> None:
    page = vllm_page(1, 0, 0.3).replace("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
    assert parse_sample(page, QWEN, at=0.0).kv_cache_usage == pytest.approx(0.3)


def test_parse_ignores_other_metrics_and_tolerates_no_kv_gauge() -> None:
    page = (
        "# TYPE other_total counter\nother_total 5\n"
        + vllm_page(1, 2, 0.0).split("# HELP vllm:kv_cache_usage_perc")[0]
    )
    sample = parse_sample(page, QWEN, at=0.0)
    assert (sample.running, sample.waiting, sample.kv_cache_usage) == (1, 2, None)


def test_parse_raises_when_the_vllm_gauges_are_missing() -> None:
    with pytest.raises(ScrapeError, match="num_requests_running"):
        parse_sample("# TYPE up gauge\nup 1\n", QWEN, at=0.0)


def test_scrapes_local_deployments_only_and_a_sample_goes_stale() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        async with MetricsServer().running() as server, aiohttp.ClientSession() as session:
            server.page = vllm_page(3, 5, 0.4)
            scraper = WorkerScraper(
                session, [local(base_url=server.url), paid()], stale_after_s=5.0, clock=clock
            )
            assert scraper.deployments == ("qwen",)
            await scraper.scrape_once()
            sample = scraper.latest("qwen", clock.now + 5.0)
            assert sample is not None
            assert (sample.running, sample.waiting, sample.at) == (3, 5, clock.now)
            assert scraper.latest("qwen", clock.now + 5.1) is None
            assert scraper.latest("mini", clock.now) is None
            assert scraper.failures == 0

    asyncio.run(scenario())


def test_failures_are_counted_and_logged_once_per_change(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.stats.worker_scraper")

    async def scenario() -> None:
        async with MetricsServer().running() as server, aiohttp.ClientSession() as session:
            dead = local("dead", base_url="http://127.0.0.1:1/v1")
            scraper = WorkerScraper(session, [local(base_url=server.url), dead])
            server.status = 500
            for _ in range(3):
                await scraper.scrape_once()
            assert scraper.failures == 6
            assert scraper.failures_by_deployment == {"qwen": 3, "dead": 3}
            server.status = 200
            await scraper.scrape_once()
            assert scraper.failures_by_deployment == {"qwen": 3, "dead": 4}
            assert scraper.latest("qwen", scraper.samples["qwen"].at) is not None

    asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot scrape worker qwen" in m for m in messages) == 1
    assert sum("cannot scrape worker dead" in m for m in messages) == 1
    assert sum("scraping worker qwen at" in m and "again" in m for m in messages) == 1


def test_run_scrapes_every_interval_until_cancelled() -> None:
    async def scenario() -> None:
        async with MetricsServer().running() as server, aiohttp.ClientSession() as session:
            scraper = WorkerScraper(session, [local(base_url=server.url)], interval_s=0.01)
            task = asyncio.create_task(scraper.run())
            await asyncio.sleep(0.1)
            server.page = vllm_page(7, 1, 0.5)
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert scraper.samples["qwen"].running == 7

    asyncio.run(scenario())
