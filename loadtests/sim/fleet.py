"""The simulated fleet: an alias of a gateway config turned into local workers and paid APIs.

Prices come from the gateway config (``Deployment.price``: litellm's bundled map or the
config's override) and GPU-hour costs from ``Deployment.gpu_hour_usd``, so the simulator bills
exactly what the gateway would. Paid latency follows ``shared/data/paid_latency.md`` §4 (the
same profiles as the paid-API emulators, ``loadtests.emulators.paid``); hosted open-weight
models that the emulators have no profile for use §4's open-weight placeholder.
Imports: ``gateway.config``, ``policies``, ``loadtests.emulators.paid``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Config, Deployment, load_config
from loadtests.emulators import paid
from policies.worker_latency import PROFILES, GpuProfile

OPEN_WEIGHT_HOSTED = paid.ModelProfile("hosted-open-weight", 0.22, 0.65, 120.0)
"""§4 "Qwen2.5-72B (Together), placeholder": median 0.22 s, sigma 0.65 (open-weight hosts)."""
_OPEN_WEIGHT_MARKERS = ("qwen", "llama", "mistral", "deepinfra/", "together_ai/", "fireworks_ai/")


@dataclass(frozen=True, slots=True)
class LocalWorker:
    """One owned GPU running Qwen2.5-7B under vLLM."""

    deployment: Deployment
    profile: GpuProfile
    """The calibrated profile (what the gateway's predictor assumes)."""

    @property
    def name(self) -> str:
        """The deployment's name."""
        return self.deployment.name

    @property
    def gpu_hour_usd(self) -> float:
        """What the config says this worker costs per hour (all its GPUs)."""
        return float(self.deployment.gpu_hour_usd or 0) * max(1, self.deployment.gpus)


@dataclass(frozen=True, slots=True)
class PaidApi:
    """One paid deployment: its billed prices and latency profile."""

    deployment: Deployment
    input_usd_per_token: float
    output_usd_per_token: float
    latency: paid.ModelProfile

    @property
    def name(self) -> str:
        """The deployment's name."""
        return self.deployment.name

    def cost_usd(self, prompt_tokens: int, output_tokens: int) -> float:
        """Billed USD for one request's tokens."""
        return self.input_usd_per_token * prompt_tokens + self.output_usd_per_token * output_tokens


@dataclass(frozen=True, slots=True)
class Fleet:
    """The candidates of one alias, in its configured order (locals and paid)."""

    alias: str
    order: tuple[str, ...]
    locals: tuple[LocalWorker, ...]
    paid: tuple[PaidApi, ...]

    def with_gpus(self, count: int) -> Fleet:
        """``count`` copies of the first local worker, then the paid ones (0: paid only)."""
        if not self.locals:
            raise ValueError(f"alias {self.alias!r} has no local deployment to replicate")
        base = self.locals[0]
        workers = tuple(
            LocalWorker(dataclasses.replace(base.deployment, name=f"{base.name}-{i}"), base.profile)
            for i in range(count)
        )
        order = tuple(w.name for w in workers) + tuple(p.name for p in self.paid)
        return Fleet(self.alias, order, workers, self.paid)

    def cheapest_paid(self, prompt_tokens: int, output_tokens: int) -> float:
        """The lowest billed USD for a request among the paid deployments."""
        return min(p.cost_usd(prompt_tokens, output_tokens) for p in self.paid)


def load_fleet(path: str | Path, alias: str, gpu: str = "h100") -> Fleet:
    """The fleet behind ``alias`` in the gateway config at ``path``."""
    return fleet_from_config(load_config(path), alias, gpu)


def mixed_aliases(config: Config) -> list[str]:
    """Aliases with at least one local and one paid deployment (what the simulator compares)."""
    return [
        name
        for name in config.aliases
        if {d.local for d in config.deployments_for(name)} == {True, False}
    ]


def fleet_from_config(config: Config, alias: str, gpu: str = "h100") -> Fleet:
    """Build a ``Fleet`` from an already-loaded config."""
    if alias not in config.aliases:
        raise ValueError(f"unknown alias {alias!r} (known: {', '.join(config.aliases)})")
    deployments = config.deployments_for(alias)
    locals_ = tuple(LocalWorker(d, PROFILES[d.gpu or gpu]) for d in deployments if d.local)
    paid_ = tuple(_paid(d) for d in deployments if not d.local)
    if not paid_:
        raise ValueError(f"alias {alias!r} has no paid deployment")
    return Fleet(alias, tuple(d.name for d in deployments), locals_, paid_)


def _paid(dep: Deployment) -> PaidApi:
    if dep.price is None:
        raise ValueError(f"paid deployment {dep.name!r} has no price")
    return PaidApi(
        dep,
        float(dep.price.input_per_token),
        float(dep.price.output_per_token),
        latency_profile(dep.model),
    )


def latency_profile(model: str) -> paid.ModelProfile:
    """The TTFT/speed profile of a paid model (paid_latency.md §4)."""
    bare = model.split("/", 1)[1] if model.startswith(("openai/", "anthropic/")) else model
    if bare in paid.PROFILES:
        return paid.PROFILES[bare]
    if any(m in model.lower() for m in _OPEN_WEIGHT_MARKERS):
        return OPEN_WEIGHT_HOSTED
    return paid.profile_for(bare)


def slowed(profile: GpuProfile, factor: float) -> GpuProfile:
    """``profile`` with every step ``factor`` times longer and prefill ``factor`` times slower."""
    return dataclasses.replace(
        profile,
        name=f"{profile.name}x{factor:g}",
        tpot_points=tuple((n, t * factor) for n, t in profile.tpot_points),
        context_cost_s=profile.context_cost_s * factor,
        prefill_tokens_per_s=profile.prefill_tokens_per_s / factor,
    )
