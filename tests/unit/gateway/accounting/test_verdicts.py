"""The shared verdict rules: where room frees in a rate window, Retry-After, the tightest limit."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.accounting.model import Admission, RateState, Team, VirtualKey
from gateway.accounting.verdicts import Admitted, BudgetUse, Refused, WindowUse, room_at, verdict


def test_room_frees_when_enough_oldest_buckets_leave() -> None:
    buckets = [(105, 2), (100, 3), (110, 1)]
    assert room_at(buckets, 3) == 100
    assert room_at(buckets, 4) == 105
    assert room_at(buckets, 6) == 110
    assert room_at(buckets, 7) is None


NOW = datetime(2026, 12, 31, 18, 0, 0, 500_000, tzinfo=UTC).timestamp()
ASK = Admission("r", Team("t"), VirtualKey("k", "h", "t"), 2_000, 10, NOW, 60.0)


def test_budget_refusals_retry_at_the_next_utc_boundary() -> None:
    daily = verdict(ASK, Refused("budget", 1, 5_000, 4_000, period="day"))
    monthly = verdict(ASK, Refused("budget", 0, 5_000, 4_000, period="month"))
    assert daily.retry_after_s == monthly.retry_after_s == 6 * 3600 - 0.5  # year's end
    assert daily.detail.startswith("team 't' daily budget of $0.005000")
    assert monthly.detail.startswith("key 'k' monthly budget")


def test_admitted_verdict_picks_the_tightest_window_and_budget() -> None:
    outcome = Admitted(
        requests=(WindowUse(0, 10, 3, int(NOW) - 30), WindowUse(1, 5, 4, int(NOW))),
        tokens=(WindowUse(1, 100, 10, int(NOW)),),
        budgets=(BudgetUse(0, "day", 9_000, 8_000), BudgetUse(1, "total", 50_000, 45_000)),
    )
    admitted = verdict(ASK, outcome)
    assert admitted.requests == RateState(5, 1, 59.5)
    assert admitted.tokens == RateState(100, 90, 59.5)
    assert (admitted.budget_left_micros, admitted.budget_total_micros) == (1_000, 9_000)
    assert admitted.team_budget_left_micros == 5_000


def test_a_rate_refusal_reports_the_window_that_refused() -> None:
    requests = verdict(ASK, Refused("requests", 0, 60, 60, room_at=int(NOW) - 20))
    assert requests.requests == RateState(60, 0, 39.5)
    assert requests.tokens is None
    tokens = verdict(ASK, Refused("tokens", 1, 1_000, 995))  # 10 tokens never fit in 5
    assert tokens.tokens == RateState(1_000, 5, 60.0)
    assert tokens.retry_after_s is None and tokens.requests is None
    for refused in (Refused("parallel", 0, 2, 2), Refused("budget", 1, 5, 4, period="total")):
        assert (verdict(ASK, refused).requests, verdict(ASK, refused).tokens) == (None, None)
