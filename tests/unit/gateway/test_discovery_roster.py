"""The roster: aliases expand a group in place to its members, changes swap whole tuples and
are announced once, retired members stay callable until two idle sweeps let them leave."""

from __future__ import annotations

import dataclasses

from gateway.config import Alias, Config, Deployment, ServerSettings
from gateway.discovery.group import member
from gateway.discovery.settings import Discovery
from gateway.roster import Change, Roster
from tests.support.deployments import local, paid


def group(name: str = "qwen-7b") -> Deployment:
    """A discovery group of local Qwen workers."""
    return dataclasses.replace(local(name), base_url=None, discovery=Discovery("w.svc"))


def config() -> Config:
    deployments = {d.name: d for d in (local("static"), group(), paid())}
    aliases = {
        "chat": Alias("chat", ("static", "qwen-7b", "mini")),
        "pods": Alias("pods", ("qwen-7b",)),
    }
    return Config(server=ServerSettings(), deployments=deployments, aliases=aliases)


class Recorder:
    def __init__(self) -> None:
        self.changes: list[Change] = []

    def roster_changed(self, change: Change) -> None:
        self.changes.append(change)


def names(deployments: tuple[Deployment, ...]) -> list[str]:
    return [d.name for d in deployments]


def test_a_group_starts_empty_and_expands_in_its_configured_position() -> None:
    roster = Roster(config())
    assert names(roster.deployments_for("chat")) == ["static", "mini"]
    assert roster.deployments_for("pods") == ()
    assert set(roster.live) == {"static", "mini"}
    roster.set_members("qwen-7b", [member(group(), a) for a in ("10.0.0.9", "10.0.0.1")])
    assert names(roster.deployments_for("chat")) == [
        "static",
        "qwen-7b@10.0.0.1:8000",
        "qwen-7b@10.0.0.9:8000",
        "mini",
    ]
    assert set(roster.live) == {"static", "mini", "qwen-7b@10.0.0.1:8000", "qwen-7b@10.0.0.9:8000"}


def test_member_names_and_urls_bracket_ipv6() -> None:
    four, six = member(group(), "10.1.2.3"), member(group(), "fd00::7")
    assert (four.name, four.base_url) == ("qwen-7b@10.1.2.3:8000", "http://10.1.2.3:8000/v1")
    assert (six.name, six.base_url) == ("qwen-7b@[fd00::7]:8000", "http://[fd00::7]:8000/v1")
    assert (four.discovery, four.group, four.local) == (None, "qwen-7b", True)


def test_changes_are_announced_once_and_an_unchanged_answer_is_silent() -> None:
    roster, recorder = Roster(config()), Recorder()
    roster.subscribe(recorder)
    a, b = member(group(), "10.0.0.1"), member(group(), "10.0.0.2")
    roster.set_members("qwen-7b", [a])
    before = roster.deployments_for("pods")
    assert roster.set_members("qwen-7b", [member(group(), "10.0.0.1")]) == Change()
    assert roster.deployments_for("pods") is before  # nothing swapped
    roster.set_members("qwen-7b", [b])
    assert recorder.changes == [Change(joined=(a,)), Change(joined=(b,), retired=(a,))]


def test_a_retired_member_leaves_after_two_idle_sweeps_only() -> None:
    roster, recorder = Roster(config()), Recorder()
    roster.subscribe(recorder)
    a = member(group(), "10.0.0.1")
    roster.set_members("qwen-7b", [a])
    roster.set_members("qwen-7b", [])
    assert a.name not in roster.live
    busy = {a.name: True}
    assert roster.sweep(busy.__getitem__) == Change()  # a call is still in flight
    busy[a.name] = False
    assert roster.sweep(busy.__getitem__) == Change()  # idle once: its accounting may run
    assert roster.sweep(busy.__getitem__) == Change(left=(a,))
    assert roster.sweep(busy.__getitem__) == Change()
    assert recorder.changes[-1] == Change(left=(a,))


def test_a_member_that_comes_back_before_leaving_never_leaves() -> None:
    roster = Roster(config())
    a = member(group(), "10.0.0.1")
    roster.set_members("qwen-7b", [a])
    roster.set_members("qwen-7b", [])
    roster.sweep(lambda _: False)
    assert roster.set_members("qwen-7b", [a]) == Change(joined=(a,))
    roster.sweep(lambda _: False)
    assert roster.sweep(lambda _: False) == Change()
    assert roster.members("qwen-7b") == (a,)
