"""FleetStats: in-flight counts, learnt corrections, scraped load and Candidate snapshots."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from gateway.stats.deployment import StatsSettings
from gateway.stats.fleet import FleetStats
from gateway.stats.worker_scraper import WorkerSample, WorkerScraper
from policies.model import Candidate, RequestFeatures
from policies.predict import Correction, WorkerLoad, admission_wait_s, predict_ttft_s
from policies.worker_latency import H100, PROFILES, decode_step_s
from tests.support.deployments import FakeClock, MetricsServer, local, paid, vllm_page

FEATURES = RequestFeatures(alias="auto", prompt_tokens=1000, expected_output_tokens=200)


class Samples:
    """A fixed sample per deployment, always fresh."""

    def __init__(self, **samples: WorkerSample) -> None:
        self.samples = samples

    def latest(self, name: str, now: float) -> WorkerSample | None:
        return self.samples.get(name)


def one(fleet: FleetStats, now: float = 0.0, dep_name: str = "qwen") -> Candidate:
    deps = {"qwen": local(), "mini": paid()}
    (candidate,) = fleet.candidates([deps[dep_name]], FEATURES, now)
    return candidate


def test_predicted_ttft_grows_with_scraped_waiting() -> None:
    ttfts = []
    for waiting in (0, 10, 40):
        samples = Samples(qwen=WorkerSample(running=4, waiting=waiting, kv_cache_usage=0.3, at=0))
        candidate = one(FleetStats([local()], samples=samples))
        assert (candidate.running, candidate.waiting, candidate.kv_cache_usage) == (4, waiting, 0.3)
        ttfts.append(candidate.predicted_ttft_s)
    assert ttfts[0] < ttfts[1] < ttfts[2]
    # 40 prompts of the 1000-token prior ahead at 25k tokens/s: 1.6 s more prefill than
    # none; and a full worker (vLLM reports them waiting) admits the newcomer only after 41
    # of its 4 running sequences (200-token prior each) have finished.
    load = WorkerLoad(4, 40, 40 * 1000, 1000 + 200 / 2, blocked=40, mean_output_tokens=200)
    admission = admission_wait_s(PROFILES["h100"], load)
    assert admission == pytest.approx(41 * 200 * decode_step_s(PROFILES["h100"], 4, 1100) / 4)
    assert ttfts[2] - ttfts[0] == pytest.approx(40 * 1000 / 25_000 + admission, rel=0.01)


def test_own_unanswered_calls_count_as_waiting_without_a_scrape() -> None:
    fleet = FleetStats([local()])
    idle = one(fleet).predicted_ttft_s
    tickets = [fleet.started("qwen", 0.0, prompt_tokens=1000) for _ in range(3)]
    assert one(fleet).predicted_ttft_s == pytest.approx(idle + 3 * 1000 / 25_000, rel=0.01)
    assert one(fleet).waiting is None
    for ticket in tickets:
        fleet.first_token(ticket, 0.1)
    # Answered: no longer ahead in the prefill queue (the 0.1 s observations also taught
    # the correction something, so compare against the corrected idle prediction).
    factor = fleet["qwen"].correction.factor
    assert one(fleet).predicted_ttft_s == pytest.approx(idle * factor, rel=0.01)
    assert one(fleet).inflight == 3


def test_correction_learns_a_worker_25_percent_slower_than_calibrated() -> None:
    fleet = FleetStats([local()])
    model = predict_ttft_s(H100, WorkerLoad(0, 0, 0.0, 1100.0), 1000, Correction())
    now = 0.0
    for _ in range(60):
        ticket = fleet.started("qwen", now, prompt_tokens=1000)
        fleet.first_token(ticket, now + 1.25 * ticket.base_ttft_s)
        fleet.finished(ticket, now + 1.0, ok=True, output_tokens=200)
        now += 2.0
    assert fleet["qwen"].correction.factor == pytest.approx(1.25, rel=0.01)
    assert one(fleet, now).predicted_ttft_s == pytest.approx(1.25 * model, rel=0.01)


def test_stale_scrape_is_ignored() -> None:
    clock = FakeClock()

    async def scenario() -> tuple[Candidate, Candidate, Candidate]:
        async with MetricsServer().running() as server, aiohttp.ClientSession() as session:
            server.page = vllm_page(running=8, waiting=30, kv=0.6)
            scraper = WorkerScraper(
                session, [local(base_url=server.url)], stale_after_s=5.0, clock=clock
            )
            fleet = FleetStats([local()], samples=scraper)
            before = one(fleet, clock.now)
            await scraper.scrape_once()
            return before, one(fleet, clock.now + 1.0), one(fleet, clock.now + 6.0)

    before, fresh, stale = asyncio.run(scenario())
    assert (fresh.running, fresh.waiting, fresh.kv_cache_usage) == (8, 30, 0.6)
    assert fresh.predicted_ttft_s > before.predicted_ttft_s + 1.0
    assert (stale.running, stale.waiting, stale.kv_cache_usage) == (None, None, None)
    assert stale.predicted_ttft_s == pytest.approx(before.predicted_ttft_s)


def test_candidates_carry_prices_and_limits() -> None:
    fleet = FleetStats([local(), paid()])
    qwen, mini = fleet.candidates([local(), paid()], FEATURES, 0.0)
    assert (qwen.name, qwen.local, mini.name, mini.local) == ("qwen", True, "mini", False)
    assert (qwen.input_usd_per_token, qwen.output_usd_per_token) == (0.0, 0.0)
    assert qwen.shadow_usd_per_output_token == pytest.approx(3.99 / 3600 / 8088)
    assert mini.input_usd_per_token == pytest.approx(0.15e-6)
    assert mini.output_usd_per_token == pytest.approx(0.60e-6)
    assert mini.shadow_usd_per_output_token == 0.0
    assert (qwen.context_window, qwen.max_concurrency, mini.context_window) == (32768, 4, 128000)
    assert mini.predicted_ttft_s == pytest.approx(0.8)
    assert mini.tpot_s == pytest.approx(1 / 60)
    assert qwen.tpot_s == pytest.approx(H100.tpot_points[0][1], rel=0.1)


def test_candidates_carry_circuit_state_through_open_probe_and_close() -> None:
    fleet = FleetStats([paid()])
    for t in range(5):
        ticket = fleet.started("mini", float(t))
        fleet.finished(ticket, float(t) + 0.1, ok=False, kind="connect")
    assert one(fleet, 5.0, "mini").circuit == "open"
    assert fleet.refusal(paid(), 5.0) == "circuit_open"
    assert fleet.retry_in_s("mini", 5.0) == pytest.approx(4.1)
    assert one(fleet, 9.2, "mini").circuit == "half_open"
    probe = fleet.started("mini", 9.2)
    assert one(fleet, 9.3, "mini").circuit == "open"  # the one probe is out
    fleet.finished(probe, 9.5, ok=True, output_tokens=10)
    assert one(fleet, 9.5, "mini").circuit == "closed"
    assert one(fleet, 9.5, "mini").error_rate == pytest.approx(5 / 6)


def test_a_429_opens_the_circuit_for_its_retry_after() -> None:
    fleet = FleetStats([paid()])
    ticket = fleet.started("mini", 0.0)
    fleet.finished(ticket, 0.1, ok=False, kind="rate_limited", retry_after_s=30.0)
    assert one(fleet, 29.0, "mini").circuit == "open"
    assert one(fleet, 30.2, "mini").circuit == "half_open"


def test_neutral_failures_do_not_count_against_the_deployment() -> None:
    fleet = FleetStats([paid()])
    for t in range(10):
        ticket = fleet.started("mini", float(t))
        fleet.finished(ticket, float(t), ok=False, kind="aborted")
    candidate = one(fleet, 10.0, "mini")
    assert (candidate.circuit, candidate.error_rate, candidate.inflight) == ("closed", 0.0, 0)


def test_paid_ttft_and_tpot_are_ewmas_of_what_was_observed() -> None:
    fleet = FleetStats([paid()])
    for t in range(20):
        ticket = fleet.started("mini", t * 10.0)
        fleet.first_token(ticket, t * 10.0 + 0.3)
        fleet.finished(ticket, t * 10.0 + 0.3 + 99 * 0.01, ok=True, output_tokens=100)
    candidate = one(fleet, 300.0, "mini")
    assert candidate.predicted_ttft_s == pytest.approx(0.3)
    assert candidate.tpot_s == pytest.approx(0.01)


def test_refusal_says_saturated_at_max_concurrency() -> None:
    fleet = FleetStats([local()])
    tickets = [fleet.started("qwen", 0.0) for _ in range(4)]
    assert fleet.refusal(local(), 0.0) == "saturated"
    fleet.finished(tickets[0], 1.0, ok=True)
    fleet.finished(tickets[0], 1.0, ok=True)  # a second report of one call is ignored
    assert fleet.inflight("qwen") == 3
    assert fleet.refusal(local(), 1.0) is None


def test_measured_throughput_sets_the_shadow_cost() -> None:
    fleet = FleetStats([local()], settings=StatsSettings(throughput_window_s=5.0))
    for t in range(6):  # one call at a time, 100 tokens per busy second
        ticket = fleet.started("qwen", float(t), stream=False)
        fleet.finished(ticket, t + 1.0, ok=True, output_tokens=100)
    assert one(fleet, 6.0).shadow_usd_per_output_token == pytest.approx(3.99 / 3600 / 100)


def test_an_unknown_gpu_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown GPU 'b200'"):
        FleetStats([local()], gpus={"qwen": "b200"})
