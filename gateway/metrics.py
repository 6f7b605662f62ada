"""Every Prometheus metric the gateway exports, defined once, nowhere else.

Names follow DESIGN.md (``gateway_*``, counters end in ``_total``, units in the name); labels
are bounded (route, model = the public alias, deployment, provider, status): never keys or
prompts. Buckets cover LLM latencies, from a 5 ms answer to a 60 s long generation (cache
lookups: from 0.1 ms).
Imports: prometheus_client only.
With several worker processes (``serve --workers N``) prometheus-client's multiprocess mode
is switched on by the CLI before any worker imports this module (see ``metrics_registry``).
"""

from __future__ import annotations

import os
from typing import Any, TypeVar, cast

from prometheus_client import Counter, Gauge, Histogram

LLM_SECONDS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    7.5,
    10.0,
    15.0,
    20.0,
    30.0,
    45.0,
    60.0,
    120.0,
)

REQUESTS = Counter(
    "gateway_requests",
    "Requests answered, by route, public model (alias), serving deployment and HTTP status.",
    ["route", "model", "deployment", "status"],
)
REQUEST_DURATION = Histogram(
    "gateway_request_duration_seconds",
    "Time from request received to the last byte of the response.",
    ["route", "model"],
    buckets=LLM_SECONDS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "gateway_time_to_first_token_seconds",
    "Streaming requests: time from request received to the first event sent to the client.",
    ["model", "deployment"],
    buckets=LLM_SECONDS,
)
UPSTREAM_DURATION = Histogram(
    "gateway_upstream_duration_seconds",
    "Time spent in one upstream call (a fallback makes several), by outcome.",
    ["deployment", "provider", "outcome"],
    buckets=LLM_SECONDS,
)
UPSTREAM_INFLIGHT = Gauge(
    "gateway_upstream_inflight",
    "Upstream calls in progress per deployment.",
    ["deployment"],
    multiprocess_mode="livesum",
)
UPSTREAM_ERRORS = Counter(
    "gateway_upstream_errors",
    "Upstream calls that failed, by kind (connect, timeout, status, rate_limited, ...).",
    ["deployment", "kind"],
)
TOKENS = Counter(
    "gateway_tokens",
    "Tokens processed as reported by the upstream's usage, by direction.",
    ["model", "deployment", "provider", "direction"],
)
ROUTE_DECISIONS = Counter(
    "gateway_route_decisions",
    "Routing decisions by policy, primary deployment and reason (a bounded vocabulary).",
    ["policy", "deployment", "reason"],
)
SPECIALIST_ROUTES = Counter(
    "gateway_specialist_routes",
    "Requests to aliases with specialists, by the topic whose deployments decided them "
    "(code, math, general; a specialist with none available counts as general).",
    ["model", "topic"],
)
CIRCUIT_OPEN = Gauge(
    "gateway_deployment_circuit_open",
    "1 while a deployment's circuit breaker keeps it out of plans (open or probing), else 0.",
    ["deployment"],
    multiprocess_mode="max",
)
DEPLOYMENT_TTFT = Gauge(
    "gateway_deployment_ttft_seconds",
    "The gateway's smoothed (EWMA) time to first token per deployment, from streamed answers: "
    "what routing expects of it.",
    ["deployment"],
    multiprocess_mode="mostrecent",
)
ALIAS_HEALTHY_DEPLOYMENTS = Gauge(
    "gateway_alias_healthy_deployments",
    "Deployments of a public model (alias) whose circuit is closed: 0 = every one is failing.",
    ["model"],
    multiprocess_mode="livemin",
)
WORKER_SCRAPE_FAILURES = Counter(
    "gateway_worker_scrape_failures",
    "Failed scrapes of a local worker's /metrics (its load is then unknown until it answers).",
    ["deployment"],
)
DISCOVERY_MEMBERS = Gauge(
    "gateway_discovery_members",
    "Members of a discovery group (pods its DNS name resolved to at the last good answer).",
    ["group"],
    multiprocess_mode="mostrecent",
)
DISCOVERY_ERRORS = Counter(
    "gateway_discovery_errors",
    "Failed DNS resolutions of a discovery group (timeout, SERVFAIL, ...): members were kept.",
    ["group"],
)
DISCOVERY_CHANGES = Counter(
    "gateway_discovery_changes",
    "Members that joined (added) or retired from (removed) a discovery group.",
    ["group", "change"],
)
PRIVACY_DECISIONS = Counter(
    "gateway_privacy_decisions",
    "Requests pinned, upgraded, queued or refused for their data class, or whose data-class "
    "header was rejected, by reason.",
    ["reason"],
)
PRIVACY_UPGRADES = Counter(
    "gateway_privacy_upgrades",
    "Requests the content detector upgraded to private, by detector (never what matched).",
    ["detector"],
)
DEPLOYMENT_STATE = Gauge(
    "gateway_deployment_state",
    "A deployment's operator state in this replica: 1 for the one it is in (active, draining, "
    "disabled), 0 for the others.",
    ["deployment", "state"],
    multiprocess_mode="mostrecent",
)
CONTROL_CHANGES = Counter(
    "gateway_control_changes",
    "Operator actions on deployments taken by this replica's admin API (disable, enable, drain).",
    ["action"],
)
CONTROL_STORE_ERRORS = Counter(
    "gateway_control_store_errors",
    "Failed reads or watches of the deployment states in Redis (the last known states stayed).",
)
CONFIG_RELOADS = Counter(
    "gateway_config_reloads",
    "Config file reloads by result: applied, or rejected (invalid, or a change that needs a "
    "restart; the old config kept serving).",
    ["result"],
)
CONFIG_LAST_RELOAD_SUCCESSFUL = Gauge(
    "gateway_config_last_reload_successful",
    "1 when the config file's latest content serves (start or the last reload applied it), 0 "
    "when its last reload was rejected and an older config serves.",
    multiprocess_mode="min",
)
CONFIG_LAST_RELOAD_SUCCESS = Gauge(
    "gateway_config_last_reload_success_timestamp_seconds",
    "When the config in force was loaded (start or the last applied reload), Unix time.",
    multiprocess_mode="max",
)
CLIENT_DISCONNECTS = Counter(
    "gateway_client_disconnects",
    "Requests whose client went away before the answer was complete (upstream aborted).",
    ["route"],
)

_M = TypeVar("_M", Counter, Gauge, Histogram)
_CHILDREN: dict[tuple[int, tuple[str, ...]], Any] = {}


def child(metric: _M, *labels: str) -> _M:
    """``metric.labels(*labels)``, remembered: label sets are bounded, and ``labels()``
    (validation, a lock) costs microseconds on every request of the hot path."""
    key = (id(metric), labels)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*labels)
    return cast(_M, found)


SPEND = Counter(
    "gateway_spend_usd",
    "Billed spend in USD (paid deployments; local workers and cache hits bill nothing).",
    ["model", "deployment", "provider", "team"],
)
SAVINGS = Counter(
    "gateway_savings_usd",
    "USD not spent against the reference paid model: tokens served locally or from cache.",
    ["source", "model", "team"],
)
SHADOW_COST = Counter(
    "gateway_shadow_cost_usd",
    "Local workers: GPU cost of the tokens they served at measured throughput (not billed).",
    ["deployment"],
)
BUDGET_REMAINING = Gauge(
    "gateway_budget_remaining_usd",
    "A team's tightest budget left (day, month or total) after its latest admission.",
    ["team"],
    multiprocess_mode="mostrecent",
)
BUDGET_USED_RATIO = Gauge(
    "gateway_budget_used_ratio",
    "The most used of a team's budgets (day, month or total) as a fraction, at its latest "
    "admission (1 = spent; a request that does not fit is refused).",
    ["team"],
    multiprocess_mode="mostrecent",
)
ACCOUNTING_REFUSALS = Counter(
    "gateway_accounting_refusals",
    "Requests refused by accounting: budget, requests (RPM), tokens (TPM), parallel, auth.",
    ["team", "reason"],
)
STORE_ERRORS = Counter(
    "gateway_accounting_store_errors",
    "Accounting store operations that failed (Redis down, slow or refusing), by operation.",
    ["operation"],
)
LEDGER_BACKLOG = Gauge(
    "gateway_ledger_backlog",
    "Finished requests waiting to be settled in the accounting store (grows while it is down).",
    multiprocess_mode="livesum",
)
LEDGER_DROPPED = Counter(
    "gateway_ledger_dropped",
    "Spend records dropped because the backlog was full during a long store outage.",
)
LEDGER_DUPLICATES = Counter(
    "gateway_ledger_duplicates",
    "Settlements the store had already applied (a retry after an ambiguous failure).",
)
CACHE_SECONDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0, 10.0, 60.0)
CACHE_REQUESTS = Counter(
    "gateway_cache_requests",
    "Response cache lookups by public model and result: hit, miss, bypass (the request's mode "
    "or headers exclude it, or Redis is unavailable) or refresh (Cache-Control: no-cache).",
    ["model", "result"],
)
CACHE_LOOKUP_SECONDS = Histogram(
    "gateway_cache_lookup_seconds",
    "Time to a cache answer (a hit waiting on an identical request's upstream call included).",
    ["result"],
    buckets=CACHE_SECONDS,
)
CACHE_WRITES = Counter(
    "gateway_cache_writes",
    "Answers offered to the cache, by outcome: stored, too_large, failed.",
    ["outcome"],
)
CACHE_ERRORS = Counter(
    "gateway_cache_errors",
    "Cache operations on Redis that failed or timed out (the request bypassed the cache).",
    ["operation"],
)
CACHE_CORRUPT = Counter(
    "gateway_cache_corrupt_entries",
    "Stored cache values that did not decode; each was deleted and the request went upstream.",
)


PER_DEPLOYMENT: tuple[Counter | Gauge | Histogram, ...] = (
    REQUESTS,
    TIME_TO_FIRST_TOKEN,
    UPSTREAM_DURATION,
    UPSTREAM_INFLIGHT,
    UPSTREAM_ERRORS,
    TOKENS,
    ROUTE_DECISIONS,
    CIRCUIT_OPEN,
    DEPLOYMENT_TTFT,
    DEPLOYMENT_STATE,
    WORKER_SCRAPE_FAILURES,
    SPEND,
    SHADOW_COST,
)
"""Every metric with a ``deployment`` label (``forget`` removes a deployment's series)."""


def forget(deployment: str) -> None:
    """Remove every series of ``deployment`` (a discovered member that left), so pods coming
    and going do not grow the exposition forever. prometheus-client cannot remove series in
    multiprocess mode (``serve --workers N``): there they stay until the process restarts."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    for metric in PER_DEPLOYMENT:
        metric.remove_by_labels({"deployment": deployment})
    ids = {id(metric) for metric in PER_DEPLOYMENT}
    # Any label equal to the name: a member's name (with its @) is no other label's value.
    for key in [key for key in _CHILDREN if key[0] in ids and deployment in key[1]]:
        del _CHILDREN[key]


def forget_model(model: str) -> None:
    """Remove the series of a public model (alias) a config reload dropped (not possible in
    multiprocess mode, as for ``forget``)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    ALIAS_HEALTHY_DEPLOYMENTS.remove_by_labels({"model": model})
    _CHILDREN.pop((id(ALIAS_HEALTHY_DEPLOYMENTS), (model,)), None)
