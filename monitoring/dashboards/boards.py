"""The three dashboards: Overview (traffic, latency, tokens, dollars, cache, data classes,
specialists), Fleet (each local Qwen worker's own metrics next to the gateway's view of it;
operator states, config reloads, discovery) and Budgets (teams' budgets, spend,
refusals; the accounting store, ledger and cache). One function per dashboard, one call per
panel. Imports: the standard library and the sibling modules.
"""

from __future__ import annotations

from typing import Any

from monitoring.dashboards.panels import (
    RATIO,
    TOKENS_PS,
    USD,
    Target,
    dashboard,
    gauge,
    row,
    stat,
    timeseries,
)
from monitoring.dashboards.promql import (
    current,
    increase_sum,
    or_zero,
    per_hour,
    quantile,
    rate_sum,
    ratio,
)


def percentiles(histogram: str, *matchers: str) -> list[Target]:
    """p50, p95 and p99 of a histogram, one target each."""
    return [Target(quantile(q, histogram, *matchers), f"p{q * 100:g}") for q in (0.5, 0.95, 0.99)]


# Panel descriptions (the (i) beside a title), by title.
NOTES = {
    "5xx share": "Answers with a 5xx status: the gateway, or every upstream it tried, failed.",
    "Tokens served locally": "Tokens (in and out) served by owned workers, of all tokens.",
    "Cache hit ratio": "Hits over hits and misses (bypassed and refreshed lookups left out).",
    "Error ratio by model": "5xx: the gateway or every upstream failed. 4xx: bad requests, "
    "auth, and budget and rate-limit refusals.",
    "Client disconnects/s by route": "Clients gone before their answer was complete (the "
    "upstream call was aborted).",
    "Request duration": "Request received to last byte sent, all routes.",
    "Time to first token (streaming)": "Request received to the first event sent to the "
    "client; streaming requests only.",
    "Tokens/s by provider": "local = owned Qwen workers, cache = response cache hits, the rest "
    "are paid APIs.",
    "Share of tokens served locally": "Tokens served by owned workers over all tokens (cache "
    "hits count in the whole).",
    "Spend $/hour by deployment": "Billed spend: paid deployments only (local workers and "
    "cache hits bill nothing).",
    "Savings $/hour by source": "What the reference paid model would have billed for the "
    "tokens served locally or from the cache.",
    "Cache hit ratio by model": "Hits over hits and misses (bypassed and refreshed lookups "
    "left out).",
    "Cache lookup p95 by result": "A hit that waited on an identical request's upstream call "
    "counts the wait.",
    "Worker up": "Prometheus' scrape of each local worker (job qwen-workers).",
    "Gateway scrapes of workers failing/s": "The gateway's own scrapes of worker /metrics, for "
    "routing: while they fail, it routes blind to that worker's load.",
    "vLLM time to first token p95": "vLLM's own histogram.",
    "vLLM time per output token p95": "vLLM's own histogram.",
    "vLLM end-to-end latency p95": "vLLM's own histogram.",
    "Circuit open": "Open: the circuit breaker keeps the deployment out of plans (open or "
    "probing).",
    "Healthy deployments per model": "Deployments of a public model whose circuit is closed; "
    "0 = every one is failing.",
    "Expected time to first token (EWMA)": "The gateway's smoothed TTFT per deployment, from "
    "streamed answers: what routing expects of it.",
    "Upstream call p95 by deployment": "One upstream call (a fallback makes several), any outcome.",
    "Route decisions/s by deployment": "The primary deployment of each plan.",
    "Shadow cost $/hour by deployment": "GPU cost of the tokens local workers served, at "
    "measured throughput (not billed).",
    "Data-class decisions/s by reason": "pinned = a class stricter than public kept the request "
    "on the deployments allowed it; upgraded = the content detector made it private; queued = "
    "it waited for an allowed deployment; refused = 503 no_allowed_deployment; "
    "header_rejected = 400 for its x-gateway-data-class header; audit_dropped = an audit "
    "record lost to a full backlog.",
    "Detector upgrades/s by detector": "Requests the content detector made private, by the "
    "detector that matched (never what matched).",
    "Specialist routes/s by topic": "Requests to aliases with specialists, by the topic whose "
    "deployments decided them (a specialist with none available counts as general).",
    "Operator state": "The state an operator set through the admin API, as the replicas apply "
    "it: draining = no new calls, then disabled once its calls end; disabled = no calls.",
    "Config in force since": "When each replica loaded the config it serves (start or the last "
    "applied reload).",
    "Config reloads in the last hour by result": "rejected = the file was invalid or needs a "
    "restart: the old config keeps serving.",
    "Discovered pods per group": "Members of each discovery group at its last good DNS answer "
    "(the most any replica has).",
    "Discovery errors and changes/s by group": "errors = failed DNS resolutions (members kept); "
    "added, removed = pods that joined or left.",
    "Control actions and store errors/s": "Admin disable, enable and drain taken by the "
    "replicas; store errors = failed reads of the states in Redis (the last ones stay).",
    "Budget used": "The most used of each team's budgets (day, month or total) at its latest "
    "admission; at 100% its requests are refused.",
    "Budget remaining": "Each team's tightest budget left (day, month or total) after its "
    "latest admission.",
    "Spend, last 24 h": "Billed spend over the rolling last 24 hours (not since midnight).",
    "Projected 24 h spend": "The last hour's burn rate, held for 24 hours.",
    "Savings, last 24 h": "What the reference paid model would have billed for the tokens "
    "served locally or from the cache, rolling 24 hours.",
    "Refusals/s by team and reason": "budget = budget spent; requests, tokens, parallel = rate "
    "limits (RPM, TPM, concurrency); auth = unknown or disabled key.",
    "Accounting store errors/s": "Store operations that failed (Redis down, slow or refusing).",
    "Ledger backlog": "Finished requests waiting to be settled in the store; grows while it is "
    "down.",
    "Ledger drops and duplicates/s": "dropped: spend records lost to a full backlog (spend "
    "never billed); duplicate: settlements already applied (harmless retries).",
    "Cache errors/s by operation": "Redis operations that failed or timed out; the request "
    "bypassed the cache.",
}

ERROR_STEPS = ((None, "green"), (0.01, "orange"), (0.05, "red"))
BUDGET_STEPS = ((None, "green"), (0.8, "orange"), (1.0, "red"))


def overview() -> dict[str, Any]:
    """Traffic, errors, latency, tokens, money, cache, routing, data classes and specialists
    at a glance."""
    req, tok, spend = "gateway_requests_total", "gateway_tokens_total", "gateway_spend_usd_total"
    savings, cache = "gateway_savings_usd_total", "gateway_cache_requests_total"
    dur, ttft = "gateway_request_duration_seconds", "gateway_time_to_first_token_seconds"
    s5, s4, local = 'status=~"5.."', 'status=~"4.."', 'provider="local"'
    hit, hit_miss = 'result="hit"', 'result=~"hit|miss"'
    panels = [
        stat("Requests/s", "reqps", rate_sum(req)),
        stat("5xx share", RATIO, ratio(rate_sum(req, s5), rate_sum(req)), thresholds=ERROR_STEPS),
        stat("Tokens served locally", RATIO, ratio(rate_sum(tok, local), rate_sum(tok))),
        stat("Cache hit ratio", RATIO, ratio(rate_sum(cache, hit), rate_sum(cache, hit_miss))),
        stat("Spend $/hour", USD, per_hour(rate_sum(spend))),
        stat("Savings $/hour", USD, per_hour(rate_sum(savings))),
        row("Traffic"),
        timeseries("Requests/s by model", "reqps", rate_sum(req, by="model")),
        timeseries("Requests/s by status", "reqps", rate_sum(req, by="status"), stack=True),
        timeseries(
            "Error ratio by model",
            RATIO,
            Target(
                ratio(rate_sum(req, s5, by="model"), rate_sum(req, by="model")), "5xx {{model}}"
            ),
            Target(
                ratio(rate_sum(req, s4, by="model"), rate_sum(req, by="model")), "4xx {{model}}"
            ),
        ),
        timeseries(
            "Client disconnects/s by route",
            "reqps",
            or_zero(rate_sum("gateway_client_disconnects_total", by="route")),
        ),
        row("Latency"),
        timeseries("Request duration", "s", *percentiles(dur)),
        timeseries("Time to first token (streaming)", "s", *percentiles(ttft)),
        timeseries("Request duration p95 by model", "s", quantile(0.95, dur, by="model")),
        timeseries(
            "Time to first token p95 by deployment", "s", quantile(0.95, ttft, by="deployment")
        ),
        row("Tokens"),
        timeseries("Tokens/s in and out", TOKENS_PS, rate_sum(tok, by="direction")),
        timeseries("Tokens/s by provider", TOKENS_PS, rate_sum(tok, by="provider"), stack=True),
        timeseries(
            "Share of tokens served locally",
            RATIO,
            Target(ratio(rate_sum(tok, local), rate_sum(tok)), "all models"),
            ratio(rate_sum(tok, local, by="model"), rate_sum(tok, by="model")),
        ),
        row("Spend and savings"),
        timeseries("Spend $/hour by team", USD, per_hour(rate_sum(spend, by="team")), stack=True),
        timeseries("Spend $/hour by model", USD, per_hour(rate_sum(spend, by="model")), stack=True),
        timeseries(
            "Spend $/hour by deployment",
            USD,
            per_hour(rate_sum(spend, by="deployment")),
            stack=True,
        ),
        timeseries(
            "Savings $/hour by source", USD, per_hour(rate_sum(savings, by="source")), stack=True
        ),
        row("Cache and routing"),
        timeseries(
            "Cache hit ratio by model",
            RATIO,
            ratio(rate_sum(cache, hit, by="model"), rate_sum(cache, hit_miss, by="model")),
        ),
        timeseries("Cache lookups/s by result", "reqps", rate_sum(cache, by="result"), stack=True),
        timeseries(
            "Cache lookup p95 by result",
            "s",
            quantile(0.95, "gateway_cache_lookup_seconds", by="result"),
        ),
        timeseries(
            "Route decisions/s by reason",
            "reqps",
            rate_sum("gateway_route_decisions_total", by="reason"),
            stack=True,
        ),
        row("Data classes and specialists"),
        timeseries(
            "Data-class decisions/s by reason",
            "reqps",
            or_zero(rate_sum("gateway_privacy_decisions_total", by="reason")),
            w=8,
        ),
        timeseries(
            "Detector upgrades/s by detector",
            "reqps",
            or_zero(rate_sum("gateway_privacy_upgrades_total", by="detector")),
            w=8,
        ),
        timeseries(
            "Specialist routes/s by topic",
            "reqps",
            rate_sum("gateway_specialist_routes_total", by="topic"),
            w=8,
            stack=True,
        ),
    ]
    return dashboard(
        "tg-overview",
        "token-gateway / Overview",
        "Requests, errors, latency, tokens, spend and savings, cache and routing, data classes "
        "and specialists.",
        panels,
        NOTES,
    )


def fleet() -> dict[str, Any]:
    """The local Qwen workers as vLLM reports them, beside the gateway's view of every
    deployment; operator states, config reloads and discovery groups."""
    d = "deployment"
    up = {"0": ("down", "red"), "1": ("up", "green")}
    closed = {"0": ("closed", "green"), "1": ("open", "red")}
    held = {"0": ("active", "green"), "1": ("draining", "orange"), "2": ("disabled", "red")}
    loaded = "gateway_config_last_reload_success_timestamp_seconds"
    state, draining, disabled = "gateway_deployment_state", 'state="draining"', 'state="disabled"'
    panels = [
        row("Local workers (vLLM)"),
        stat(
            "Worker up", "none", current("min", "up", 'job="qwen-workers"', by=d), w=12, mappings=up
        ),
        timeseries(
            "Gateway scrapes of workers failing/s",
            "ops",
            or_zero(rate_sum("gateway_worker_scrape_failures_total", by=d)),
            h=4,
        ),
        timeseries(
            "Requests running", "short", current("sum", "vllm:num_requests_running", by=d), w=8
        ),
        timeseries(
            "Requests waiting", "short", current("sum", "vllm:num_requests_waiting", by=d), w=8
        ),
        timeseries(
            "KV cache usage",
            RATIO,
            current("max", "vllm:kv_cache_usage_perc", by=d),
            w=8,
            thresholds=((None, "green"), (0.9, "red")),
        ),
        timeseries(
            "vLLM time to first token p95",
            "s",
            quantile(0.95, "vllm:time_to_first_token_seconds", by=d),
            w=8,
        ),
        timeseries(
            "vLLM time per output token p95",
            "s",
            quantile(0.95, "vllm:time_per_output_token_seconds", by=d),
            w=8,
        ),
        timeseries(
            "vLLM end-to-end latency p95",
            "s",
            quantile(0.95, "vllm:e2e_request_latency_seconds", by=d),
            w=8,
        ),
        timeseries(
            "vLLM tokens/s",
            TOKENS_PS,
            Target(rate_sum("vllm:generation_tokens_total", by=d), "{{deployment}} generation"),
            Target(rate_sum("vllm:prompt_tokens_total", by=d), "{{deployment}} prompt"),
        ),
        timeseries(
            "vLLM requests finished/s",
            "reqps",
            rate_sum("vllm:request_success_total", by=d),
            stack=True,
        ),
        row("The gateway's view"),
        stat(
            "Circuit open",
            "none",
            current("max", "gateway_deployment_circuit_open", by=d),
            w=12,
            mappings=closed,
        ),
        stat(
            "Healthy deployments per model",
            "short",
            current("min", "gateway_alias_healthy_deployments", by="model"),
            w=12,
            thresholds=((None, "red"), (1, "green")),
        ),
        timeseries(
            "Upstream calls in flight",
            "short",
            current("sum", "gateway_upstream_inflight", by=d),
            w=8,
        ),
        timeseries(
            "Expected time to first token (EWMA)",
            "s",
            current("max", "gateway_deployment_ttft_seconds", by=d),
            w=8,
        ),
        timeseries(
            "Upstream call p95 by deployment",
            "s",
            quantile(0.95, "gateway_upstream_duration_seconds", by=d),
            w=8,
        ),
        timeseries(
            "Route decisions/s by reason",
            "reqps",
            rate_sum("gateway_route_decisions_total", by="reason"),
            stack=True,
        ),
        timeseries(
            "Route decisions/s by deployment",
            "reqps",
            rate_sum("gateway_route_decisions_total", by=d),
            stack=True,
        ),
        timeseries(
            "Upstream errors/s by deployment and kind",
            "reqps",
            or_zero(rate_sum("gateway_upstream_errors_total", by="deployment, kind")),
        ),
        timeseries(
            "Shadow cost $/hour by deployment",
            USD,
            per_hour(rate_sum("gateway_shadow_cost_usd_total", by=d)),
            stack=True,
        ),
        row("Operator control, config and discovery"),
        stat(
            "Operator state",
            "none",
            f"{current('max', state, draining, by=d)}"
            f" + 2 * {current('max', state, disabled, by=d)}",
            w=12,
            h=6,
            mappings=held,
        ),
        stat(
            "Config in force since",
            "dateTimeFromNow",
            f"{current('max', loaded, by='instance')} * 1000",
            w=6,
            h=6,
        ),
        stat(
            "Config reloads in the last hour by result",
            "short",
            or_zero(increase_sum("gateway_config_reloads_total", by="result")),
            w=6,
            h=6,
        ),
        timeseries(
            "Discovered pods per group",
            "short",
            current("max", "gateway_discovery_members", by="group"),
            w=8,
        ),
        timeseries(
            "Discovery errors and changes/s by group",
            "ops",
            Target(
                or_zero(rate_sum("gateway_discovery_errors_total", by="group")), "{{group}} errors"
            ),
            Target(
                or_zero(rate_sum("gateway_discovery_changes_total", by="group, change")),
                "{{group}} {{change}}",
            ),
            w=8,
        ),
        timeseries(
            "Control actions and store errors/s",
            "ops",
            Target(or_zero(rate_sum("gateway_control_changes_total", by="action")), "{{action}}"),
            Target(rate_sum("gateway_control_store_errors_total"), "store errors"),
            w=8,
        ),
    ]
    return dashboard(
        "tg-fleet",
        "token-gateway / Fleet",
        "Local vLLM workers (job qwen-workers) and the gateway's view of every deployment; "
        "operator states, config reloads and discovery.",
        panels,
        NOTES,
    )


def budgets() -> dict[str, Any]:
    """Team budgets, burn rate, refusals, and the health of accounting and the cache."""
    spend, refusals = "gateway_spend_usd_total", "gateway_accounting_refusals_total"
    used = current("max", "gateway_budget_used_ratio", by="team")
    panels = [
        row("Budgets"),
        gauge("Budget used", RATIO, used, low=0, high=1, thresholds=BUDGET_STEPS),
        timeseries("Budget used over time", RATIO, used, thresholds=BUDGET_STEPS),
        timeseries(
            "Budget remaining", USD, current("min", "gateway_budget_remaining_usd", by="team")
        ),
        timeseries(
            "Burn rate $/hour by team", USD, per_hour(rate_sum(spend, by="team")), stack=True
        ),
        stat("Spend, last 24 h", USD, increase_sum(spend, by="team", window="1d"), w=8, h=6),
        stat(
            "Projected 24 h spend",
            USD,
            f"{rate_sum(spend, by='team', window='1h')} * 86400",
            w=8,
            h=6,
        ),
        stat(
            "Savings, last 24 h",
            USD,
            increase_sum("gateway_savings_usd_total", by="team", window="1d"),
            w=8,
            h=6,
        ),
        row("Refusals"),
        timeseries(
            "Refusals/s by team and reason",
            "reqps",
            or_zero(rate_sum(refusals, by="team, reason")),
            stack=True,
        ),
        stat(
            "Refusals in the last hour by reason",
            "short",
            or_zero(increase_sum(refusals, by="reason")),
            w=12,
            h=8,
        ),
        row("Accounting and cache health"),
        timeseries(
            "Accounting store errors/s",
            "ops",
            or_zero(rate_sum("gateway_accounting_store_errors_total", by="operation")),
            w=8,
        ),
        timeseries("Ledger backlog", "short", current("sum", "gateway_ledger_backlog"), w=8),
        timeseries(
            "Ledger drops and duplicates/s",
            "ops",
            Target(or_zero(rate_sum("gateway_ledger_dropped_total")), "dropped"),
            Target(or_zero(rate_sum("gateway_ledger_duplicates_total")), "duplicate"),
            w=8,
        ),
        timeseries(
            "Cache errors/s by operation",
            "ops",
            or_zero(rate_sum("gateway_cache_errors_total", by="operation")),
            w=8,
        ),
        timeseries(
            "Cache corrupt entries/s",
            "ops",
            or_zero(rate_sum("gateway_cache_corrupt_entries_total")),
            w=8,
        ),
        timeseries(
            "Cache writes/s by outcome",
            "ops",
            rate_sum("gateway_cache_writes_total", by="outcome"),
            w=8,
            stack=True,
        ),
    ]
    return dashboard(
        "tg-budgets",
        "token-gateway / Budgets",
        "Team budgets, spend and refusals; the health of the accounting store, ledger and cache.",
        panels,
        NOTES,
    )
