"""What one replica has seen of one deployment: counts, EWMAs, circuit, model corrections.

``FleetStats`` owns one ``DeploymentStats`` per deployment and updates it from the
dispatcher's calls, each call in flight being a ``Ticket``; nothing here reads a clock.
Imports: ``gateway.config``, ``gateway.stats``, ``policies``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.config import Deployment
from gateway.stats.circuit import CircuitBreaker, CircuitSettings
from gateway.stats.ewma import Ewma
from policies.predict import Correction
from policies.worker_latency import GpuProfile

CALIBRATED_OUTPUT_TOKENS_PER_S = {"h100": 8088.0, "a100": 3107.5}
"""Steady-state output tokens/s of one GPU for a 7-8B model: the shadow cost's throughput
before any is measured (shared/data/calibration.md section H: vLLM 0.6 multi-step on an
H100, vLLM 0.5.4 at 320 concurrent on an A100)."""


@dataclass(frozen=True, slots=True)
class StatsSettings:
    """Priors and smoothing of the live stats."""

    alpha: float = 0.1
    """EWMA weight of a new sample (after the first 1/alpha, which are averaged plainly)."""
    paid_ttft_prior_s: float = 0.8
    paid_tpot_prior_s: float = 1 / 60
    prompt_tokens_prior: float = 1000.0
    """Mean prompt size until one is seen (Azure LLM 2023 conv trace median: 1020)."""
    output_tokens_prior: float = 200.0
    throughput_window_s: float = 5.0
    """Busy seconds (some call in flight) per throughput sample."""
    circuit: CircuitSettings = field(default_factory=CircuitSettings)


class DeploymentStats:
    """The live state of one deployment (mutated only by ``FleetStats``)."""

    __slots__ = (
        "_busy_since",
        "_price_source",
        "_window_busy_s",
        "_window_s",
        "_window_tokens",
        "alpha",
        "awaiting_first",
        "circuit",
        "correction",
        "errors",
        "expected_output_inflight",
        "gpu_usd_per_s",
        "inflight",
        "input_usd_per_token",
        "name",
        "output_tokens",
        "output_usd_per_token",
        "profile",
        "prompt_tokens",
        "throughput",
        "tpot",
        "tpot_correction",
        "ttft",
    )

    def __init__(
        self, dep: Deployment, profile: GpuProfile | None, settings: StatsSettings
    ) -> None:
        self.name = dep.name
        self.profile = profile
        """The calibrated latency model (local workers only)."""
        self.alpha = a = settings.alpha
        self.inflight = 0
        self.awaiting_first = 0
        """Calls in flight that have not had their first token yet."""
        self.expected_output_inflight = 0
        """Sum of the in-flight calls' expected output tokens (their max_tokens, mostly)."""
        self.ttft = Ewma(a, settings.paid_ttft_prior_s)
        self.tpot = Ewma(a, settings.paid_tpot_prior_s)
        self.errors = Ewma(a, 0.0)
        self.prompt_tokens = Ewma(a, settings.prompt_tokens_prior)
        self.output_tokens = Ewma(a, settings.output_tokens_prior)
        calibrated = CALIBRATED_OUTPUT_TOKENS_PER_S.get(profile.name, 1.0) if profile else 1.0
        self.throughput = Ewma(a, calibrated * max(1, dep.gpus))
        """Output tokens per busy second."""
        self.correction = Correction()
        """observed / predicted TTFT of the calibrated model (local)."""
        self.tpot_correction = Correction()
        self.circuit = CircuitBreaker(settings.circuit)
        self._window_s = settings.throughput_window_s
        self._busy_since = 0.0
        self._window_busy_s = 0.0
        self._window_tokens = 0
        self._price_source: Deployment | None = None
        self.input_usd_per_token = self.output_usd_per_token = self.gpu_usd_per_s = 0.0
        self.refresh_prices(dep)

    def refresh_prices(self, dep: Deployment) -> None:
        """Float prices from ``dep`` (recomputed only when the config object changes)."""
        if dep is self._price_source:
            return
        self._price_source = dep
        price = None if dep.local else dep.price
        self.input_usd_per_token = float(price.input_per_token) if price else 0.0
        self.output_usd_per_token = float(price.output_per_token) if price else 0.0
        hourly = float(dep.gpu_hour_usd or 0) * max(1, dep.gpus)
        self.gpu_usd_per_s = hourly / 3600.0

    def enter(self, now: float, awaiting: bool, expected_output: int) -> None:
        """A call started."""
        if self.inflight == 0:
            self._busy_since = now
        self.inflight += 1
        self.expected_output_inflight += expected_output
        if awaiting:
            self.awaiting_first += 1

    def leave(self, now: float, awaiting: bool, expected_output: int) -> None:
        """A call ended (``awaiting``: before its first token was seen)."""
        self._window_busy_s += now - self._busy_since
        self._busy_since = now
        self.inflight -= 1
        self.expected_output_inflight -= expected_output
        if awaiting:
            self.awaiting_first -= 1

    def add_throughput_tokens(self, tokens: int) -> None:
        """Count output tokens; close a throughput window once it holds enough busy time."""
        self._window_tokens += tokens
        if self._window_busy_s >= self._window_s:
            self.throughput.update(self._window_tokens / self._window_busy_s)
            self._window_tokens = 0
            self._window_busy_s = 0.0


@dataclass(slots=True)
class Ticket:
    """One upstream call in flight, returned by ``started``."""

    stats: DeploymentStats
    started_at: float
    probe: bool
    base_ttft_s: float = 0.0
    """Local: the model's TTFT prediction at start, before the correction."""
    base_tpot_s: float = 0.0
    awaiting: bool = True
    """Counted among the calls awaiting their first token (streams, until it comes)."""
    first_token_at: float | None = None
    ended: bool = False
    expected_output: int = 0
    """Output tokens the call is expected to generate (its max_tokens, or the mean)."""
