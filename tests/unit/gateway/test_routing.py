"""choose_plan: configured order, errored deployments to the back, rate-limited ones left
out until their Retry-After passes, and the wait when nothing may be tried."""

from __future__ import annotations

import pytest

from gateway.accounting.pricing import PriceBook
from gateway.config import Config, parse_config
from gateway.routing import FleetState, choose_plan

NAMES = ("a", "b", "c")


@pytest.fixture
def config() -> Config:
    deployments = [
        {
            "name": n,
            "base_url": f"http://{n}.local/v1",
            "model": "m",
            "local": True,
            "gpu_hour_usd": 1,
        }
        for n in NAMES
    ]
    aliases = {"chat": {"deployments": list(NAMES)}, "solo": {"deployments": ["b"]}}
    return parse_config({"deployments": deployments, "aliases": aliases}, PriceBook({}))


@pytest.fixture
def fleet(config: Config) -> FleetState:
    return FleetState(config)


def plan(config: Config, fleet: FleetState, now: float, alias: str = "chat") -> list[str]:
    deployments, wait = choose_plan(config, alias, fleet, now)
    assert wait is None
    return [d.name for d in deployments]


def test_healthy_fleet_is_tried_in_configured_order(config: Config, fleet: FleetState) -> None:
    assert plan(config, fleet, now=100.0) == ["a", "b", "c"]
    assert plan(config, fleet, now=100.0, alias="solo") == ["b"]


@pytest.mark.parametrize(
    ("cooling", "expected"),
    [
        pytest.param(("a",), ["b", "c", "a"], id="first-cooling"),
        pytest.param(("b",), ["a", "c", "b"], id="middle-cooling"),
        pytest.param(("a", "b"), ["c", "a", "b"], id="two-cooling-keep-their-order"),
        pytest.param(NAMES, ["a", "b", "c"], id="all-cooling-still-tried"),
    ],
)
def test_deployment_cooling_after_errors_goes_to_the_back(
    config: Config, fleet: FleetState, cooling: tuple[str, ...], expected: list[str]
) -> None:
    for name in cooling:
        fleet.cool_down(name, until=105.0, rate_limited=False)
    assert plan(config, fleet, now=100.0) == expected


def test_rate_limited_deployment_is_left_out(config: Config, fleet: FleetState) -> None:
    fleet.cool_down("a", until=130.0, rate_limited=True)
    fleet.cool_down("b", until=105.0, rate_limited=False)
    assert plan(config, fleet, now=100.0) == ["c", "b"]


def test_when_all_are_rate_limited_the_shortest_wait_is_returned(
    config: Config, fleet: FleetState
) -> None:
    for name, until in zip(NAMES, (130.0, 104.5, 120.0), strict=True):
        fleet.cool_down(name, until=until, rate_limited=True)
    deployments, wait = choose_plan(config, "chat", fleet, now=100.0)
    assert (deployments, wait) == ([], 4.5)


def test_no_wait_is_returned_while_something_may_be_tried(
    config: Config, fleet: FleetState
) -> None:
    fleet.cool_down("a", until=130.0, rate_limited=True)
    fleet.cool_down("b", until=130.0, rate_limited=True)
    fleet.cool_down("c", until=130.0, rate_limited=False)
    deployments, wait = choose_plan(config, "chat", fleet, now=100.0)
    assert ([d.name for d in deployments], wait) == (["c"], None)


def test_recovered_ends_a_cooldown(config: Config, fleet: FleetState) -> None:
    fleet.cool_down("a", until=130.0, rate_limited=True)
    fleet.cool_down("b", until=130.0, rate_limited=False)
    fleet.recovered("a")
    fleet.recovered("b")
    assert plan(config, fleet, now=100.0) == ["a", "b", "c"]
    assert (fleet["a"].failing_until, fleet["a"].rate_limited_until) == (0.0, 0.0)


@pytest.mark.parametrize("rate_limited", [True, False], ids=["rate-limited", "errored"])
@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(109.9, False, id="before-expiry"),
        pytest.param(110.0, True, id="at-expiry"),
        pytest.param(500.0, True, id="long-after"),
    ],
)
def test_cooldowns_expire_with_time(
    config: Config, fleet: FleetState, rate_limited: bool, now: float, expected: bool
) -> None:
    fleet.cool_down("a", until=110.0, rate_limited=rate_limited)
    first = choose_plan(config, "chat", fleet, now)[0]
    assert (first[0].name == "a") is expected


def test_a_shorter_cooldown_does_not_shorten_a_longer_one(
    config: Config, fleet: FleetState
) -> None:
    fleet.cool_down("a", until=130.0, rate_limited=False)
    fleet.cool_down("a", until=110.0, rate_limited=False)
    assert plan(config, fleet, now=120.0) == ["b", "c", "a"]


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        pytest.param(
            (200.0, False), (110.0, True), ["b", "c", "a"], id="retry-after-over-error-cooling"
        ),
        pytest.param((200.0, True), (110.0, False), ["b", "c"], id="retry-after-still-running"),
    ],
)
def test_rate_limit_and_error_cooldowns_on_one_deployment_keep_their_own_meaning(
    config: Config,
    fleet: FleetState,
    first: tuple[float, bool],
    second: tuple[float, bool],
    expected: list[str],
) -> None:
    # At now=150 only the 200 s cooldown is running: an error cooldown moves "a" to the
    # back, a Retry-After leaves it out.
    fleet.cool_down("a", until=first[0], rate_limited=first[1])
    fleet.cool_down("a", until=second[0], rate_limited=second[1])
    assert plan(config, fleet, now=150.0) == expected
