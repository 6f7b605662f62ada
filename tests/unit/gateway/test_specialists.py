"""Specialists on an alias: config validation naming the field, the text a request is
classified on, the roster expanding a specialist's discovery group, and the dispatcher
deciding among the specialist's deployments (or the general ones when none is available)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from time import monotonic
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gateway.config import Alias, Config, ConfigError, ServerSettings
from gateway.controls import Controls
from gateway.discovery.group import member
from gateway.discovery.settings import Discovery
from gateway.dispatch import Dispatcher
from gateway.features import ParsedRequest
from gateway.roster import Roster
from gateway.specialists import request_text
from gateway.stats.fleet import FleetStats
from policies.specialist import build_classifier
from tests.support.deployments import local
from tests.unit.gateway.test_config import Raw, load, minimal

FENCE = "```"
CODE = f"Why does this fail?\n{FENCE}python\nprint(1 +)\n{FENCE}"
MATH = "Solve for x: $3x^2 - 12 = 0$."
CHAT = "Suggest a name for a coffee shop."


def with_specialists(specialists: object, classifier: object = None) -> Raw:
    raw = minimal()
    raw["deployments"].append({**raw["deployments"][0], "name": "coder"})
    alias: Raw = {"deployments": ["local-a"], "specialists": specialists}
    if classifier is not None:
        alias["classifier"] = classifier
    raw["aliases"]["auto"] = alias
    return raw


def test_specialists_and_classifier_overrides_load(tmp_path: Path) -> None:
    raw = with_specialists(
        {"code": {"deployments": ["coder"], "min_score": 5}, "math": {"deployments": ["paid"]}},
        {"weights": {"code_fence": 6}, "max_chars": 100},
    )
    alias = load(tmp_path, raw).aliases["auto"]
    assert alias.specialists == {"code": ("coder",), "math": ("paid",)}
    assert alias.classifier is not None
    assert alias.classifier.min_scores == {"code": 5.0, "math": 3.5}
    assert alias.classifier.max_chars == 100
    assert {r.name: r.weight for r in alias.classifier.rules}["code_fence"] == 6.0
    plain = load(tmp_path, minimal()).aliases["chat"]
    assert (plain.specialists, plain.classifier) == ({}, None)


@pytest.mark.parametrize(
    ("specialists", "classifier", "message"),
    [
        ({"poetry": {"deployments": ["coder"]}}, None, r"aliases\.auto\.specialists\.poetry: "),
        ({"code": {"deployments": ["nope"]}}, None, r"code\.deployments\[0\]: unknown deploym"),
        ({"code": {"deployments": []}}, None, r"code\.deployments: at least one"),
        ({"code": {"deployments": ["coder"], "min_score": 0}}, None, r"code\.min_score: must"),
        ({"code": {"deployments": ["coder"], "weight": 1}}, None, r"code\.weight: unknown fie"),
        ({"code": {"deployments": ["coder"]}}, {"weights": {"x": 1}}, r"classifier: unknown ru"),
        ({"code": {"deployments": ["coder"]}}, {"max_chars": -1}, r"classifier\.max_chars: m"),
        ({"code": {"deployments": ["coder"]}}, {"rules": {}}, r"classifier\.rules: unknown"),
        ({}, {"max_chars": 10}, r"aliases\.auto\.classifier: only an alias with specialists"),
    ],
)
def test_bad_specialist_config_names_the_field(
    tmp_path: Path, specialists: object, classifier: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, with_specialists(specialists, classifier))


@pytest.mark.parametrize(
    ("parsed", "text"),
    [
        ({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}, "b"),
        (
            {
                "messages": [
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "i"}]},
                    {"role": "assistant", "content": "reply"},
                ]
            },
            "x",
        ),
        ({"messages": [{"role": "system", "content": "only"}]}, ""),
        ({"prompt": ["first", "last"]}, "last"),
        ({"prompt": "0123456789abc"}, "0123456789"),
        ({"input": "embed me"}, ""),
    ],
)
def test_the_last_user_message_or_prompt_is_classified_up_to_max_chars(
    parsed: dict[str, Any], text: str
) -> None:
    assert request_text(parsed, 10) == text


def test_long_text_parts_are_cut_at_max_chars() -> None:
    parts = [{"type": "text", "text": "abcdef"}, {"type": "text", "text": "ghijkl"}]
    assert request_text({"messages": [{"role": "user", "content": parts}]}, 8) == "abcdef\ngh"


# The dispatcher on a roster: general "qwen", a coder, and a math discovery group.
MATH_GROUP = dataclasses.replace(local("qwen-math"), base_url=None, discovery=Discovery("m.svc"))
CONFIG = Config(
    server=ServerSettings(),
    deployments={d.name: d for d in (local("qwen"), local("coder"), MATH_GROUP)},
    aliases={
        "auto": Alias(
            "auto",
            ("qwen",),
            specialists={"code": ("coder",), "math": ("qwen-math",)},
            classifier=build_classifier(),
        ),
        "plain": Alias("plain", ("qwen", "coder")),
    },
)
ORDERED = Controls("ordered", None, None, None)


def ask(alias: str, text: str) -> ParsedRequest:
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": 8}
    return ParsedRequest("chat/completions", alias, False, False, body)


def routes(topic: str) -> float:
    sample = REGISTRY.get_sample_value(
        "gateway_specialist_routes_total", {"model": "auto", "topic": topic}
    )
    return sample or 0.0


@pytest.fixture
def dispatcher() -> Dispatcher:
    roster = Roster(CONFIG)
    fleet = FleetStats(roster.live.values())
    made = Dispatcher(CONFIG, {}, fleet, roster)
    for listener in (fleet, made):
        roster.subscribe(listener)
    return made


def test_the_roster_expands_a_specialist_group_to_its_members() -> None:
    roster = Roster(CONFIG)
    assert roster.specialists_for("auto", "math") == ()
    assert [d.name for d in roster.specialists_for("auto", "code")] == ["coder"]
    assert roster.specialists_for("plain", "code") == ()
    roster.set_members("qwen-math", [member(MATH_GROUP, "10.0.0.2")])
    assert [d.name for d in roster.specialists_for("auto", "math")] == ["qwen-math@10.0.0.2:8000"]
    assert [d.name for d in roster.deployments_for("auto")] == ["qwen"]


def test_each_topic_is_decided_among_its_specialists_and_the_detail_says_so(
    dispatcher: Dispatcher,
) -> None:
    dispatcher.roster.set_members("qwen-math", [member(MATH_GROUP, "10.0.0.2")])
    before = routes("code"), routes("math"), routes("general")
    code = dispatcher.decide(ask("auto", CODE), 100, ORDERED)
    math = dispatcher.decide(ask("auto", MATH), 100, ORDERED)
    chat = dispatcher.decide(ask("auto", CHAT), 100, ORDERED)
    assert code.decision.plan == ("coder",)
    assert math.decision.plan == ("qwen-math@10.0.0.2:8000",)
    assert chat.decision.plan == ("qwen",)
    assert code.decision.detail.startswith("specialist=code; coder first available")
    assert math.decision.detail.startswith("specialist=math; ")
    assert chat.decision.detail.startswith("specialist=general; ")
    assert code.specialist is not None and code.specialist.classification.fired[0] == "code_fence"
    assert (routes("code"), routes("math"), routes("general")) == tuple(b + 1 for b in before)


def test_a_specialist_with_no_available_deployment_falls_back_to_general(
    dispatcher: Dispatcher,
) -> None:
    empty = dispatcher.decide(ask("auto", MATH), 100, ORDERED)  # the group has no member yet
    assert empty.decision.plan == ("qwen",)
    assert empty.specialist is not None and not empty.specialist.fallback
    for _ in range(4):  # the coder's max_concurrency
        dispatcher.fleet.started("coder", monotonic(), prompt_tokens=1, stream=False)
    full = dispatcher.decide(ask("auto", CODE), 100, ORDERED)
    assert full.decision.plan == ("qwen",)
    assert full.specialist is not None and full.specialist.fallback
    assert full.decision.detail.startswith("specialist=general (code unavailable); qwen ")


def test_an_alias_without_specialists_does_not_classify(dispatcher: Dispatcher) -> None:
    routing = dispatcher.decide(ask("plain", CODE), 100, ORDERED)
    assert routing.specialist is None
    assert routing.decision.plan == ("qwen", "coder")
    assert not routing.decision.detail.startswith("specialist=")


def test_a_specialist_the_data_class_may_not_reach_counts_as_unavailable() -> None:
    public_coder = dataclasses.replace(local("coder"), data_classes=("public",))
    config = dataclasses.replace(CONFIG, deployments={**CONFIG.deployments, "coder": public_coder})
    roster = Roster(config)
    made = Dispatcher(config, {}, FleetStats(roster.live.values()), roster)
    public = made.decide(ask("auto", CODE), 100, ORDERED)
    private = made.decide(ask("auto", CODE), 100, ORDERED, data_class="private")
    assert public.decision.plan == ("coder",)
    assert private.decision.plan == ("qwen",)
    assert private.specialist is not None and private.specialist.fallback
    assert "specialist=general (code unavailable)" in private.decision.detail


def test_a_held_specialist_is_not_among_the_specialists_and_returns_when_enabled() -> None:
    roster = Roster(CONFIG)
    roster.set_states({"coder": "disabled"})
    assert roster.specialists_for("auto", "code") == ()
    roster.set_states({})
    assert [d.name for d in roster.specialists_for("auto", "code")] == ["coder"]
