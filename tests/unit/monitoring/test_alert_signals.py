"""Splitting alert expressions into signals (tests/support/promql.py), which the monitoring
proof test evaluates against a live Prometheus."""

from __future__ import annotations

import pytest

from tests.support.promql import signals


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("gateway_alias_healthy_deployments == 0", ["gateway_alias_healthy_deployments"]),
        (
            '(sum by (model) (rate(x{status=~"5.."}[5m])) > 0.05) and on(model) (y >= 2 * z)',
            ['sum by (model) (rate(x{status=~"5.."}[5m]))', "y"],
        ),
        ("(a > 14.4 * 0.01) and (b > 14.4 * 0.01)", ["a", "b"]),
        (
            "(a > 1) or ((c > 6 and d > 6) unless (up{job='w'} == 0))",
            ["a", "c", "d", "up{job='w'}"],
        ),
        ("(sum(rate(x[5m])) / sum(rate(y[5m]))) < 0.5", ["(sum(rate(x[5m])) / sum(rate(y[5m])))"]),
        ("increase(z[5m]) > bool 0", ["increase(z[5m])"]),
    ],
)
def test_each_comparison_gives_its_left_hand_side(expr: str, expected: list[str]) -> None:
    assert signals(expr) == expected


def test_operators_inside_label_matchers_and_calls_do_not_split() -> None:
    expr = 'rate(x{status!="200", le=">1"}[5m]) > 0'
    assert signals(expr) == ['rate(x{status!="200", le=">1"}[5m])']
