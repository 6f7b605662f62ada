"""The gateway's and the workers' Prometheus counters that a load test reports, from /metrics.

``GatewayCounters.parse`` reads one scrape; ``after.minus(before)`` is what a run did. The
names are the gateway's (``gateway/metrics.py``) and vLLM's (``vllm:num_requests_waiting``).
``WorkerCounters`` reads the local workers' load, and ``histogram_quantile`` a percentile of
their own TTFT between two scrapes. Pure: the text comes from ``loadtests.fleet.scrape``.
Imports: ``prometheus_client``'s parser, ``loadtests.fleet``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

from prometheus_client.parser import text_string_to_metric_families

from loadtests.fleet import metric_sum


@dataclass(frozen=True, slots=True)
class GatewayCounters:
    """Totals of one scrape of the gateway (or the difference of two)."""

    requests: float = 0.0
    input_tokens: float = 0.0
    output_tokens: float = 0.0
    local_tokens: float = 0.0
    """Input and output tokens served by local (owned) workers."""
    spend_usd: float = 0.0
    savings_usd: float = 0.0
    cache_hits: float = 0.0
    cache_misses: float = 0.0
    rate_limited: float = 0.0
    """Upstream calls a paid API refused with 429."""

    @classmethod
    def parse(cls, exposition: str) -> GatewayCounters:
        """The counters in the text of the gateway's /metrics."""

        def total(name: str, **labels: str) -> float:
            def where(have: Mapping[str, str]) -> bool:
                return all(have.get(k) == v for k, v in labels.items())

            return metric_sum(exposition, name, where)

        return cls(
            requests=total("gateway_requests_total"),
            input_tokens=total("gateway_tokens_total", direction="input"),
            output_tokens=total("gateway_tokens_total", direction="output"),
            local_tokens=total("gateway_tokens_total", provider="local"),
            spend_usd=total("gateway_spend_usd_total"),
            savings_usd=total("gateway_savings_usd_total"),
            cache_hits=total("gateway_cache_requests_total", result="hit"),
            cache_misses=total("gateway_cache_requests_total", result="miss"),
            rate_limited=total("gateway_upstream_errors_total", kind="rate_limited"),
        )

    def minus(self, earlier: GatewayCounters) -> GatewayCounters:
        """What happened between ``earlier`` and this scrape."""
        return GatewayCounters(
            **{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)}
        )

    @property
    def tokens(self) -> float:
        """Input and output tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def local_share(self) -> float | None:
        """The share of tokens served by local workers (None without tokens)."""
        return self.local_tokens / self.tokens if self.tokens else None


@dataclass(frozen=True, slots=True)
class WorkerCounters:
    """The local workers' load at one scrape, summed over the workers (vLLM's names)."""

    waiting: float = 0.0
    """Requests queued (``vllm:num_requests_waiting``)."""
    running: float = 0.0
    """Requests in the running batches (``vllm:num_requests_running``)."""
    ttft_buckets: Mapping[float, float] = field(default_factory=dict)
    """The workers' own TTFT histogram (``vllm:time_to_first_token_seconds``): upper bound
    in seconds -> cumulative count."""
    ttft_sum_s: float = 0.0
    ttft_count: float = 0.0

    @classmethod
    def parse(cls, expositions: Sequence[str]) -> WorkerCounters:
        """The counters in the texts of the workers' /metrics."""
        buckets: dict[float, float] = {}
        for text in expositions:
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name == f"{_WORKER_TTFT}_bucket":
                        bound = float(sample.labels["le"])
                        buckets[bound] = buckets.get(bound, 0.0) + sample.value
        return cls(
            waiting=sum(metric_sum(t, "vllm:num_requests_waiting") for t in expositions),
            running=sum(metric_sum(t, "vllm:num_requests_running") for t in expositions),
            ttft_buckets=buckets,
            ttft_sum_s=sum(metric_sum(t, f"{_WORKER_TTFT}_sum") for t in expositions),
            ttft_count=sum(metric_sum(t, f"{_WORKER_TTFT}_count") for t in expositions),
        )


_WORKER_TTFT = "vllm:time_to_first_token_seconds"


def histogram_quantile(
    q: float, after: Mapping[float, float], before: Mapping[float, float]
) -> float | None:
    """The ``q`` quantile of the observations between two scrapes of a cumulative histogram,
    interpolated within its bucket as Prometheus's ``histogram_quantile`` does; None without
    observations. Beyond the highest finite bound, that bound."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    rank = q * counts[-1]
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower
            width = count - below
            return lower + (bound - lower) * ((rank - below) / width if width else 1.0)
        lower, below = bound, count
    return lower
