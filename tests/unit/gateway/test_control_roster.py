"""Operator states in the roster: held deployments are never candidates, a drain ends
disabled once idle, a member's own state wins over its group's, a reloaded config retires,
joins and redefines deployments by name."""

from __future__ import annotations

import dataclasses

from gateway.config import Alias, Config, ServerSettings
from gateway.discovery.group import member
from gateway.roster import Change, Roster
from tests.support.deployments import local, paid
from tests.unit.gateway.test_discovery_roster import Recorder, config, group, names


def test_a_disabled_deployment_is_held_out_of_every_alias_until_enabled() -> None:
    roster = Roster(config())
    roster.set_states({"mini": "disabled"})
    assert names(roster.deployments_for("chat")) == ["static"]
    assert [(d.name, s) for d, s in roster.held_for("chat")] == [("mini", "disabled")]
    assert "mini" in roster.live  # still a member: its calls in flight finish
    roster.set_states({})
    assert names(roster.deployments_for("chat")) == ["static", "mini"]
    assert roster.held_for("chat") == ()


def test_a_drain_becomes_disabled_only_when_its_calls_have_finished() -> None:
    roster, recorder = Roster(config()), Recorder()
    roster.subscribe(recorder)
    roster.set_states({"static": "draining"})
    assert roster.state("static") == "draining"
    assert roster.settle(lambda _: True) == Change()
    assert roster.state("static") == "draining"
    roster.settle(lambda _: False)
    assert roster.state("static") == "disabled"
    assert names(roster.deployments_for("chat")) == ["mini"]
    static = roster.live["static"]
    assert recorder.changes == [Change(restated=(static,)), Change(restated=(static,))]
    roster.set_states({})  # enabled: a later drain starts over
    roster.set_states({"static": "draining"})
    assert roster.state("static") == "draining"


def test_a_group_holds_its_present_and_future_members_and_a_member_may_differ() -> None:
    roster = Roster(config())
    a, b = member(group(), "10.0.0.1"), member(group(), "10.0.0.2")
    roster.set_members("qwen-7b", [a])
    roster.set_states({"qwen-7b": "disabled"})
    assert roster.deployments_for("pods") == ()
    roster.set_members("qwen-7b", [a, b])
    assert roster.state(b.name) == "disabled"
    roster.set_states({"qwen-7b": "disabled", a.name: "active"})
    assert names(roster.deployments_for("pods")) == [a.name]
    assert [(d.name, s) for d, s in roster.held_for("pods")] == [(b.name, "disabled")]


def test_an_unchanged_wish_is_silent() -> None:
    roster, recorder = Roster(config()), Recorder()
    roster.subscribe(recorder)
    roster.set_states({"mini": "disabled", "ghost": "disabled"})
    roster.set_states({"mini": "disabled", "ghost": "disabled"})
    assert recorder.changes == [Change(restated=(roster.live["mini"],))]


def test_a_reload_retires_dropped_deployments_joins_new_ones_and_redefines_changed_ones() -> None:
    roster, recorder = Roster(config()), Recorder()
    roster.subscribe(recorder)
    old = config()
    cheaper = dataclasses.replace(paid(), max_concurrency=3)
    deployments = {"qwen-7b": group(), "mini": cheaper, "extra": local("extra")}
    aliases = {
        "chat": Alias("chat", ("extra", "qwen-7b", "mini")),
        "pods": Alias("pods", ("qwen-7b",)),
        "new": Alias("new", ("extra",)),
    }
    change = roster.reconfigure(Config(ServerSettings(), deployments, aliases))
    assert change == Change(
        joined=(cheaper, deployments["extra"]), retired=(old.deployments["static"],)
    )
    assert names(roster.deployments_for("new")) == ["extra"]
    assert roster.live["mini"] is cheaper
    assert "static" not in roster.live
    roster.sweep(lambda _: False)
    assert roster.sweep(lambda _: False) == Change(left=(old.deployments["static"],))
    assert recorder.changes[0] == change
