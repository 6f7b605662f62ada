"""Predicting a local worker's TTFT from its load, corrected online by what is observed.

The prediction starts from the calibrated worker model (``worker_latency``: a shared prefill
queue, decode step time growing with the batch, and when the worker is full the wait for a
running sequence to finish) and is multiplied by a correction factor
learnt from the gateway's own observations (an EWMA of log(observed / predicted)), so a GPU
25% slower than the calibration is learnt within a few dozen requests. The gateway's stats
module and the simulator each keep their own ``Correction`` values. Stdlib only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from policies.worker_latency import GpuProfile, decode_step_s, ttft_s


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    """What is known of one worker's queue at decision time."""

    running: int
    """Sequences decoding (scraped ``vllm:num_requests_running``, or the gateway's count)."""
    waiting: int
    """Sequences not yet admitted (scraped ``vllm:num_requests_waiting``)."""
    prompt_tokens_ahead: float
    """Prompt tokens queued for prefill ahead of a new request."""
    mean_context_tokens: float = 400.0
    blocked: int = 0
    """Sequences the worker itself reports waiting for admission (scraped; 0 if unknown):
    each must wait for a running sequence to finish, not just for prefill."""
    mean_output_tokens: float = 0.0
    """Mean output length, for how soon a running sequence finishes and frees a slot."""


@dataclass(frozen=True, slots=True)
class Correction:
    """Multiplicative correction of the model, learnt from observations."""

    log_factor: float = 0.0
    samples: int = 0

    @property
    def factor(self) -> float:
        """observed / predicted, smoothed."""
        return math.exp(self.log_factor)


def predict_ttft_s(
    profile: GpuProfile, load: WorkerLoad, prompt_tokens: int, correction: Correction
) -> float:
    """Predicted TTFT of a new request of ``prompt_tokens`` on a worker under ``load``."""
    base = ttft_s(
        profile,
        load.prompt_tokens_ahead,
        prompt_tokens,
        load.running + 1,
        load.mean_context_tokens,
    )
    return (base + admission_wait_s(profile, load)) * correction.factor


def admission_wait_s(profile: GpuProfile, load: WorkerLoad) -> float:
    """Time until a slot frees for a new request when the worker is full.

    With N sequences running, each living ``mean_output_tokens`` decode steps, about N
    finish per (mean output x step time); the new request needs ``blocked + 1`` of them.
    """
    if load.blocked <= 0 or load.running <= 0:
        return 0.0
    step = decode_step_s(profile, load.running, load.mean_context_tokens)
    return (load.blocked + 1) * load.mean_output_tokens * step / load.running


def corrected(
    correction: Correction, predicted_s: float, observed_s: float, alpha: float = 0.1
) -> Correction:
    """The correction after one observation (``predicted_s`` without the correction)."""
    if predicted_s <= 0 or observed_s <= 0:
        return correction
    sample = math.log(observed_s / predicted_s)
    # Average plainly over the first 1/alpha samples, then exponentially.
    weight = max(alpha, 1.0 / (correction.samples + 1))
    return Correction(
        correction.log_factor + weight * (sample - correction.log_factor), correction.samples + 1
    )
