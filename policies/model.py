"""What a routing decision sees and what it returns: frozen values, no behaviour.

The gateway builds ``RequestFeatures`` from the request (and its headers and key), and one
``Candidate`` per deployment of the alias from its live stats; a policy turns them into a
``Decision``: the ordered plan (primary, then fallbacks), the scores it used, and a reason.
The what-if simulator builds the same objects from a trace, so the same code decides both.
Imports: stdlib only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

CircuitState = Literal["closed", "open", "half_open"]
DataClass = Literal["public", "internal", "private"]
DATA_CLASSES: tuple[DataClass, ...] = ("public", "internal", "private")
"""Data classifications, loosest first: a request's class is the strictest that applies."""

# The bounded vocabulary of ``Decision.reason`` (metric label values; keep it short).
REASONS = (
    "only_candidate",  # one deployment could serve at all
    "local_under_slo",  # a local worker is predicted to meet the SLO
    "spill_to_paid",  # local workers would break the SLO: cheapest paid one that meets it
    "cheapest_meeting_slo",  # cost policy
    "fastest",  # latency policy
    "budget_low",  # budget policy moved to cheaper deployments
    "weighted_draw",  # weighted (canary) policy
    "best_effort",  # nothing meets the SLO: the least bad one (hard constraints refuse)
    "configured_order",  # no policy: the alias's order
    # Refusals (empty plan; ``policies.plan.REFUSALS`` maps each to an HTTP status):
    "no_available_deployment",  # every deployment's circuit is open or it is at capacity
    "exceeds_context_window",  # prompt + expected output fit no deployment's context window
    "exceeds_max_cost",  # every deployment that fits costs more than max_cost_usd
    "no_allowed_deployment",  # no deployment allowed the request's data class can serve it
)
Reason = Literal[
    "only_candidate",
    "local_under_slo",
    "spill_to_paid",
    "cheapest_meeting_slo",
    "fastest",
    "budget_low",
    "weighted_draw",
    "best_effort",
    "configured_order",
    "no_available_deployment",
    "exceeds_context_window",
    "exceeds_max_cost",
    "no_allowed_deployment",
]


@dataclass(frozen=True, slots=True)
class RequestFeatures:
    """One request, as routing needs it."""

    alias: str
    prompt_tokens: int
    """Estimated cheaply (bytes / 4), never with a tokenizer on the hot path."""
    expected_output_tokens: int
    """``max_tokens`` if given, else the alias's running average."""
    stream: bool = False
    slo_ttft_s: float | None = None
    slo_total_s: float | None = None
    max_cost_usd: float | None = None
    tenant: str | None = None
    budget_left_usd: float | None = None
    budget_total_usd: float | None = None
    draw: float = 0.5
    """A uniform draw in [0, 1) from the caller, for weighted splits (policies read no RNG)."""
    explain: bool = False
    """Fill ``Decision.scores`` (the explain endpoint); the hot path skips them (~1.5 us each)."""
    data_class: DataClass = "public"
    """The request's data classification: only candidates accepting it may serve it."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A snapshot of one deployment at decision time."""

    name: str
    local: bool
    input_usd_per_token: float = 0.0
    """Billed price; 0 for local workers (their GPU cost is sunk)."""
    output_usd_per_token: float = 0.0
    shadow_usd_per_output_token: float = 0.0
    """Local only: GPU-hour price / measured throughput; reported, never billed."""
    context_window: int | None = None
    circuit: CircuitState = "closed"
    inflight: int = 0
    max_concurrency: int | None = None
    running: int | None = None
    """vLLM ``num_requests_running`` as last scraped (local), None when unknown."""
    waiting: int | None = None
    """vLLM ``num_requests_waiting`` as last scraped (local), None when unknown."""
    kv_cache_usage: float | None = None
    predicted_ttft_s: float = 0.0
    """From the worker model and queue (local) or the EWMA of observed TTFT (paid)."""
    tpot_s: float = 0.0
    """Predicted seconds per output token after the first."""
    error_rate: float = 0.0
    weight: float = 1.0
    """For the weighted policy (canary share)."""
    group: str | None = None
    """The discovery group this deployment is a member of (None: configured by itself)."""
    data_classes: tuple[DataClass, ...] = DATA_CLASSES
    """The data classes this deployment may receive (``policies.privacy`` filters by them)."""

    @property
    def available(self) -> bool:
        """Not refused outright: circuit not open and not at its concurrency limit."""
        if self.circuit == "open":
            return False
        return self.max_concurrency is None or self.inflight < self.max_concurrency

    def expected_cost_usd(self, features: RequestFeatures) -> float:
        """Billed USD for this request here (0 for local workers)."""
        return (
            self.input_usd_per_token * features.prompt_tokens
            + self.output_usd_per_token * features.expected_output_tokens
        )

    def predicted_total_s(self, features: RequestFeatures) -> float:
        """TTFT plus the remaining output tokens at the predicted TPOT."""
        return self.predicted_ttft_s + self.tpot_s * max(0, features.expected_output_tokens - 1)


@dataclass(frozen=True, slots=True)
class Score:
    """What a policy computed for one candidate (returned by explain)."""

    name: str
    expected_cost_usd: float
    predicted_ttft_s: float
    predicted_total_s: float
    meets_slo: bool
    eligible: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """The ordered plan and why."""

    policy: str
    plan: tuple[str, ...]
    """Deployment names: the primary first, then fallbacks. Empty: refuse (see reason)."""
    reason: Reason
    detail: str
    """Short human-readable explanation (response header, explain endpoint)."""
    scores: tuple[Score, ...] = field(default=())


class Policy(Protocol):
    """A routing policy: pure, deterministic given its inputs."""

    name: str
    predicts: bool
    """Whether ``decide`` reads predicted latencies (``Candidate.predicted_ttft_s``,
    ``tpot_s``); when False the caller may leave them 0 and skip computing them."""

    def decide(self, features: RequestFeatures, candidates: Sequence[Candidate]) -> Decision:
        """Order ``candidates`` (in the alias's configured order) into a plan."""
        ...
