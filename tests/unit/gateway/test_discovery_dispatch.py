"""The dispatcher reads the roster: a decision names the members live at that moment, a
member retired after the decision gets no call, and the alias's healthy count follows."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from prometheus_client import REGISTRY

from gateway.config import Alias, Config, ServerSettings
from gateway.controls import Controls
from gateway.discovery.group import member
from gateway.discovery.settings import Discovery
from gateway.dispatch import Dispatcher
from gateway.errors import UpstreamUnavailable
from gateway.features import ParsedRequest
from gateway.roster import Roster
from gateway.stats.fleet import FleetStats
from gateway.upstreams.base import Call
from tests.support.deployments import local

GROUP = dataclasses.replace(local("qwen-7b"), base_url=None, discovery=Discovery("w.svc"))
REQUEST = ParsedRequest("chat/completions", "pods", False, False, {"max_tokens": 8})
CALL = Call("chat/completions", b"{}", {}, False, False, "req-1")


def healthy() -> float | None:
    return REGISTRY.get_sample_value("gateway_alias_healthy_deployments", {"model": "pods"})


def test_a_member_retired_after_the_decision_gets_no_call() -> None:
    config = Config(
        server=ServerSettings(),
        deployments={"qwen-7b": GROUP},
        aliases={"pods": Alias("pods", ("qwen-7b",))},
    )
    roster = Roster(config)
    fleet = FleetStats(roster.live.values())
    dispatcher = Dispatcher(config, {}, fleet, roster)  # no upstream: none may be called
    for listener in (fleet, dispatcher):
        roster.subscribe(listener)
    a, b = member(GROUP, "10.0.0.1"), member(GROUP, "10.0.0.2")
    roster.set_members("qwen-7b", [a, b])
    assert healthy() == 2
    routing = dispatcher.decide(REQUEST, 100, Controls("ordered", None, None, None))
    assert routing.decision.plan == (a.name, b.name)
    roster.set_members("qwen-7b", [])
    assert healthy() == 0
    assert dispatcher.plan(routing) == [a, b]  # the plan still reads as it was made
    with pytest.raises(UpstreamUnavailable, match="retired from the roster"):
        asyncio.run(dispatcher.complete(routing, CALL))
    assert (fleet.inflight(a.name), fleet.inflight(b.name)) == (0, 0)
