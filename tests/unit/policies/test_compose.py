"""Building policies from YAML params: every name, and every way a spec can be wrong."""

from __future__ import annotations

import pytest

from policies.compose import build_policy, known_policies


@pytest.mark.parametrize("name", known_policies())
def test_build_policy_returns_each_registered_policy_by_name(name: str) -> None:
    assert build_policy(name, {}).name == name
    assert build_policy(name).name == name


def test_the_registry_holds_the_built_in_policies() -> None:
    expected = {"ordered", "cost", "latency", "spillover", "budget", "weighted"}
    assert set(known_policies()) == expected


@pytest.mark.parametrize("name", ["cheapest", "", "Spillover"])
def test_an_unknown_policy_is_refused_listing_the_known_ones(name: str) -> None:
    with pytest.raises(ValueError, match=r"unknown policy .*known: budget, cost, latency"):
        build_policy(name, {})


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        pytest.param(
            "spillover",
            {"slo": 1.0},
            r"unknown param 'slo' \(known: headroom, slo_ttft_s\)",
            id="typo",
        ),
        pytest.param(
            "ordered", {"x": 1}, r"unknown param 'x' \(known: none\)", id="ordered-takes-none"
        ),
        pytest.param("budget", {"treshold": 0.1}, r"unknown param 'treshold'", id="budget-typo"),
        pytest.param(
            "budget",
            {"inner_params": {"bogus": 1}},
            r"'spillover': unknown param 'bogus'",
            id="inner",
        ),
        pytest.param("weighted", {"weight": {}}, r"unknown param 'weight'", id="weighted-typo"),
    ],
)
def test_an_unknown_param_is_refused_by_name(
    name: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_policy(name, params)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        pytest.param("spillover", {"slo_ttft_s": 0}, r"'slo_ttft_s' must be in > 0", id="zero-slo"),
        pytest.param("cost", {"slo_ttft_s": "1s"}, r"must be a number", id="string-slo"),
        pytest.param("latency", {"slo_ttft_s": True}, r"must be a number", id="bool-slo"),
        pytest.param("spillover", {"slo_ttft_s": float("nan")}, r"must be in", id="nan-slo"),
        pytest.param("budget", {"threshold": 1.5}, r"must be in \[0, 1\]", id="threshold-over-1"),
        pytest.param("budget", {"inner": "budget"}, r"'inner' must be one of", id="self-inner"),
        pytest.param("budget", {"inner": "nope"}, r"'inner' must be one of", id="unknown-inner"),
        pytest.param("budget", {"inner_params": [1]}, r"must be a mapping", id="inner-not-map"),
        pytest.param("weighted", {"weights": {"a": -1}}, r"weight of 'a'", id="negative-weight"),
        pytest.param("weighted", {"weights": {"a": "x"}}, r"weight of 'a'", id="string-weight"),
        pytest.param("weighted", {"weights": [1]}, r"must be a mapping", id="weights-not-map"),
    ],
)
def test_a_bad_param_value_is_refused_naming_the_param(
    name: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_policy(name, params)


def test_params_that_are_not_a_mapping_are_refused() -> None:
    with pytest.raises(ValueError, match=r"params must be a mapping"):
        build_policy("cost", [("slo_ttft_s", 1.0)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        pytest.param("cost", {"slo_ttft_s": 0.5}, id="cost-slo"),
        pytest.param("latency", {"slo_ttft_s": 2}, id="latency-int-slo"),
        pytest.param("budget", {"threshold": 0, "inner": "cost", "inner_params": {}}, id="budget"),
        pytest.param("weighted", {"weights": {"qwen-new": 5, "qwen-old": 95}}, id="weights"),
    ],
)
def test_valid_params_build(name: str, params: dict[str, object]) -> None:
    assert build_policy(name, params).name == name
