"""What follows the roster: FleetStats, the worker scraper, the costing meters and the
per-deployment metric series of a member that joins, retires and leaves."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal

import aiohttp
import pytest
from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from gateway import metrics
from gateway.accounting.cost import Costing
from gateway.accounting.pricing import Price
from gateway.config import Deployment
from gateway.roster import Change
from gateway.stats.fleet import FleetStats
from gateway.stats.worker_scraper import WorkerScraper
from policies.model import RequestFeatures
from tests.support.deployments import MetricsServer, local, paid, vllm_page

FEATURES = RequestFeatures(alias="pods", prompt_tokens=100, expected_output_tokens=10)


def pod(address: str = "10.0.0.1", base_url: str | None = None) -> Deployment:
    dep = local(f"qwen-7b@{address}:8000")
    return dataclasses.replace(dep, base_url=base_url or f"http://{address}:8000/v1")


def test_fleet_stats_follow_joins_and_keep_a_retired_member_until_it_leaves() -> None:
    fleet, member = FleetStats([paid()]), pod()
    fleet.roster_changed(Change(joined=(member,)))
    (candidate,) = fleet.candidates([member], FEATURES, 0.0)
    assert (candidate.name, candidate.local, candidate.inflight) == (member.name, True, 0)
    ticket = fleet.started(member.name, 0.0, stream=False)
    fleet.roster_changed(Change(retired=(member,)))
    assert fleet.inflight(member.name) == 1  # the call in flight goes on
    fleet.finished(ticket, 1.0, ok=True, output_tokens=10)
    assert fleet.inflight(member.name) == 0
    fleet.roster_changed(Change(joined=(member,)))  # back before it left: same stats
    assert fleet[member.name].output_tokens.value != fleet.settings.output_tokens_prior
    fleet.roster_changed(Change(left=(member,)))
    assert member.name not in {c.name for c in fleet.candidates([paid()], FEATURES, 0.0)}
    with pytest.raises(KeyError):
        fleet[member.name]


def test_the_scraper_scrapes_a_joined_member_and_drops_it_when_it_retires() -> None:
    async def scenario() -> None:
        async with MetricsServer().running() as server, aiohttp.ClientSession() as session:
            server.page = vllm_page(2, 7, 0.5)
            scraper = WorkerScraper(session, [paid()])
            member = pod(base_url=server.url)
            assert scraper.deployments == ()
            scraper.roster_changed(Change(joined=(member,)))
            await scraper.scrape_once()
            sample = scraper.samples[member.name]
            assert (sample.running, sample.waiting) == (2, 7)
            scraper.roster_changed(Change(retired=(member,)))
            assert scraper.deployments == ()
            assert member.name not in scraper.samples
            scraper.roster_changed(Change(left=(member,)))
            assert member.name not in scraper.failures_by_deployment

    asyncio.run(scenario())


def test_costing_meters_a_joined_local_member_until_it_leaves() -> None:
    costing, member = Costing(Price.per_million(Decimal(1), Decimal(1)), []), pod()
    assert costing.shadow_micros(member, 100, 0.0, 1.0) == 0  # unknown: no meter
    costing.roster_changed(Change(joined=(member,)))
    assert costing.shadow_micros(member, 100, 0.0, 1.0) > 0
    costing.roster_changed(Change(left=(member,)))
    assert costing.shadow_micros(member, 100, 1.0, 2.0) == 0


def series(deployment: str) -> list[str]:
    return [
        s.name
        for family in REGISTRY.collect()
        for s in family.samples
        if s.labels.get("deployment") == deployment
    ]


def test_forget_removes_every_series_of_a_member_and_later_increments_still_count() -> None:
    name = "qwen-7b@10.9.9.9:8000"
    metrics.child(metrics.UPSTREAM_INFLIGHT, name).inc()
    metrics.child(metrics.UPSTREAM_ERRORS, name, "connect").inc()
    metrics.child(metrics.UPSTREAM_DURATION, name, "local", "ok").observe(0.1)
    metrics.child(metrics.REQUESTS, "chat", "pods", name, "200").inc()
    metrics.child(metrics.UPSTREAM_ERRORS, "other", "connect").inc()
    assert series(name)
    metrics.forget(name)
    assert series(name) == []
    assert series("other")
    metrics.child(metrics.UPSTREAM_ERRORS, name, "connect").inc()  # a fresh child, registered
    assert (
        REGISTRY.get_sample_value(
            "gateway_upstream_errors_total", {"deployment": name, "kind": "connect"}
        )
        == 1.0
    )
    metrics.forget(name)


def test_per_deployment_lists_every_metric_with_a_deployment_label() -> None:
    labelled = {
        value._name
        for value in vars(metrics).values()
        if isinstance(value, Counter | Gauge | Histogram) and "deployment" in value._labelnames
    }
    assert labelled == {m._name for m in metrics.PER_DEPLOYMENT}
