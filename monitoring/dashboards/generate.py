"""Generates the Grafana dashboards (overview, fleet, budgets) as JSON files beside this module.

``python -m monitoring.dashboards.generate`` writes them; ``--check`` exits 1, naming the file,
when a committed file differs from what it would write. The JSON is generated: edit this module,
then run it. One function per dashboard, one line per panel (ruff may wrap it).

Queries use raw metrics, so that the template variables filter them (``FILTERS`` says which
variables apply to which metric; ``sel`` adds their matchers), with ``$__rate_interval`` windows,
plus ``[1h]`` and ``[1d]`` where a panel's title says so. Counters of rare events (errors,
failures) have no series until the first one, so their queries fall back to 0
(``or on() vector(0)``): an empty panel would look like broken monitoring.
Imports: the standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GENERATED = "by monitoring/dashboards/generate.py; edit that, then run it"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24

RATE = "$__rate_interval"
MODEL = 'model=~"$model"'
DEPLOYMENT = 'deployment=~"$deployment"'
TEAM = 'team=~"$team"'

# Grafana unit ids beyond the short ones ("reqps", "ops", "s", "short", "none").
USD = "currencyUSD"
RATIO = "percentunit"  # 0..1 shown as %
TOKENS_PS = "count:tok/s"  # a custom unit: 1.2K tok/s

# The template variables that can filter each metric (those of its labels that are model,
# deployment or team). vLLM's series carry the gateway's deployment name (the scrape config adds
# it); their model_name is the served model, not the gateway's public model, so $model does not
# apply to them.
FILTERS: dict[str, tuple[str, ...]] = {
    "gateway_requests_total": (MODEL, DEPLOYMENT),
    "gateway_request_duration_seconds": (MODEL,),
    "gateway_time_to_first_token_seconds": (MODEL, DEPLOYMENT),
    "gateway_upstream_duration_seconds": (DEPLOYMENT,),
    "gateway_upstream_inflight": (DEPLOYMENT,),
    "gateway_upstream_errors_total": (DEPLOYMENT,),
    "gateway_tokens_total": (MODEL, DEPLOYMENT),
    "gateway_route_decisions_total": (DEPLOYMENT,),
    "gateway_deployment_circuit_open": (DEPLOYMENT,),
    "gateway_deployment_ttft_seconds": (DEPLOYMENT,),
    "gateway_alias_healthy_deployments": (MODEL,),
    "gateway_worker_scrape_failures_total": (DEPLOYMENT,),
    "gateway_spend_usd_total": (MODEL, DEPLOYMENT, TEAM),
    "gateway_savings_usd_total": (MODEL, TEAM),
    "gateway_shadow_cost_usd_total": (DEPLOYMENT,),
    "gateway_budget_remaining_usd": (TEAM,),
    "gateway_budget_used_ratio": (TEAM,),
    "gateway_accounting_refusals_total": (TEAM,),
    "gateway_cache_requests_total": (MODEL,),
    "vllm:num_requests_running": (DEPLOYMENT,),
    "vllm:num_requests_waiting": (DEPLOYMENT,),
    "vllm:kv_cache_usage_perc": (DEPLOYMENT,),
    "vllm:prompt_tokens_total": (DEPLOYMENT,),
    "vllm:generation_tokens_total": (DEPLOYMENT,),
    "vllm:request_success_total": (DEPLOYMENT,),
    "vllm:time_to_first_token_seconds": (DEPLOYMENT,),
    "vllm:time_per_output_token_seconds": (DEPLOYMENT,),
    "vllm:e2e_request_latency_seconds": (DEPLOYMENT,),
    "up": (DEPLOYMENT,),
}

Panel = dict[str, Any]


# -- PromQL ------------------------------------------------------------------------------------


def sel(metric: str, *matchers: str) -> str:
    """A vector selector with the template variables that apply to ``metric``, then
    ``matchers``: ``gateway_tokens_total{model=~"$model", deployment=~"$deployment", ...}``."""
    every = [*FILTERS.get(metric.removesuffix("_bucket"), ()), *matchers]
    return f"{metric}{{{', '.join(every)}}}" if every else metric


def agg(op: str, inner: str, by: str = "") -> str:
    """``op by (labels) (inner)``, or ``op(inner)`` without labels."""
    return f"{op} by ({by}) ({inner})" if by else f"{op}({inner})"


def current(op: str, metric: str, *matchers: str, by: str = "") -> str:
    """A gauge's value now, aggregated with ``op`` (sum, max, min) by ``by``."""
    return agg(op, sel(metric, *matchers), by)


def rate_sum(metric: str, *matchers: str, by: str = "", window: str = RATE) -> str:
    """A counter's per-second rate, summed by ``by``."""
    return agg("sum", f"rate({sel(metric, *matchers)}[{window}])", by)


def increase_sum(metric: str, *matchers: str, by: str = "", window: str = "1h") -> str:
    """A counter's increase over ``window``, summed by ``by``."""
    return agg("sum", f"increase({sel(metric, *matchers)}[{window}])", by)


def quantile(q: float, histogram: str, *matchers: str, by: str = "") -> str:
    """The ``q`` quantile of a histogram over the rate interval, per ``by``."""
    groups = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, {rate_sum(histogram + '_bucket', *matchers, by=groups)})"


def ratio(part: str, whole: str) -> str:
    """``part / whole``, and 0 (not nothing) where ``part`` has no series yet (no errors)."""
    return f"({part} or {whole} * 0) / {whole}"


def or_zero(expr: str) -> str:
    """``expr``, or a single 0 while it has no series (a counter of events not seen yet)."""
    return f"{expr} or on() vector(0)"


def per_hour(expr: str) -> str:
    """A per-second rate as a per-hour one."""
    return f"{expr} * 3600"


# -- panels ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """One query of a panel and its legend (``{{label}}`` templates); without a legend, the
    labels of the query's first ``by (...)`` make it, or else the panel's title."""

    expr: str
    legend: str = ""


Query = str | Target
Steps = Sequence[tuple[float | None, str]]


def _legend(target: Target, title: str) -> str:
    if target.legend:
        return target.legend
    found = re.search(r"\bby \(([^)]*)\)", target.expr)
    labels = [] if found is None else [x.strip() for x in found.group(1).split(",")]
    return " ".join(f"{{{{{label}}}}}" for label in labels if label != "le") or title


def _thresholds(steps: Steps) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def _panel(
    kind: str,
    title: str,
    unit: str,
    queries: Sequence[Query],
    w: int,
    h: int,
    defaults: dict[str, Any],
    options: dict[str, Any],
) -> Panel:
    targets = [q if isinstance(q, Target) else Target(q) for q in queries]
    return {
        "id": 0,  # layout() numbers the panels and places them
        "type": kind,
        "title": title,
        "description": NOTES.get(title, ""),
        "datasource": DATASOURCE,
        "gridPos": {"h": h, "w": w, "x": 0, "y": 0},
        "fieldConfig": {"defaults": {"unit": unit, **defaults}, "overrides": []},
        "options": options,
        "targets": [
            {
                "refId": chr(ord("A") + n),
                "datasource": DATASOURCE,
                "editorMode": "code",
                "expr": target.expr,
                "legendFormat": _legend(target, title),
                "range": kind == "timeseries",
                "instant": kind != "timeseries",
            }
            for n, target in enumerate(targets)
        ],
    }


def timeseries(
    title: str,
    unit: str,
    *queries: Query,
    stack: bool = False,
    w: int = 12,
    h: int = 8,
    thresholds: Steps = (),
) -> Panel:
    """A graph over time; ``stack`` for the parts of a whole (spend by team, lookups by result),
    ``thresholds`` drawn as dashed lines."""
    custom: dict[str, Any] = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }
    defaults: dict[str, Any] = {"color": {"mode": "palette-classic"}, "custom": custom}
    if thresholds:
        custom["thresholdsStyle"] = {"mode": "dashed"}
        defaults["thresholds"] = _thresholds(thresholds)
    options = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return _panel("timeseries", title, unit, queries, w, h, defaults, options)


def stat(
    title: str,
    unit: str,
    *queries: Query,
    w: int = 4,
    h: int = 4,
    thresholds: Steps = ((None, "green"),),
    mappings: dict[str, tuple[str, str]] | None = None,
) -> Panel:
    """The latest value of each series; ``mappings`` names values (``{"1": ("open", "red")}``)."""
    defaults: dict[str, Any] = {
        "color": {"mode": "thresholds"},
        "thresholds": _thresholds(thresholds),
    }
    if mappings:
        named = {value: {"text": text, "color": color} for value, (text, color) in mappings.items()}
        defaults["mappings"] = [{"type": "value", "options": named}]
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background" if mappings else "value",
        "graphMode": "none" if mappings else "area",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "auto",
    }
    return _panel("stat", title, unit, queries, w, h, defaults, options)


def gauge(
    title: str,
    unit: str,
    *queries: Query,
    low: float,
    high: float,
    thresholds: Steps,
    w: int = 12,
    h: int = 8,
) -> Panel:
    """A dial per series from ``low`` to ``high``, coloured by ``thresholds``."""
    defaults = {
        "color": {"mode": "thresholds"},
        "min": low,
        "max": high,
        "thresholds": _thresholds(thresholds),
    }
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "auto",
        "showThresholdLabels": False,
        "showThresholdMarkers": True,
    }
    return _panel("gauge", title, unit, queries, w, h, defaults, options)


def row(title: str) -> Panel:
    """A full-width heading; the panels after it, up to the next row, belong to it."""
    return {
        "id": 0,
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": 0},
        "panels": [],
    }


def layout(panels: Sequence[Panel]) -> list[Panel]:
    """Numbers the panels and places them left to right, wrapping at the grid's width; a row
    always starts a new line of its own."""
    placed: list[Panel] = []
    x = y = line_height = 0
    for n, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if panel["type"] == "row" or x + w > GRID_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        placed.append(dict(panel, id=n, gridPos={"h": h, "w": w, "x": x, "y": y}))
        x, line_height = x + w, max(line_height, h)
        if panel["type"] == "row":
            x = GRID_WIDTH  # nothing beside a row
    return placed


# -- dashboards --------------------------------------------------------------------------------


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,  # on time range change
        "regex": "",
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
    }


TEMPLATING = {
    "list": [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "regex": "",
            "refresh": 1,
            "hide": 0,
            "options": [],
        },
        _variable("model", "Model", "label_values(gateway_requests_total, model)"),
        _variable("deployment", "Deployment", "label_values(gateway_requests_total, deployment)"),
        _variable("team", "Team", "label_values(gateway_spend_usd_total, team)"),
    ]
}


def dashboard(uid: str, title: str, purpose: str, panels: Sequence[Panel]) -> dict[str, Any]:
    """A whole dashboard: the shared variables, time range and links around ``panels``."""
    return {
        "__generated__": GENERATED,
        "uid": uid,
        "title": title,
        "description": f"{purpose} Generated {GENERATED}.",
        "tags": ["token-gateway"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,  # shared crosshair
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "fiscalYearStartMonth": 0,
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "type": "dashboards",
                "title": "token-gateway",
                "tags": ["token-gateway"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": TEMPLATING,
        "panels": layout(panels),
    }


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
    """Traffic, errors, latency, tokens, money, cache and routing at a glance."""
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
    ]
    return dashboard(
        "tg-overview",
        "token-gateway / Overview",
        "Requests, errors, latency, tokens, spend and savings, cache and routing.",
        panels,
    )


def fleet() -> dict[str, Any]:
    """The local Qwen workers as vLLM reports them, beside the gateway's view of every
    deployment."""
    d = "deployment"
    up = {"0": ("down", "red"), "1": ("up", "green")}
    closed = {"0": ("closed", "green"), "1": ("open", "red")}
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
    ]
    return dashboard(
        "tg-fleet",
        "token-gateway / Fleet",
        "Local vLLM workers (job qwen-workers) and the gateway's view of every deployment.",
        panels,
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
    )


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard: file name -> Grafana JSON model."""
    return {"overview.json": overview(), "fleet.json": fleet(), "budgets.json": budgets()}


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, PromQL expr) for every target of every panel."""
    return [
        (board["uid"], panel["title"], target["expr"])
        for board in dashboards().values()
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def render(board: dict[str, Any]) -> str:
    """The file text of a dashboard (stable: key order as built, two-space indent)."""
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Writes the dashboards, or with ``--check`` reports the files that differ (exit 1)."""
    parser = argparse.ArgumentParser(prog="python -m monitoring.dashboards.generate")
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--dir", type=Path, default=HERE, help="where the JSON files live")
    args = parser.parse_args(argv)
    folder: Path = args.dir
    drifted = 0
    for name, board in dashboards().items():
        path, text = folder / name, render(board)
        if not args.check:
            path.write_text(text, encoding="utf-8")
            continue
        if not path.is_file():
            problem = "is missing"
        elif path.read_text(encoding="utf-8") != text:
            problem = "differs from what generate.py writes (edited by hand, or not regenerated)"
        else:
            continue
        drifted += 1
        print(f"{path} {problem}: run {parser.prog}", file=sys.stderr)
    return 1 if drifted else 0


if __name__ == "__main__":
    sys.exit(main())
