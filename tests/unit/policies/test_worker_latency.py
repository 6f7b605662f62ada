"""The vLLM latency model (calibration.md sections B, G, I), table-driven on pure functions."""

from __future__ import annotations

import pytest

from policies import worker_latency as latency
from policies.worker_latency import A100, H100


@pytest.mark.parametrize(
    ("profile", "running", "expected_s"),
    [
        (H100, 1, 0.0076),
        (H100, 10, 0.0076),
        (H100, 20, 0.0078),
        (H100, 30, 0.0083),
        (H100, 160, 0.0131),
        (H100, 320, 0.0200),
        (A100, 10, 0.0120),
        (A100, 165, 0.02645),
        (A100, 320, 0.0409),
    ],
)
def test_base_tpot_interpolates_table_b(
    profile: latency.GpuProfile, running: int, expected_s: float
) -> None:
    assert latency.base_tpot_s(profile, running) == pytest.approx(expected_s)


@pytest.mark.parametrize("profile", [H100, A100])
def test_tpot_grows_with_batch_size(profile: latency.GpuProfile) -> None:
    steps = [latency.decode_step_s(profile, n, 400) for n in (1, 10, 40, 160, 320, 640, 1024)]
    assert steps == sorted(steps)
    assert steps[-1] > steps[0]


def test_tpot_beyond_the_table_extrapolates_the_last_segment() -> None:
    assert latency.base_tpot_s(H100, 480) == pytest.approx(0.0200 + (0.0200 - 0.0131))


@pytest.mark.parametrize(
    ("profile", "running", "context", "extra_s"),
    [
        (H100, 100, 400, 0.0),
        (H100, 100, 200, 0.0),
        (H100, 100, 1400, 100 * 1000 * 21e-9),
        (A100, 50, 2400, 50 * 2000 * 35e-9),
    ],
)
def test_context_above_400_tokens_adds_n_times_context_times_b(
    profile: latency.GpuProfile, running: int, context: float, extra_s: float
) -> None:
    base = latency.base_tpot_s(profile, running)
    assert latency.decode_step_s(profile, running, context) == pytest.approx(base + extra_s)


@pytest.mark.parametrize("ahead", [0, 1_000, 25_000, 100_000])
def test_ttft_is_queue_ahead_plus_own_prompt_plus_one_step(ahead: int) -> None:
    expected = (ahead + 500) / 25_000 + latency.decode_step_s(H100, 8, 600)
    assert latency.ttft_s(H100, ahead, 500, 8, 600) == pytest.approx(expected)


def test_ttft_grows_with_the_queue_ahead() -> None:
    ttfts = [latency.ttft_s(H100, ahead, 200, 10, 400) for ahead in (0, 5_000, 50_000)]
    assert ttfts == sorted(ttfts)
    assert ttfts[2] - ttfts[0] == pytest.approx(50_000 / 25_000)


def test_a100_prefills_slower_than_h100() -> None:
    assert latency.ttft_s(A100, 0, 2_000, 1, 400) > latency.ttft_s(H100, 0, 2_000, 1, 400)


@pytest.mark.parametrize(
    ("running", "cap", "admitted"),
    [(0, 1024, True), (1023, 1024, True), (1024, 1024, False), (300, 256, False)],
)
def test_requests_beyond_max_num_seqs_wait(running: int, cap: int, admitted: bool) -> None:
    assert latency.may_admit(running, cap) is admitted


@pytest.mark.parametrize(
    ("tokens", "usage"), [(0, 0.0), (500_000, 0.5), (1_000_000, 1.0), (3_000_000, 1.0)]
)
def test_kv_cache_usage_is_context_over_capacity(tokens: int, usage: float) -> None:
    assert latency.kv_cache_usage(H100, tokens) == pytest.approx(usage)


def test_default_max_num_seqs_follow_section_g() -> None:
    assert (H100.max_num_seqs, A100.max_num_seqs) == (1024, 256)
