"""The background scraper of each local worker's Prometheus ``/metrics`` (vLLM names).

Every ``interval_s`` it GETs ``<base_url without /v1>/metrics`` of each local deployment over
the gateway's shared aiohttp session, keeps only the few lines it needs (a real vLLM page is
large; parsing all of it every second would stall the event loop), parses them with
prometheus_client's parser and stores running, waiting and KV-cache use, summed over the
label sets of the served model, with the time of the sample. A sample older than
``stale_after_s`` reads as unknown. Failures are counted and logged once per change of state,
never raised. Discovered members are scraped from the round after they join until they
retire (``roster_changed``). Imports: ``aiohttp``, ``prometheus_client``, ``gateway.config``,
``gateway.metrics``, ``gateway.roster``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from gateway import metrics
from gateway.config import Deployment
from gateway.roster import Change

log = logging.getLogger(__name__)

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_CACHE = "vllm:kv_cache_usage_perc"
KV_CACHE_OLD = "vllm:gpu_cache_usage_perc"  # vLLM V0's name for the same gauge
_WANTED = (RUNNING, WAITING, KV_CACHE, KV_CACHE_OLD)
_KEEP_PREFIXES = tuple(p for name in _WANTED for p in (name, f"# HELP {name} ", f"# TYPE {name} "))


@dataclass(frozen=True, slots=True)
class WorkerSample:
    """One worker's load as last scraped, at ``at`` seconds on the scraper's clock."""

    running: int
    waiting: int
    kv_cache_usage: float | None
    at: float


class ScrapeError(Exception):
    """A /metrics page that could not be fetched or lacks the vLLM gauges."""


def metrics_url(base_url: str) -> str:
    """The worker's /metrics URL: ``base_url`` without a trailing ``/v1``, plus ``/metrics``."""
    root = base_url.rstrip("/")
    root = root.removesuffix("/v1")
    return f"{root}/metrics"


def parse_sample(text: str, model: str, at: float) -> WorkerSample:
    """The vLLM gauges of ``model`` in a Prometheus text page (all models if none matches)."""
    kept = "\n".join(line for line in text.splitlines() if line.startswith(_KEEP_PREFIXES))
    mine: dict[str, float] = {}
    every: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(kept + "\n"):
            for sample in family.samples:
                if sample.name in _WANTED:
                    every[sample.name] = every.get(sample.name, 0.0) + sample.value
                    if sample.labels.get("model_name") == model:
                        mine[sample.name] = mine.get(sample.name, 0.0) + sample.value
    except ValueError as exc:
        raise ScrapeError(f"unparsable metrics: {exc}") from exc
    # A worker serving under another name (--served-model-name) still tells us its load.
    values = mine or every
    if RUNNING not in values or WAITING not in values:
        raise ScrapeError(f"no {RUNNING} / {WAITING} gauges on the page")
    kv = values.get(KV_CACHE, values.get(KV_CACHE_OLD))
    return WorkerSample(round(values[RUNNING]), round(values[WAITING]), kv, at)


class WorkerScraper:
    """Scrapes the local deployments; ``latest`` gives a fresh sample or None."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        deployments: Iterable[Deployment],
        *,
        interval_s: float = 1.0,
        stale_after_s: float = 5.0,
        timeout_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._targets = {
            d.name: (metrics_url(d.base_url), d.model)
            for d in deployments
            if d.local and d.base_url
        }
        self.interval_s = interval_s
        self.stale_after_s = stale_after_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock = clock
        self._samples: dict[str, WorkerSample] = {}
        self._failing: dict[str, bool] = {}
        self.failures = 0
        """Failed scrapes since start, all deployments (export as a counter)."""
        self.failures_by_deployment: dict[str, int] = dict.fromkeys(self._targets, 0)

    def roster_changed(self, change: Change) -> None:
        """Scrape joined local deployments from the next round on (at their new URL when a
        reload changed it; not at all when it made them paid); stop scraping retired ones (a
        pod leaving DNS is going away) and forget what was known of those that left."""
        for dep in change.joined:
            if dep.local and dep.base_url:
                self._targets[dep.name] = (metrics_url(dep.base_url), dep.model)
                self.failures_by_deployment.setdefault(dep.name, 0)
            else:
                self._targets.pop(dep.name, None)
                self._samples.pop(dep.name, None)
        for dep in change.retired:
            self._targets.pop(dep.name, None)
            self._samples.pop(dep.name, None)
            self._failing.pop(dep.name, None)
        for dep in change.left:
            self.failures_by_deployment.pop(dep.name, None)

    @property
    def deployments(self) -> tuple[str, ...]:
        """The names of the deployments scraped."""
        return tuple(self._targets)

    @property
    def samples(self) -> Mapping[str, WorkerSample]:
        """The last sample of each deployment, however old."""
        return self._samples

    def latest(self, name: str, now: float) -> WorkerSample | None:
        """The last sample of ``name`` if younger than ``stale_after_s``, else None."""
        sample = self._samples.get(name)
        if sample is None or now - sample.at > self.stale_after_s:
            return None
        return sample

    async def run(self) -> None:
        """Scrape every ``interval_s`` until cancelled."""
        while True:
            started = self._clock()
            await self.scrape_once()
            await asyncio.sleep(max(0.0, self.interval_s - (self._clock() - started)))

    async def scrape_once(self) -> None:
        """Scrape every deployment once, concurrently; never raises (but cancellation)."""
        async with asyncio.TaskGroup() as group:
            for name, (url, model) in self._targets.items():
                group.create_task(self._scrape(name, url, model))

    async def _scrape(self, name: str, url: str, model: str) -> None:
        try:
            async with self._session.get(url, timeout=self._timeout) as response:
                if response.status != 200:
                    raise ScrapeError(f"GET {url} answered {response.status}")
                text = await response.text()
            sample = parse_sample(text, model, self._clock())
        except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError, ScrapeError) as exc:
            if name not in self._targets:
                return  # retired while being scraped
            self.failures += 1
            self.failures_by_deployment[name] += 1
            metrics.child(metrics.WORKER_SCRAPE_FAILURES, name).inc()
            if not self._failing.get(name):
                log.warning("cannot scrape worker %s at %s: %s", name, url, _describe(exc))
            self._failing[name] = True
            return
        if name not in self._targets:
            return
        if self._failing.get(name):
            log.info("scraping worker %s at %s again", name, url)
        self._failing[name] = False
        self._samples[name] = sample


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
