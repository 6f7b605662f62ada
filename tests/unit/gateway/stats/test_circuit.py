"""CircuitBreaker transitions, driven step by step with fake time."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gateway.stats.circuit import CircuitBreaker, CircuitSettings
from policies.model import CircuitState


@dataclass(frozen=True, slots=True)
class Step:
    """At time ``t``: ``event`` (fail, ok, probe_ok, probe_fail, 429, drop), then expect."""

    t: float
    event: str
    state: CircuitState
    allows: bool
    retry_after_s: float | None = None


def run(breaker: CircuitBreaker, steps: list[Step]) -> None:
    for i, step in enumerate(steps):
        probe = False
        if step.event != "none":
            probe = breaker.attempt(step.t) if step.event.startswith("probe") else False
            assert probe == step.event.startswith("probe"), f"step {i}: probe {probe}"
        match step.event:
            case "fail" | "probe_fail":
                breaker.failure(step.t, probe, step.retry_after_s)
            case "ok" | "probe_ok":
                breaker.success(step.t, probe)
            case "429":
                breaker.rate_limited(step.t, step.retry_after_s)
            case "probe_drop":
                breaker.abandoned(probe)
            case "probe_out":
                pass
        got = (breaker.state(step.t), breaker.allows(step.t))
        assert got == (step.state, step.allows), f"step {i} ({step}): got {got}"


FIVE_FAILURES = [Step(float(i), "fail", "closed", True) for i in range(4)] + [
    Step(4.0, "fail", "open", False)
]

CASES: dict[str, list[Step]] = {
    "stays_closed_below_n_consecutive_failures": [
        *FIVE_FAILURES[:4],
        Step(4.0, "ok", "closed", True),
        *[Step(5.0 + i, "fail", "closed", True) for i in range(4)],
    ],
    "opens_after_n_consecutive_failures": FIVE_FAILURES,
    "half_opens_after_the_cooldown": [
        *FIVE_FAILURES,
        Step(8.9, "none", "open", False),
        Step(9.0, "none", "half_open", True),
    ],
    "half_open_allows_exactly_one_probe": [
        *FIVE_FAILURES,
        Step(9.0, "probe_out", "half_open", False),
        Step(9.5, "none", "half_open", False),
    ],
    "probe_success_closes": [
        *FIVE_FAILURES,
        Step(9.0, "probe_ok", "closed", True),
        *[Step(10.0 + i, "fail", "closed", True) for i in range(4)],
    ],
    "probe_failure_reopens_for_another_cooldown": [
        *FIVE_FAILURES,
        Step(9.0, "probe_fail", "open", False),
        Step(13.9, "none", "open", False),
        Step(14.0, "none", "half_open", True),
    ],
    "a_dropped_probe_frees_the_slot": [
        *FIVE_FAILURES,
        Step(9.0, "probe_drop", "half_open", True),
        Step(9.1, "probe_ok", "closed", True),
    ],
    "a_429_opens_at_once_for_the_cooldown": [
        Step(0.0, "429", "open", False),
        Step(5.0, "none", "half_open", True),
    ],
    "a_429_retry_after_extends_the_cooldown": [
        Step(0.0, "429", "open", False, retry_after_s=30.0),
        Step(29.9, "none", "open", False),
        Step(30.0, "none", "half_open", True),
    ],
    "a_429_while_open_extends_it": [
        *FIVE_FAILURES,
        Step(6.0, "429", "open", False, retry_after_s=10.0),
        Step(15.9, "none", "open", False),
        Step(16.0, "none", "half_open", True),
    ],
    "a_short_retry_after_does_not_shorten_the_cooldown": [
        Step(0.0, "429", "open", False, retry_after_s=1.0),
        Step(4.9, "none", "open", False),
    ],
    "a_probe_429_reopens_for_its_retry_after": [
        *FIVE_FAILURES,
        Step(9.0, "probe_out", "half_open", False),
        Step(9.5, "429", "open", False, retry_after_s=20.0),
        Step(29.4, "none", "open", False),
        Step(29.5, "none", "half_open", True),
    ],
    "late_results_of_calls_sent_before_opening_do_not_close_it": [
        *FIVE_FAILURES,
        Step(4.5, "ok", "open", False),
        Step(4.6, "fail", "open", False),
        Step(9.0, "none", "half_open", True),
    ],
}


@pytest.mark.parametrize("steps", CASES.values(), ids=CASES.keys())
def test_circuit_transitions(steps: list[Step]) -> None:
    run(CircuitBreaker(), steps)


def test_opens_when_the_error_rate_is_high_without_n_in_a_row() -> None:
    breaker = CircuitBreaker(CircuitSettings(min_requests=10, error_rate_to_open=0.5))
    t = 0.0
    for i in range(30):
        t += 1.0
        if i % 3 == 2:
            breaker.success(t, probe=False)
        else:
            breaker.failure(t, probe=False)
        if breaker.state(t) == "open":
            break
    assert breaker.state(t) == "open"
    assert breaker.consecutive_failures < 5
    assert t >= 10


def test_a_lost_probe_stops_blocking_after_the_probe_timeout() -> None:
    breaker = CircuitBreaker(CircuitSettings(probe_timeout_s=30.0))
    breaker.rate_limited(0.0)
    assert breaker.attempt(5.0)
    assert not breaker.allows(34.9)
    assert breaker.allows(35.0)


def test_closing_forgets_the_error_rate() -> None:
    breaker = CircuitBreaker()
    for t in range(5):
        breaker.failure(float(t), probe=False)
    assert breaker.error_rate == 1.0
    breaker.success(9.0, probe=breaker.attempt(9.0))
    assert breaker.error_rate == 0.0
