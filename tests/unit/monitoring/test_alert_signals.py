"""Splitting alert expressions into their signals (tests/support/promql.py), which the
monitoring proof test evaluates against a live Prometheus."""

from __future__ import annotations

import pytest

from tests.support.promql import NotTheConvention, signals


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("(gateway_alias_healthy_deployments == 0)", ["gateway_alias_healthy_deployments"]),
        (
            '(sum by (model) (rate(x{status=~"5.."}[5m])) > 0.05) and on(model) (y >= 2 * z)',
            ['sum by (model) (rate(x{status=~"5.."}[5m]))', "y"],
        ),
        (
            "(a > 14.4 * 0.01) and (b > 14.4 * 0.01) unless (up{job='w'} == 0)",
            ["a", "b", "up{job='w'}"],
        ),
        (
            "((sum(rate(x[5m])) / sum(rate(y[5m]))) < 0.5)",
            ["(sum(rate(x[5m])) / sum(rate(y[5m])))"],
        ),
        ("(increase(z[5m]) > bool 0)", ["increase(z[5m])"]),
        ('(rate(x{status!="200", le=">1"}[5m]) > 0)', ['rate(x{status!="200", le=">1"}[5m])']),
    ],
)
def test_each_comparison_gives_its_left_hand_side(expr: str, expected: list[str]) -> None:
    assert signals(expr) == expected


@pytest.mark.parametrize("expr", ["a > 1", "(a > 1) and b > 2", "(a)", "(a > 1 > 2)"])
def test_an_expression_outside_the_convention_is_refused(expr: str) -> None:
    with pytest.raises(NotTheConvention):
        signals(expr)
