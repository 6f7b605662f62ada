"""PromQL for the dashboards: selectors that carry the template variables, and the few shapes
every panel uses (a rate summed by labels, a quantile, a ratio, a zero when nothing was counted).

Queries use raw metrics, so that the template variables filter them (``FILTERS`` says which
variables apply to which metric; ``sel`` adds their matchers), with ``$__rate_interval`` windows,
plus ``[1h]`` and ``[1d]`` where a panel's title says so. Counters of rare events (errors,
failures) have no series until the first one, so their queries fall back to 0
(``or on() vector(0)``): an empty panel would look like broken monitoring.
Imports: the standard library only.
"""

from __future__ import annotations

RATE = "$__rate_interval"
MODEL = 'model=~"$model"'
DEPLOYMENT = 'deployment=~"$deployment"'
TEAM = 'team=~"$team"'

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
    "gateway_deployment_state": (DEPLOYMENT,),
    "gateway_specialist_routes_total": (MODEL,),
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


# -- shapes ------------------------------------------------------------------------------------


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
