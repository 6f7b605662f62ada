"""The weighted policy and discovery groups: a weight given to a group is shared equally by
its admissible members, however many there are, and a member named itself keeps its own."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

from policies.compose import build_policy
from policies.model import Candidate, CircuitState
from tests.unit.policies.fleets import local, paid, request


def member(address: str, circuit: CircuitState = "closed") -> Candidate:
    return replace(local(f"qwen-7b@{address}:8000", circuit=circuit), group="qwen-7b")


def primaries(candidates: list[Candidate], weights: Mapping[str, float]) -> Counter[str]:
    policy = build_policy("weighted", {"weights": weights})
    return Counter(policy.decide(request(draw=i / 1000), candidates).plan[0] for i in range(1000))


def test_a_group_weight_is_split_by_its_members() -> None:
    pods = [member("10.0.0.1"), member("10.0.0.2"), member("10.0.0.3"), member("10.0.0.4")]
    found = primaries([*pods, paid("p")], {"qwen-7b": 80, "p": 20})
    assert found == {**{p.name: 200 for p in pods}, "p": 200}


def test_an_unavailable_member_leaves_its_share_to_the_others() -> None:
    pods = [member("10.0.0.1"), member("10.0.0.2", circuit="open")]
    assert primaries([*pods, paid("p")], {"qwen-7b": 50, "p": 50}) == {
        "qwen-7b@10.0.0.1:8000": 500,
        "p": 500,
    }


def test_a_member_named_itself_keeps_its_weight_out_of_the_group_share() -> None:
    pods = [member("10.0.0.1"), member("10.0.0.2"), member("10.0.0.3")]
    weights = {"qwen-7b": 60, "qwen-7b@10.0.0.3:8000": 40}
    assert primaries(pods, weights) == {
        "qwen-7b@10.0.0.1:8000": 300,
        "qwen-7b@10.0.0.2:8000": 300,
        "qwen-7b@10.0.0.3:8000": 400,
    }
