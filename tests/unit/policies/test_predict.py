"""policies/predict.py: the TTFT predictor and its online correction."""

from __future__ import annotations

import pytest

from policies.predict import (
    Correction,
    WorkerLoad,
    admission_wait_s,
    corrected,
    predict_ttft_s,
)
from policies.worker_latency import H100, ttft_s

IDLE = WorkerLoad(running=0, waiting=0, prompt_tokens_ahead=0)


def test_idle_prediction_is_the_calibrated_model() -> None:
    assert predict_ttft_s(H100, IDLE, 500, Correction()) == pytest.approx(
        ttft_s(H100, 0, 500, 1, 400.0)
    )


@pytest.mark.parametrize(
    ("load", "expected_zero"),
    [
        pytest.param(WorkerLoad(8, 0, 0, blocked=0, mean_output_tokens=200), True, id="not-full"),
        pytest.param(
            WorkerLoad(0, 3, 0, blocked=3, mean_output_tokens=200), True, id="none-running"
        ),
        pytest.param(WorkerLoad(8, 3, 0, blocked=3, mean_output_tokens=200), False, id="full"),
    ],
)
def test_admission_wait_counts_only_when_the_worker_reports_requests_blocked(
    load: WorkerLoad, expected_zero: bool
) -> None:
    assert (admission_wait_s(H100, load) == 0.0) is expected_zero


def test_admission_wait_grows_with_the_requests_blocked_ahead() -> None:
    waits = [
        admission_wait_s(H100, WorkerLoad(8, b, 0, blocked=b, mean_output_tokens=200))
        for b in (1, 4, 16)
    ]
    assert waits[0] < waits[1] < waits[2]


@pytest.mark.parametrize("slowdown", [0.5, 1.25, 3.0], ids=["faster", "25pc-slower", "3x-slower"])
def test_correction_learns_a_gpu_off_the_calibration_within_thirty_observations(
    slowdown: float,
) -> None:
    correction = Correction()
    for i in range(30):
        predicted = 0.05 + 0.001 * (i % 7)
        correction = corrected(correction, predicted, predicted * slowdown)
    assert correction.factor == pytest.approx(slowdown, rel=0.01)


def test_correction_ignores_nonpositive_observations() -> None:
    start = Correction(log_factor=0.2, samples=5)
    assert corrected(start, 0.0, 0.1) == start
    assert corrected(start, 0.1, 0.0) == start
