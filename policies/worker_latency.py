"""The latency model of a vLLM worker serving a 7-8B model on one GPU, as pure functions.

Calibrated by ``shared/data/calibration.md``:

- Decode step time (TPOT) against the number of running sequences N: interpolated linearly
  in table B (LambdaLabs vLLM 0.5.4, Llama-3-8B, H100 SXM N=10..320, A100 SXM N=10 and 320),
  flat below the first point, extrapolated from the last two points above the last one.
- Context cost: plus N x (mean context - 400) x b, with b = 21 ns (Qwen2.5-7B, H100) or
  35 ns (Qwen2.5-7B, A100), section I; table B was measured at ~400-token contexts, so
  shorter contexts are not credited (the term is clamped at zero).
- Prefill: one FIFO queue per GPU at ~25k prompt tokens/s on an H100 (midpoint of section I's
  17-33k) and ~12k on an A100 (9-16k). TTFT = wait behind the prompt tokens ahead + own
  prompt / rate + one decode step (section I).
- Admission: at most ``max_num_seqs`` running (1024 H100 / 256 A100, vLLM V1 defaults,
  section G); the rest wait. KV cache: ~1 M tokens for Qwen2.5-7B on 80 GB (section G).

Everything here is stdlib and side-effect free: the vLLM emulator, the policies' TTFT
predictor and the what-if simulator share it; each owns its own clock and queue.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

REFERENCE_CONTEXT_TOKENS = 400
"""Mean context of the table B runs, the zero point of the context cost."""


@dataclass(frozen=True, slots=True)
class GpuProfile:
    """Latency parameters of one GPU kind for Qwen2.5-7B-Instruct (BF16, vLLM)."""

    name: str
    tpot_points: tuple[tuple[int, float], ...]
    """(running sequences, seconds per decode step), ascending in N."""
    context_cost_s: float
    """Extra seconds per decode step per sequence per context token above 400 (b)."""
    prefill_tokens_per_s: float
    max_num_seqs: int
    kv_capacity_tokens: int


H100 = GpuProfile(
    name="h100",
    tpot_points=(
        (10, 0.0076),
        (20, 0.0078),
        (40, 0.0088),
        (80, 0.0099),
        (160, 0.0131),
        (320, 0.0200),
    ),
    context_cost_s=21e-9,
    prefill_tokens_per_s=25_000.0,
    max_num_seqs=1024,
    kv_capacity_tokens=1_000_000,
)
A100 = GpuProfile(
    name="a100",
    tpot_points=((10, 0.0120), (320, 0.0409)),
    context_cost_s=35e-9,
    prefill_tokens_per_s=12_000.0,
    max_num_seqs=256,
    kv_capacity_tokens=1_000_000,
)
PROFILES: dict[str, GpuProfile] = {p.name: p for p in (H100, A100)}


def base_tpot_s(profile: GpuProfile, running: int) -> float:
    """Table B's decode step time at ``running`` sequences, interpolated linearly."""
    points = profile.tpot_points
    if running <= points[0][0]:
        return points[0][1]
    for (n0, t0), (n1, t1) in itertools.pairwise(points):
        if running <= n1:
            return t0 + (t1 - t0) * (running - n0) / (n1 - n0)
    (n0, t0), (n1, t1) = points[-2], points[-1]
    return t1 + (t1 - t0) * (running - n1) / (n1 - n0)


def decode_step_s(profile: GpuProfile, running: int, mean_context: float) -> float:
    """Seconds per decode step for a batch of ``running`` sequences of ``mean_context``."""
    extra_context = max(0.0, mean_context - REFERENCE_CONTEXT_TOKENS)
    return base_tpot_s(profile, running) + running * extra_context * profile.context_cost_s


def prefill_s(profile: GpuProfile, tokens: float) -> float:
    """Seconds to prefill ``tokens`` prompt tokens on an otherwise idle prefill queue."""
    return tokens / profile.prefill_tokens_per_s


def ttft_s(
    profile: GpuProfile,
    tokens_ahead: float,
    prompt_tokens: int,
    running: int,
    mean_context: float,
) -> float:
    """Time to first token: the prompts ahead, then our prompt, then one decode step."""
    queue = prefill_s(profile, tokens_ahead + prompt_tokens)
    return queue + decode_step_s(profile, max(1, running), mean_context)


def may_admit(running: int, max_num_seqs: int) -> bool:
    """Whether one more sequence may start running (otherwise it waits)."""
    return running < max_num_seqs


def kv_cache_usage(profile: GpuProfile, context_tokens: int) -> float:
    """Fraction of the KV cache held by running sequences' contexts, 0..1."""
    return min(1.0, context_tokens / profile.kv_capacity_tokens)
