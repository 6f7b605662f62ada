"""The TTFT predictor: queue-driven, and corrected online to the GPU actually serving."""

from __future__ import annotations

import pytest

from policies.predict import Correction, WorkerLoad, corrected, predict_ttft_s
from policies.worker_latency import H100


@pytest.mark.parametrize(
    ("tokens_ahead", "expected_s"),
    [
        pytest.param(0, 1000 / 25_000 + 0.0088, id="idle-prefill-plus-one-step"),
        pytest.param(25_000, 26_000 / 25_000 + 0.0088, id="a-second-of-prefill-ahead"),
    ],
)
def test_prediction_is_the_prefill_queue_plus_one_decode_step(
    tokens_ahead: float, expected_s: float
) -> None:
    load = WorkerLoad(running=39, waiting=0, prompt_tokens_ahead=tokens_ahead)
    assert predict_ttft_s(H100, load, 1000, Correction()) == pytest.approx(expected_s)


def test_predictor_correction_converges_to_a_25_percent_slower_gpu_within_30_observations() -> None:
    correction = Correction()
    loads = [
        WorkerLoad(running=r, waiting=0, prompt_tokens_ahead=q)
        for r, q in [(10, 0), (40, 5000), (80, 20_000), (160, 1000)]
    ]
    for i in range(30):
        load = loads[i % len(loads)]
        model_s = predict_ttft_s(H100, load, 800, Correction())
        correction = corrected(correction, model_s, 1.25 * model_s)
    assert correction.samples == 30
    assert correction.factor == pytest.approx(1.25, rel=0.02)
    load = loads[2]
    assert predict_ttft_s(H100, load, 800, correction) == pytest.approx(
        1.25 * predict_ttft_s(H100, load, 800, Correction()), rel=0.02
    )


def test_correction_follows_a_gpu_that_slows_down_later() -> None:
    correction = Correction()
    for _ in range(100):
        correction = corrected(correction, 1.0, 1.0)
    for _ in range(30):
        correction = corrected(correction, 1.0, 1.25)
    assert correction.factor == pytest.approx(1.25, rel=0.05)


@pytest.mark.parametrize(
    ("predicted", "observed"),
    [pytest.param(0.0, 1.0, id="no-prediction"), pytest.param(1.0, 0.0, id="no-observation")],
)
def test_correction_ignores_observations_it_cannot_use(predicted: float, observed: float) -> None:
    assert corrected(Correction(), predicted, observed) == Correction()
