"""What the paid-API emulators share: model latency profiles, pacing, provider faults.

Latency per model from ``shared/data/paid_latency.md`` section 4 (derived emulator
parameters): TTFT ~ LogNormal(ln median, sigma), then tokens at a constant output speed.
Long prompts scale the TTFT by (n / 1000)^0.3 above 1,000 tokens (section 4, "Prompt length":
alpha 0.2-0.35 per S12, n0 = the AA 1k default workload); shorter prompts are not credited.
Embedding latency is not in the data: ``text-embedding-3-small`` uses a 0.1 s placeholder.
Served models without a profile borrow their vendor's default (first profile of the family).
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.emulators import textgen
from loadtests.emulators.faults import FaultKnobs, Faults
from loadtests.emulators.openai_request import GenerationRequest
from loadtests.emulators.request_log import RequestLog

PROMPT_REFERENCE_TOKENS = 1000
PROMPT_ALPHA = 0.3


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """Latency of one paid model, and the snapshot name its replies carry."""

    snapshot: str
    ttft_median_s: float
    sigma: float
    tokens_per_s: float


PROFILES: dict[str, ModelProfile] = {
    "gpt-4o-mini": ModelProfile("gpt-4o-mini-2024-07-18", 0.645, 0.32, 62.0),
    "gpt-4o": ModelProfile("gpt-4o-2024-08-06", 0.74, 0.32, 45.0),
    "gpt-4.1-mini": ModelProfile("gpt-4.1-mini-2025-04-14", 0.77, 0.32, 77.0),
    "text-embedding-3-small": ModelProfile("text-embedding-3-small", 0.1, 0.32, 1.0),
    "claude-haiku-4-5": ModelProfile("claude-haiku-4-5-20251001", 0.92, 0.25, 53.0),
    "claude-sonnet-4-5": ModelProfile("claude-sonnet-4-5-20250929", 1.80, 0.25, 63.0),
    "claude-sonnet-4": ModelProfile("claude-sonnet-4-20250514", 1.1, 0.25, 44.0),
    "claude-3-5-haiku": ModelProfile("claude-3-5-haiku-20241022", 0.731, 0.25, 58.0),
    # Hosted Qwen2.5-7B (e.g. DeepInfra's id): no measurement of its own, so section 4's
    # "Qwen2.5-72B (Together), placeholder" row: median 0.22 s (kickllm), sigma 0.65 (open-weight
    # hosts), 120 tok/s placeholder; the simulator's open-weight profile (loadtests.sim.fleet).
    "Qwen/Qwen2.5-7B-Instruct": ModelProfile("Qwen/Qwen2.5-7B-Instruct", 0.22, 0.65, 120.0),
}


def profile_for(model: str) -> ModelProfile:
    """The profile of ``model`` (or its vendor's default, keeping the requested name)."""
    if model in PROFILES:
        return PROFILES[model]
    base = PROFILES["claude-haiku-4-5" if model.startswith("claude") else "gpt-4o-mini"]
    return ModelProfile(model, base.ttft_median_s, base.sigma, base.tokens_per_s)


class ProviderFault(enum.Enum):
    """A provider-side refusal drawn for one request."""

    NONE = "none"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"


@dataclass(frozen=True, slots=True)
class PaidConfig:
    """Options of a paid-API emulator (the CLI's ``openai`` and ``anthropic`` subcommands)."""

    models: tuple[str, ...]
    time_scale: float = 1.0
    zero_latency: bool = False
    seed: int = 0
    trace: Path = textgen.DEFAULT_TRACE
    faults: FaultKnobs = field(default_factory=FaultKnobs)
    rate_limit_rate: float = 0.0
    error_rate: float = 0.0
    request_log: Path | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """The tokens one request will get, why it stops, and its pacing in real seconds."""

    tokens: list[str]
    finish: str
    first_token_s: float
    token_interval_s: float


class PaidBackend:
    """Seeded draws (latency, faults, lengths) shared by the paid-API emulators."""

    def __init__(self, config: PaidConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.log = RequestLog(config.request_log)
        self.faults = Faults(config.faults, random.Random(config.seed + 1), self.log)
        self.lengths = textgen.load_output_lengths(config.trace)

    @property
    def paced(self) -> bool:
        """Whether replies wait at all."""
        return not self.config.zero_latency and self.config.time_scale > 0

    def provider_fault(self) -> ProviderFault:
        """429 with ``rate_limit_rate``, a server error with ``error_rate``, else none."""
        if not (self.config.rate_limit_rate or self.config.error_rate):
            return ProviderFault.NONE
        x = self.rng.random()
        if x < self.config.rate_limit_rate:
            return ProviderFault.RATE_LIMITED
        if x < self.config.rate_limit_rate + self.config.error_rate:
            return ProviderFault.SERVER_ERROR
        return ProviderFault.NONE

    def ttft_s(self, profile: ModelProfile, prompt_tokens: int) -> float:
        """A sampled time to first token in real seconds (0 when not paced)."""
        if not self.paced:
            return 0.0
        factor = (max(prompt_tokens, PROMPT_REFERENCE_TOKENS) / PROMPT_REFERENCE_TOKENS) ** (
            PROMPT_ALPHA
        )
        sample = self.rng.lognormvariate(math.log(profile.ttft_median_s), profile.sigma)
        return float(sample * factor * self.config.time_scale)

    def plan(self, params: GenerationRequest, profile: ModelProfile) -> Plan:
        """Output tokens (seeded by the prompt, capped by max_tokens) and their pacing."""
        seed = textgen.prompt_seed(params.prompt_text)
        count, finish = textgen.choose_length(
            self.lengths.draw(seed), params.max_tokens, ignore_eos=False
        )
        interval = self.config.time_scale / profile.tokens_per_s if self.paced else 0.0
        return Plan(
            textgen.generate_tokens(seed, count),
            finish,
            self.ttft_s(profile, params.prompt_tokens),
            interval,
        )
