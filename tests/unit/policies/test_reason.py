"""Reason details: short, ASCII, bounded, and reading like the examples in the issue."""

from __future__ import annotations

import pytest

from policies import reason
from policies.compose import build_policy, known_policies
from tests.unit.policies.fleets import local, paid, request


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("short", "short", id="unchanged"),
        pytest.param("x" * 119, "x" * 119, id="at-the-bound"),
        pytest.param("x" * 200, "x" * 116 + "...", id="cut"),
    ],
)
def test_bounded_cuts_long_details_with_an_ellipsis(text: str, expected: str) -> None:
    assert reason.bounded(text) == expected


@pytest.mark.parametrize(
    ("ttft", "total", "expected"),
    [
        pytest.param(None, None, "no SLO", id="none"),
        pytest.param(1.0, None, "SLO 1.00s", id="ttft"),
        pytest.param(None, 8.0, "SLO total 8.00s", id="total"),
        pytest.param(0.5, 8.0, "SLO 0.50s/total 8.00s", id="both"),
    ],
)
def test_slo_text_names_the_slo_in_force(
    ttft: float | None, total: float | None, expected: str
) -> None:
    assert reason.slo_text(ttft, total) == expected


@pytest.mark.parametrize("name", known_policies())
def test_every_detail_stays_short_and_ascii_even_with_long_deployment_names(name: str) -> None:
    long = "d" * 150
    fleets = [
        [local(long + "1", ttft=0.2), paid(long + "2")],
        [local(long + "1", ttft=3.0), paid(long + "2")],
        [local(long + "1", ttft=3.0), paid(long + "2", ttft=2.0)],
        [local(long, circuit="open")],
    ]
    for candidates in fleets:
        features = request(budget_left_usd=1.0, budget_total_usd=100.0)
        detail = build_policy(name, {}).decide(features, candidates).detail
        assert 0 < len(detail) <= reason.MAX_DETAIL
        assert detail.isascii()


def test_local_detail_reads_like_the_issue_example() -> None:
    assert reason.local_under_slo(local("qwen-7b-a", ttft=0.21), "SLO 1.00s") == (
        "qwen-7b-a predicted TTFT 0.21s <= SLO 1.00s"
    )


def test_refusal_details_count_what_is_down() -> None:
    candidates = [local(circuit="open"), paid(circuit="open"), local(inflight=64)]
    assert reason.no_available(candidates) == (
        "no deployment available: 2 circuit open, 1 at max concurrency"
    )
