"""``make demo``: the gateway in front of an emulated fleet, real traffic, a printed summary.

Starts two vLLM Qwen2.5-7B emulators (owned H100s), an OpenAI and an Anthropic emulator and
the gateway on free loopback ports, sends a few hundred requests with the official openai
SDK (half of the chat requests streaming, several aliases, prompt and output lengths drawn
from the Azure 2023 conversation trace; a fifth of the chat requests are evaluation-suite
questions at temperature 0, which the response cache answers after their first time), prints
one row per deployment (and one for the cache) and stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import openai

from gateway.admin_client import AdminClient
from gateway.config import load_config
from loadtests.demo_report import Outcome, render_ledger, render_reasons, render_summary
from loadtests.fleet import (
    DEMO_CONFIG,
    REPO_ROOT,
    metric_sum,
    scrape,
    start_demo_fleet,
    start_gateway,
)

CONV_TRACE = REPO_ROOT.parent / "shared" / "data" / "traces" / "azure_llm_2023_conv.csv"
# (alias, share of requests): local Qwen, the local-first "auto" alias, two paid APIs.
MIX: dict[str, float] = {
    "qwen2.5-7b-instruct": 0.45,
    "auto": 0.2,
    "gpt-4o-mini": 0.15,
    "claude-haiku-4-5": 0.1,
    "text-embedding-3-small": 0.1,
}
WORDS = "gateway routes tokens between owned workers and paid models under latency".split()
MAX_PROMPT_WORDS = 3000
MAX_OUTPUT_TOKENS = 200
EVAL_SHARE = 0.2
"""Chat requests that come from an evaluation suite: a few fixed questions at temperature 0,
asked again and again (what the response cache answers)."""
EVAL_QUESTIONS = (
    "What is the capital of Australia? Answer in one word.",
    "Convert 72 degrees Fahrenheit to Celsius and show the formula.",
    "Name the largest planet in the solar system and one of its moons.",
    "Write a Python one-liner that reverses a string s.",
    "Is 221 a prime number? Explain briefly.",
    "Summarise the plot of Hamlet in two sentences.",
    "What does HTTP status 429 mean, and what should a client do?",
    "Give the SQL to count the rows of a table named orders.",
)
EVAL_MAX_TOKENS = 64


@dataclass(frozen=True, slots=True)
class Job:
    """One request of the demo's traffic."""

    alias: str
    prompt_words: int
    max_tokens: int
    stream: bool
    question: str | None = None
    """An evaluation-suite question, asked at temperature 0 (else a prompt of
    ``prompt_words`` words)."""


def plan_traffic(requests: int, seed: int, trace: Path = CONV_TRACE) -> list[Job]:
    """Aliases by the mix; lengths from the trace (capped to keep the demo short)."""
    rng = random.Random(seed)
    with trace.open(newline="") as fh:
        rows = [(int(r["ContextTokens"]), int(r["GeneratedTokens"])) for r in csv.DictReader(fh)]
    jobs = []
    for _ in range(requests):
        prompt, output = rng.choice(rows)
        alias = rng.choices(list(MIX), list(MIX.values()))[0]
        stream = alias != "text-embedding-3-small" and rng.random() < 0.5
        if alias != "text-embedding-3-small" and rng.random() < EVAL_SHARE:
            question = rng.choice(EVAL_QUESTIONS)
            jobs.append(Job(alias, 0, EVAL_MAX_TOKENS, stream, question))
            continue
        max_tokens = max(1, min(output, MAX_OUTPUT_TOKENS))
        jobs.append(Job(alias, min(prompt, MAX_PROMPT_WORDS), max_tokens, stream))
    return jobs


async def run_job(client: openai.AsyncOpenAI, job: Job, seed: int) -> Outcome:
    """Send one request through the SDK and measure it."""
    text = job.question or " ".join(WORDS[(seed + i) % len(WORDS)] for i in range(job.prompt_words))
    temperature: float | openai.Omit = 0.0 if job.question else openai.omit
    started = time.perf_counter()
    try:
        if job.alias == "text-embedding-3-small":
            raw = await client.embeddings.with_raw_response.create(model=job.alias, input=text)
            tokens = raw.parse().usage.prompt_tokens
            deployment = served_by(raw.headers)
            return Outcome(
                job.alias, deployment, False, time.perf_counter() - started, None, tokens, 0
            )
        messages: list[openai.types.chat.ChatCompletionMessageParam] = [
            {"role": "user", "content": text}
        ]
        if not job.stream:
            raw_chat = await client.chat.completions.with_raw_response.create(
                model=job.alias,
                messages=messages,
                max_tokens=job.max_tokens,
                temperature=temperature,
            )
            chat = raw_chat.parse()
            usage = chat.usage
            return Outcome(
                job.alias,
                served_by(raw_chat.headers),
                False,
                time.perf_counter() - started,
                None,
                usage.prompt_tokens if usage else 0,
                usage.completion_tokens if usage else 0,
            )
        return await _stream(client, job, messages, started, temperature)
    except openai.APIError as exc:
        return Outcome(
            job.alias,
            "error",
            job.stream,
            time.perf_counter() - started,
            None,
            0,
            0,
            error=_describe(exc),
        )


def served_by(headers: Mapping[str, str]) -> str:
    """The deployment that answered, or ``cache`` for a cache hit."""
    if headers.get("x-gateway-cache") == "hit":
        return "cache"
    return headers.get("x-gateway-deployment", "?")


def _describe(exc: openai.APIError) -> str:
    """``InternalServerError 502: no deployment of 'auto' could answer ...`` (shortened)."""
    status = getattr(exc, "status_code", None)
    message = " ".join(str(exc.message).split())[:120]
    return f"{type(exc).__name__}{f' {status}' if status else ''}: {message}"


async def _stream(
    client: openai.AsyncOpenAI,
    job: Job,
    messages: list[openai.types.chat.ChatCompletionMessageParam],
    started: float,
    temperature: float | openai.Omit,
) -> Outcome:
    ttft = None
    prompt_tokens = completion_tokens = 0
    async with client.chat.completions.with_streaming_response.create(
        model=job.alias,
        messages=messages,
        max_tokens=job.max_tokens,
        temperature=temperature,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        deployment = served_by(response.headers)
        async for chunk in await response.parse():
            if ttft is None and chunk.choices and chunk.choices[0].delta.content:
                ttft = time.perf_counter() - started
            if chunk.usage is not None:
                prompt_tokens = chunk.usage.prompt_tokens
                completion_tokens = chunk.usage.completion_tokens
    return Outcome(
        job.alias,
        deployment,
        True,
        time.perf_counter() - started,
        ttft,
        prompt_tokens,
        completion_tokens,
    )


async def drive(base_url: str, jobs: Sequence[Job], concurrency: int) -> list[Outcome]:
    """Run ``jobs`` with at most ``concurrency`` in flight."""
    client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="demo", max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, job: Job) -> Outcome:
        async with gate:
            return await run_job(client, job, i)

    async with client:
        return list(await asyncio.gather(*(one(i, j) for i, j in enumerate(jobs))))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; non-zero exit if any request failed."""
    parser = argparse.ArgumentParser(prog="python -m loadtests.demo", description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="emulator delays x this (1.0 = calibrated real-world latency)",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    jobs = plan_traffic(args.requests, args.seed)
    config = load_config(DEMO_CONFIG, env={})
    with (
        tempfile.TemporaryDirectory(prefix="gateway-demo-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        started = time.perf_counter()
        # Small workers (16 sequences each), so the demo's bursts show the spill to paid APIs.
        fleet = start_demo_fleet(
            stack, Path(tmp), time_scale=args.time_scale, worker_args=("--max-num-seqs", "16")
        )
        master_key = "sk-demo-" + secrets.token_urlsafe(16)
        env = {**fleet.env(), "TOKEN_GATEWAY_MASTER_KEY": master_key}
        gateway = start_gateway(stack, DEMO_CONFIG, env, log_dir=Path(tmp))
        print(
            f"fleet and gateway up in {time.perf_counter() - started:.1f}s; "
            f"sending {len(jobs)} requests, {args.concurrency} at a time ...",
            flush=True,
        )
        t0 = time.perf_counter()
        outcomes = asyncio.run(drive(gateway.url, jobs, args.concurrency))
        wall = time.perf_counter() - t0
        spend = ledger_spend(gateway.url, master_key)
        exposition = scrape(gateway.url)
        counted = metric_sum(exposition, "gateway_requests_total")
    print(render_summary(outcomes, config, wall, counted))
    print(render_reasons(exposition))
    print(render_ledger(spend, config.accounting.reference_model))
    return 0 if all(o.error is None for o in outcomes) else 1


def ledger_spend(url: str, master_key: str, timeout_s: float = 10.0) -> dict[str, object]:
    """The gateway's spend per deployment from its admin API, once its ledger has settled
    every finished request (the ``gateway_ledger_backlog`` gauge is back to 0)."""
    deadline = time.monotonic() + timeout_s
    while metric_sum(scrape(url), "gateway_ledger_backlog") > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    admin = AdminClient(url, master_key, timeout_s=timeout_s)
    return admin.call("GET", "/admin/spend", query={"group_by": "deployment"})


if __name__ == "__main__":
    sys.exit(main())
