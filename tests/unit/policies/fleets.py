"""Candidates and requests for the policy tests: a local Qwen worker, a paid API, a request."""

from __future__ import annotations

from policies.model import Candidate, CircuitState, RequestFeatures

GPT_4O_MINI_IN, GPT_4O_MINI_OUT = 0.15e-6, 0.60e-6
"""USD per token (shared/data/prices.md), so test costs look like real ones."""


def local(
    name: str = "qwen-7b-a",
    ttft: float = 0.2,
    *,
    inflight: int = 0,
    running: int | None = None,
    waiting: int | None = None,
    max_concurrency: int | None = 64,
    circuit: CircuitState = "closed",
    context_window: int | None = 32_768,
    weight: float = 1.0,
) -> Candidate:
    """A local vLLM worker (billed price 0)."""
    return Candidate(
        name,
        local=True,
        context_window=context_window,
        circuit=circuit,
        inflight=inflight,
        max_concurrency=max_concurrency,
        running=running,
        waiting=waiting,
        predicted_ttft_s=ttft,
        tpot_s=0.01,
        shadow_usd_per_output_token=4e-8,
        weight=weight,
    )


def paid(
    name: str = "openai-gpt-4o-mini",
    ttft: float = 0.5,
    *,
    price: float = 1.0,
    circuit: CircuitState = "closed",
    context_window: int | None = 128_000,
    weight: float = 1.0,
) -> Candidate:
    """A paid API at ``price`` times GPT-4o-mini's prices."""
    return Candidate(
        name,
        local=False,
        input_usd_per_token=GPT_4O_MINI_IN * price,
        output_usd_per_token=GPT_4O_MINI_OUT * price,
        context_window=context_window,
        circuit=circuit,
        predicted_ttft_s=ttft,
        tpot_s=0.012,
        weight=weight,
    )


def request(
    prompt: int = 1000,
    output: int = 200,
    *,
    slo_ttft_s: float | None = 1.0,
    slo_total_s: float | None = None,
    stream: bool = False,
    max_cost_usd: float | None = None,
    budget_left_usd: float | None = None,
    budget_total_usd: float | None = None,
    draw: float = 0.5,
    explain: bool = True,
) -> RequestFeatures:
    """A chat request to the ``chat`` alias (scores on, so tests can read them)."""
    return RequestFeatures(
        "chat",
        prompt,
        output,
        stream=stream,
        slo_ttft_s=slo_ttft_s,
        slo_total_s=slo_total_s,
        max_cost_usd=max_cost_usd,
        budget_left_usd=budget_left_usd,
        budget_total_usd=budget_total_usd,
        draw=draw,
        explain=explain,
    )
