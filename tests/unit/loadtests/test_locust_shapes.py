"""The load shapes' plans (loadtests/shapes/schedule.py): tick sequences, env, the trace pool.

The shape files are thin ``LoadTestShape`` classes over these plans; importing locust here
would monkey-patch the test process (gevent), so only the pure plans are imported, and one
test checks in a fresh interpreter that they stay locust-free.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.shapes.schedule import (
    DRAIN_S,
    HEADROOM,
    MIN_SAMPLES,
    PRIOR_LATENCY_S,
    WINDOW_S,
    ArrivalQueue,
    SpikePlan,
    SteadyPlan,
    StepPlan,
    TracePlan,
    mean_latency_s,
    spike_from_env,
    steady_from_env,
    step_from_env,
    trace_items_from_env,
    trace_plan,
)
from loadtests.sim.replay import ReplayItem

Tick = tuple[int, float] | None


def ticks(plan: SteadyPlan | StepPlan | SpikePlan, times: list[float]) -> list[Tick]:
    return [plan.tick(t) for t in times]


def test_steady_holds_its_users_until_the_duration_then_stops() -> None:
    plan = SteadyPlan(users=8, spawn_rate=2.0, duration_s=60.0)

    assert ticks(plan, [0.0, 30.0, 59.9, 60.0, 61.0]) == [
        (8, 2.0),
        (8, 2.0),
        (8, 2.0),
        None,
        None,
    ]


def test_step_adds_step_users_each_step_and_stops_after_the_last() -> None:
    plan = StepPlan(step_users=4, step_s=20.0, steps=3, spawn_rate=4.0)

    assert ticks(plan, [0.0, 19.9, 20.0, 39.9, 40.0, 59.9, 60.0]) == [
        (4, 4.0),
        (4, 4.0),
        (8, 4.0),
        (8, 4.0),
        (12, 4.0),
        (12, 4.0),
        None,
    ]
    assert plan.duration_s == 60.0


def test_spike_adds_its_users_within_a_second_and_removes_them_as_fast() -> None:
    plan = SpikePlan(
        users=8, spawn_rate=8.0, spike_users=24, spike_at_s=20.0, spike_s=10.0, duration_s=60.0
    )

    assert ticks(plan, [0.0, 19.9, 20.0, 29.9, 30.0, 59.9, 60.0]) == [
        (8, 8.0),
        (8, 8.0),
        (32, 24.0),
        (32, 24.0),
        (8, 24.0),  # a new tick (other spawn rate): Locust stops the extra users at once
        (8, 24.0),
        None,
    ]


def test_shapes_read_their_defaults_from_an_empty_environment() -> None:
    assert steady_from_env({}) == SteadyPlan(users=8, spawn_rate=8.0, duration_s=60.0)
    assert step_from_env({}) == StepPlan(step_users=4, step_s=20.0, steps=5, spawn_rate=4.0)
    assert spike_from_env({}) == SpikePlan(
        users=8, spawn_rate=8.0, spike_users=24, spike_at_s=20.0, spike_s=10.0, duration_s=60.0
    )


def test_shapes_read_the_runner_variables() -> None:
    env = {
        "TG_USERS": "3",
        "TG_SPAWN_RATE": "1.5",
        "TG_DURATION_S": "12",
        "TG_STEP_USERS": "2",
        "TG_STEP_S": "5",
        "TG_STEPS": "4",
        "TG_SPIKE_USERS": "10",
        "TG_SPIKE_AT_S": "4",
        "TG_SPIKE_S": "2",
    }

    assert steady_from_env(env) == SteadyPlan(users=3, spawn_rate=1.5, duration_s=12.0)
    assert step_from_env(env) == StepPlan(step_users=2, step_s=5.0, steps=4, spawn_rate=1.5)
    assert spike_from_env(env) == SpikePlan(
        users=3, spawn_rate=1.5, spike_users=10, spike_at_s=4.0, spike_s=2.0, duration_s=12.0
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TG_USERS": "0"}, "TG_USERS"),
        ({"TG_USERS": "many"}, "TG_USERS: want an integer"),
        ({"TG_DURATION_S": "-1"}, "TG_DURATION_S"),
        ({"TG_SPAWN_RATE": "nan"}, "TG_SPAWN_RATE"),
    ],
)
def test_a_bad_variable_is_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        steady_from_env(env)


def test_trace_rate_counts_the_arrivals_of_the_next_window() -> None:
    plan = TracePlan(tuple(0.5 * i for i in range(40)))  # 2/s for 20 s

    assert plan.rate_at(0.0) == pytest.approx(20 / WINDOW_S)
    assert plan.rate_at(15.0) == pytest.approx(10 / WINDOW_S)  # 15.0 .. 19.5
    assert plan.rate_at(25.0) == 0.0
    assert plan.end_s == pytest.approx(19.5 + DRAIN_S)


def test_trace_pool_is_littles_law_with_headroom() -> None:
    plan = TracePlan(tuple(0.1 * i for i in range(1000)))  # 10 arrivals/s

    # in flight = 10/s x 1.5 s = 15; the pool doubles it for bursts, plus one
    assert plan.pool_size(0.0, 1.5) == int(HEADROOM * 15) + 1
    assert plan.pool_size(0.0, 0.0) == 1
    assert plan.pool_size(200.0, 5.0) == 1  # after the slice: nothing to send


def test_mean_latency_uses_the_prior_until_enough_answers() -> None:
    assert mean_latency_s(0, 0.0) == PRIOR_LATENCY_S
    assert mean_latency_s(MIN_SAMPLES - 1, 99_000.0) == PRIOR_LATENCY_S
    assert mean_latency_s(MIN_SAMPLES, MIN_SAMPLES * 250.0) == pytest.approx(0.25)


def test_arrival_queue_hands_out_requests_in_order_with_due_times() -> None:
    items = (ReplayItem(0.0, 10, 5), ReplayItem(0.5, 20, 6), ReplayItem(2.0, 30, 7))
    queue = ArrivalQueue(items)

    assert queue.claim() is None  # not started: nothing is due yet
    queue.start(100.0)
    claims = [queue.claim() for _ in range(4)]

    assert [(c.item, c.due) for c in claims if c is not None] == [
        (items[0], 100.0),
        (items[1], 100.5),
        (items[2], 102.0),
    ]
    assert claims[3] is None
    assert queue.in_flight == 3 and not queue.finished_all
    for _ in items:
        queue.done()
    assert queue.in_flight == 0 and queue.finished_all


def test_trace_slice_is_compressed_and_cut_to_the_run(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    rows = [f"2023-11-16 18:00:{s:02d}.0000000,{100 + s},{s + 1}" for s in range(0, 40, 2)]
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "\n".join(rows) + "\n")
    env = {
        "TG_TRACE": str(path),
        "TG_TRACE_START_S": "10",
        "TG_TRACE_RATE_SCALE": "4",
        "TG_DURATION_S": "2.5",  # run seconds: trace seconds [10, 20)
    }

    items = trace_items_from_env(env)

    assert [i.send_at_s for i in items] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert (items[0].prompt_tokens, items[0].output_tokens) == (110, 11)
    assert trace_plan(items).send_at_s == (0.0, 0.5, 1.0, 1.5, 2.0)


def test_an_empty_trace_slice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00.0,5,5\n")

    with pytest.raises(ValueError, match="no request"):
        trace_items_from_env({"TG_TRACE": str(path), "TG_TRACE_START_S": "100"})


def test_the_plans_and_traffic_modules_do_not_import_locust() -> None:
    code = (
        "import sys, loadtests.shapes.schedule, loadtests.locustfiles.traffic;"
        "bad = sorted(m for m in ('locust', 'gevent') if m in sys.modules);"
        "sys.exit(', '.join(bad) or None)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
