"""Ewma: the prior until the first sample, a plain mean while warming up, then exponential."""

from __future__ import annotations

import math

import pytest

from gateway.stats.ewma import Ewma


def test_value_is_the_prior_until_the_first_sample() -> None:
    ewma = Ewma(0.1, prior=0.8)
    assert ewma.value == 0.8
    assert ewma.count == 0
    ewma.update(0.2)
    assert ewma.value == pytest.approx(0.2)
    assert ewma.count == 1


def test_first_samples_are_averaged_plainly() -> None:
    ewma = Ewma(0.25)
    for sample in (1.0, 2.0, 3.0, 6.0):
        ewma.update(sample)
    assert ewma.value == pytest.approx(3.0)


def test_later_samples_move_the_average_by_alpha() -> None:
    ewma = Ewma(0.5)
    ewma.update(0.0)
    ewma.update(0.0)
    ewma.update(1.0)
    assert ewma.value == pytest.approx(0.5)
    ewma.update(1.0)
    assert ewma.value == pytest.approx(0.75)


def test_half_life_halves_an_old_samples_weight() -> None:
    ewma = Ewma.from_half_life(10)
    assert (1 - ewma.alpha) ** 10 == pytest.approx(0.5)


def test_converges_to_a_new_level() -> None:
    ewma = Ewma(0.1)
    for _ in range(50):
        ewma.update(1.0)
    for _ in range(100):
        ewma.update(2.0)
    assert math.isclose(ewma.value, 2.0, rel_tol=1e-3)


def test_reset_forgets_every_sample() -> None:
    ewma = Ewma(0.1, prior=1.0)
    ewma.update(5.0)
    ewma.reset(prior=1.0)
    assert (ewma.value, ewma.count) == (1.0, 0)


@pytest.mark.parametrize("alpha", [0.0, -0.1, 1.5])
def test_rejects_an_alpha_outside_zero_to_one(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        Ewma(alpha)


@pytest.mark.parametrize("half_life", [0.0, -1.0, math.inf])
def test_rejects_a_non_positive_half_life(half_life: float) -> None:
    with pytest.raises(ValueError, match="half-life"):
        Ewma.from_half_life(half_life)
