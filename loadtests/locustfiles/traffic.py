"""What the simulated clients send and read, as pure functions (no locust, no I/O but the trace).

- **Settings** come from ``TG_*`` environment variables, the contract with the load-test
  runner (``read_settings`` lists them with their defaults).
- **Request sizes** are (prompt, output) token pairs drawn together from a real trace, so their
  correlation is kept: by default the Azure LLM inference trace 2023, conversation service
  (``shared/data/traces/azure_llm_2023_conv.csv``, PROVENANCE.md §1a: prompt mean 1,155 and
  output mean 211 tokens), each capped by ``TG_MAX_PROMPT_TOKENS`` / ``TG_MAX_OUTPUT_TOKENS``.
- **Bodies** are built by the live replay driver's ``loadtests.replay.request_body``: the
  gateway's bytes/4 prompt estimate is the drawn prompt size, the emulators count the same
  tokens, and ``ignore_eos`` makes a vLLM worker generate exactly the drawn output (the paid
  emulators drop it and stop at their natural length, capped by ``max_tokens``).
- **Answers**: ``StreamTally`` reads an SSE answer line by line (first content, usage, error
  events, ``[DONE]``); the other helpers read usage, the ``x-gateway-cost-usd`` header and
  budget refusals from a JSON answer.

Imports: stdlib, ``loadtests`` (the unit tests import this module; locust must not be).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from loadtests.emulators.textgen import DEFAULT_TRACE
from loadtests.replay import prompt_text, request_body
from loadtests.sim.trace import TraceRequest

DEFAULT_ALIASES = ("qwen2.5-7b-instruct", "auto", "gpt-4o-mini")
DEFAULT_API_KEY = "demo"
"""The demo gateway runs with ``auth: off``: any bearer key is billed to team ``default``."""
DEFAULT_BUDGET_ALIAS = "gpt-4o-mini"
"""A paid alias, so every admitted request spends from the budget team's dollars."""
DEFAULT_CACHE_POOL = 8
EMBEDDING_ALIASES = frozenset({"text-embedding-3-small"})
"""Aliases answered on /v1/embeddings (the mixed-model user sends text there)."""
BUDGET_REFUSAL = "insufficient_quota"
"""The OpenAI ``error.type`` of the gateway's 429 for a budget that cannot fit a request."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the users read from the environment, validated once per process."""

    aliases: tuple[str, ...]
    api_key: str
    team_keys: tuple[tuple[str, str], ...]
    """(team, key secret) pairs sorted by team; users take them round-robin."""
    budget_key: str | None
    budget_alias: str
    trace: Path
    max_prompt_tokens: int
    max_output_tokens: int
    stream_share: float
    seed: int
    seed_given: bool
    ignore_eos: bool
    cache_pool: int

    @property
    def chat_aliases(self) -> tuple[str, ...]:
        """The aliases that answer chat completions (``aliases`` without embedding models)."""
        return tuple(a for a in self.aliases if a not in EMBEDDING_ALIASES)

    def key_for(self, index: int) -> str:
        """The bearer key of the ``index``-th user instance: a team's key round-robin, or
        ``api_key`` when no team keys are given."""
        if not self.team_keys:
            return self.api_key
        return self.team_keys[index % len(self.team_keys)][1]


def read_settings(env: Mapping[str, str]) -> Settings:
    """Settings from ``env`` (``os.environ`` in Locust). Variables and defaults:

    ``TG_ALIASES`` (comma list, default ``qwen2.5-7b-instruct,auto,gpt-4o-mini``),
    ``TG_API_KEY`` (``demo``), ``TG_TEAM_KEYS`` (JSON object team -> key, optional),
    ``TG_BUDGET_KEY`` (optional), ``TG_BUDGET_ALIAS`` (``gpt-4o-mini``), ``TG_TRACE`` (the
    conversation trace), ``TG_MAX_PROMPT_TOKENS`` (2000), ``TG_MAX_OUTPUT_TOKENS`` (256),
    ``TG_STREAM_SHARE`` (0.5), ``TG_SEED`` (a random one when unset), ``TG_IGNORE_EOS`` (1),
    ``TG_CACHE_POOL`` (8 prompts). A bad value raises ``ValueError`` naming the variable.
    """
    aliases = tuple(a.strip() for a in env.get("TG_ALIASES", "").split(",") if a.strip())
    if aliases and all(a in EMBEDDING_ALIASES for a in aliases):
        raise ValueError("TG_ALIASES: want at least one chat alias")
    seed_text = env.get("TG_SEED", "").strip()
    return Settings(
        aliases=aliases or DEFAULT_ALIASES,
        api_key=env.get("TG_API_KEY") or DEFAULT_API_KEY,
        team_keys=_team_keys(env.get("TG_TEAM_KEYS", "")),
        budget_key=env.get("TG_BUDGET_KEY") or None,
        budget_alias=env.get("TG_BUDGET_ALIAS") or DEFAULT_BUDGET_ALIAS,
        trace=trace_path(env),
        max_prompt_tokens=env_int(env, "TG_MAX_PROMPT_TOKENS", 2000, minimum=1),
        max_output_tokens=env_int(env, "TG_MAX_OUTPUT_TOKENS", 256, minimum=1),
        stream_share=env_float(env, "TG_STREAM_SHARE", 0.5, minimum=0.0, maximum=1.0),
        seed=env_int(env, "TG_SEED", 0) if seed_text else random.SystemRandom().getrandbits(32),
        seed_given=bool(seed_text),
        ignore_eos=env_int(env, "TG_IGNORE_EOS", 1, minimum=0, maximum=1) == 1,
        cache_pool=env_int(env, "TG_CACHE_POOL", DEFAULT_CACHE_POOL, minimum=1),
    )


def trace_path(env: Mapping[str, str]) -> Path:
    """``TG_TRACE``: an Azure 2023 ``.csv`` or Mooncake ``.jsonl`` (default: the conv trace)."""
    return Path(env.get("TG_TRACE") or DEFAULT_TRACE)


def env_int(
    env: Mapping[str, str],
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """``env[name]`` as an int within bounds, ``default`` when unset or empty."""
    text = env.get(name, "").strip()
    try:
        value = int(text) if text else default
    except ValueError:
        raise ValueError(f"{name}: want an integer, got {text!r}") from None
    _check_bounds(name, value, minimum, maximum)
    return value


def env_float(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """``env[name]`` as a float within bounds, ``default`` when unset or empty."""
    text = env.get(name, "").strip()
    try:
        value = float(text) if text else default
    except ValueError:
        raise ValueError(f"{name}: want a number, got {text!r}") from None
    _check_bounds(name, value, minimum, maximum)
    return value


def _check_bounds(name: str, value: float, low: float | None, high: float | None) -> None:
    if value != value or (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}: {value} is outside [{low}, {high}]")


def _team_keys(text: str) -> tuple[tuple[str, str], ...]:
    if not text.strip():
        return ()
    try:
        loaded = json.loads(text)
    except ValueError:
        raise ValueError("TG_TEAM_KEYS: want a JSON object team -> key") from None
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in loaded.items()
    ):
        raise ValueError("TG_TEAM_KEYS: want a JSON object of team -> non-empty key string")
    return tuple(sorted(loaded.items()))


@dataclass(frozen=True, slots=True)
class LengthSampler:
    """(prompt, output) token pairs of a trace, capped; ``draw`` picks one uniformly."""

    pairs: tuple[tuple[int, int], ...]

    def draw(self, rng: random.Random) -> tuple[int, int]:
        """One request's (prompt tokens, output tokens)."""
        return rng.choice(self.pairs)


def length_sampler(
    requests: Sequence[TraceRequest], max_prompt_tokens: int, max_output_tokens: int
) -> LengthSampler:
    """The trace's requests as capped (prompt, output) pairs."""
    if not requests:
        raise ValueError("no requests to sample lengths from")
    return LengthSampler(
        tuple(
            (min(r.prompt_tokens, max_prompt_tokens), min(r.output_tokens, max_output_tokens))
            for r in requests
        )
    )


def chat_body(
    alias: str,
    prompt_tokens: int,
    output_tokens: int,
    seed: int,
    *,
    stream: bool,
    ignore_eos: bool,
    temperature: float | None = None,
) -> str:
    """A chat completions body (compact ASCII JSON, as the replay driver sizes it): a prompt unique
    to ``seed``, ``max_tokens`` = ``output_tokens``, usage asked for when streaming."""
    body = request_body(
        TraceRequest(0.0, prompt_tokens, output_tokens),
        seed,
        alias,
        stream=stream,
        ignore_eos=ignore_eos,
        natural_lengths=None,
    )
    if temperature is not None:
        body["temperature"] = temperature
    return json.dumps(body, separators=(",", ":"))


def embeddings_body(alias: str, tokens: int, seed: int) -> str:
    """An embeddings body whose input is about ``tokens`` tokens, unique to ``seed``."""
    body = {"input": "", "model": alias}
    envelope = len(json.dumps(body, separators=(",", ":")))
    body["input"] = prompt_text(tokens, 1, seed, envelope)
    return json.dumps(body, separators=(",", ":"))


@dataclass(slots=True)
class StreamTally:
    """What one SSE answer showed so far; times are seconds since the request was sent."""

    first_content_s: float | None = None
    completion_tokens: int | None = None
    content_events: int = 0
    error: str | None = None
    done: bool = False

    def feed(self, line: str, elapsed_s: float) -> None:
        """Note one line of the stream (``data: {...}``, ``data: [DONE]``, blank, comment)."""
        if not line.startswith("data:"):
            return
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return
        try:
            event = json.loads(data)
        except ValueError:
            self.error = self.error or f"not JSON: {data[:80]!r}"
            return
        if not isinstance(event, dict):
            return
        if "error" in event:
            self.error = self.error or _error_text(event)
        if any(_delta_content(c) for c in event.get("choices") or ()):
            self.content_events += 1
            if self.first_content_s is None:
                self.first_content_s = elapsed_s
        usage = event.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.completion_tokens = usage["completion_tokens"]

    def problem(self) -> str | None:
        """Why the stream is a failure (an error event, no ``[DONE]``, no usage), or None."""
        if self.error is not None:
            return f"error event in the stream: {self.error}"
        if not self.done:
            return "the stream ended without data: [DONE]"
        if self.completion_tokens is None:
            return "no usage in the stream (stream_options.include_usage was asked)"
        return None

    def tokens_per_s(self, total_s: float) -> float | None:
        """Decode speed the client saw: tokens after the first one / time after the first
        content (1 / time per output token); None for a single token or no content."""
        tokens, first = self.completion_tokens, self.first_content_s
        if tokens is None or tokens < 2 or first is None or total_s <= first:
            return None
        return (tokens - 1) / (total_s - first)


def _delta_content(choice: object) -> bool:
    if not isinstance(choice, dict):
        return False
    delta = choice.get("delta")
    return isinstance(delta, dict) and bool(delta.get("content"))


def _error_text(body: Mapping[str, object]) -> str:
    error = body.get("error")
    if isinstance(error, dict):
        return f"{error.get('type')}: {' '.join(str(error.get('message')).split())[:160]}"
    return str(error)[:160]


def completion_tokens(body: bytes) -> int | None:
    """``usage.completion_tokens`` of a chat completions JSON answer (None if absent)."""
    try:
        loaded = json.loads(body)
    except ValueError:
        return None
    usage = loaded.get("usage") if isinstance(loaded, dict) else None
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return tokens if isinstance(tokens, int) else None


def micro_usd(header: str | None) -> int | None:
    """The ``x-gateway-cost-usd`` header (``0.000123``) in integer micro-dollars."""
    if header is None:
        return None
    try:
        return int((Decimal(header.strip()) * 1_000_000).to_integral_value())
    except InvalidOperation:
        return None


def error_type(body: bytes) -> str | None:
    """``error.type`` of an OpenAI error JSON body, or None."""
    try:
        loaded = json.loads(body)
    except ValueError:
        return None
    error = loaded.get("error") if isinstance(loaded, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


def refused_for_budget(status: int, body: bytes) -> bool:
    """A 429 whose error type is ``insufficient_quota`` (not a rate limit)."""
    return status == 429 and error_type(body) == BUDGET_REFUSAL


def describe_failure(status: int, body: bytes) -> str:
    """``HTTP 502 upstream_error: no deployment ...`` for Locust's failure table."""
    try:
        loaded = json.loads(body)
    except ValueError:
        loaded = None
    if isinstance(loaded, dict) and "error" in loaded:
        return f"HTTP {status} {_error_text(loaded)}"
    return f"HTTP {status} {body[:120]!r}"
