"""``/admin/deployments`` through HTTP on a real roster, dispatcher and in-process control
store: the listing, disable/enable/drain with their effect on routing, and the 4xx errors."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gateway.accounting.memory_store import MemoryStore
from gateway.control.store import MemoryControl
from gateway.control.sync import Control
from gateway.controls import Controls
from gateway.discovery.group import member
from gateway.dispatch import Dispatcher
from gateway.errors import RoutingRefused
from gateway.features import ParsedRequest
from gateway.roster import Roster
from gateway.stats.fleet import FleetStats
from tests.unit.gateway.test_admin_routes import AUTH, MASTER, MASTER_ENV, Client, make_accounting
from tests.unit.gateway.test_discovery_roster import config, group

REQUEST = ParsedRequest("chat/completions", "chat", False, False, {"max_tokens": 8})
ORDERED = Controls("ordered", None, None, None)


class Gateway:
    def __init__(self) -> None:
        self.roster = Roster(config())
        fleet = FleetStats(self.roster.live.values())
        self.dispatcher = Dispatcher(config(), {}, fleet, self.roster)
        self.control = Control(self.roster, MemoryControl(), lambda n: fleet.inflight(n) > 0)
        for listener in (fleet, self.dispatcher, self.control):
            self.roster.subscribe(listener)
        self.client = Client(make_accounting(MemoryStore()))
        self.client.state |= {"dispatcher": self.dispatcher, "control": self.control}

    def post(self, path: str) -> httpx.Response:
        return self.client.post(path, headers=AUTH)

    def plan(self) -> tuple[str, ...]:
        return self.dispatcher.decide(REQUEST, 100, ORDERED).decision.plan


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Gateway:
    monkeypatch.setenv(MASTER_ENV, MASTER)
    return Gateway()


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    found: dict[str, Any] = response.json()["error"]
    return found


def test_the_listing_has_every_deployment_group_and_member_with_its_state(
    gateway: Gateway,
) -> None:
    gateway.roster.set_members("qwen-7b", [member(group(), "10.0.0.1")])
    rows = gateway.client.get("/admin/deployments", headers=AUTH).json()["data"]
    assert [(r["name"], r["kind"], r["state"]) for r in rows] == [
        ("static", "deployment", "active"),
        ("qwen-7b", "group", "active"),
        ("mini", "deployment", "active"),
        ("qwen-7b@10.0.0.1:8000", "member", "active"),
    ]
    assert rows[2] | {"provider": "openai_compatible", "local": False, "inflight": 0} == rows[2]
    assert rows[2]["circuit"] == "closed"


def test_disable_takes_it_out_of_plans_and_enable_brings_it_back(gateway: Gateway) -> None:
    assert gateway.plan() == ("static", "mini")
    reply = gateway.post("/admin/deployments/mini/disable")
    assert reply.status_code == 200
    assert (
        reply.json()["data"][0] | {"name": "mini", "state": "disabled"} == reply.json()["data"][0]
    )
    assert gateway.plan() == ("static",)
    gateway.post("/admin/deployments/static/disable")
    with pytest.raises(RoutingRefused, match=r"held out by an operator: static \(disabled\)"):
        gateway.dispatcher.plan(gateway.dispatcher.decide(REQUEST, 100, ORDERED))
    gateway.post("/admin/deployments/mini/enable")
    gateway.post("/admin/deployments/static/enable")
    assert gateway.plan() == ("static", "mini")
    assert gateway.roster.wanted == {}


def test_a_drain_is_disabled_once_nothing_is_in_flight(gateway: Gateway) -> None:
    fleet = gateway.dispatcher.fleet
    ticket = fleet.started("mini", 1.0)

    async def drain() -> list[str]:
        task = asyncio.create_task(gateway.control.run())
        await gateway.control.change("mini", "drain")
        states: list[str] = [gateway.roster.state("mini")]
        await asyncio.sleep(0.2)
        states.append(gateway.roster.state("mini"))
        fleet.finished(ticket, 2.0, ok=True)
        await asyncio.sleep(0.2)
        states.append(gateway.roster.state("mini"))
        task.cancel()
        return states

    assert asyncio.run(drain()) == ["draining", "draining", "disabled"]
    assert gateway.post("/admin/deployments/static/drain").json()["data"][0]["state"] == "disabled"


def test_enabling_a_member_of_a_disabled_group_stores_its_own_state(gateway: Gateway) -> None:
    name = "qwen-7b@10.0.0.1:8000"
    gateway.post("/admin/deployments/qwen-7b/disable")
    reply = gateway.post(f"/admin/deployments/{name}/enable")  # not present yet: accepted
    assert reply.json()["data"] == [
        {"name": name, "kind": "member", "state": None, "wanted": "active"}
    ]
    gateway.roster.set_members("qwen-7b", [member(group(), "10.0.0.1")])
    assert gateway.roster.state(name) == "active"


def test_an_unknown_name_is_a_404_that_says_where_the_names_are(gateway: Gateway) -> None:
    found = error(gateway.post("/admin/deployments/gpt-9/disable"), 404)
    assert found["type"] == "not_found_error"
    assert "'gpt-9'" in found["message"]
    assert "GET /admin/deployments" in found["message"]
    assert error(gateway.post("/admin/deployments/nogroup@1.2.3.4:80/drain"), 404)
    assert error(gateway.post("/admin/deployments/qwen-7b@nowhere:80/drain"), 404)
    assert error(gateway.post("/admin/deployments/qwen-7b@fd00::7:80/drain"), 404)
    assert gateway.post("/admin/deployments/qwen-7b@[fd00::7]:8000/drain").status_code == 200


def test_an_unknown_action_is_a_400_and_a_wrong_method_a_405(gateway: Gateway) -> None:
    found = error(gateway.post("/admin/deployments/mini/reboot"), 400)
    assert "disable|enable|drain" in found["message"]
    assert found["param"] == "action"
    assert error(gateway.client.get("/admin/deployments/mini/disable", headers=AUTH), 405)
    assert error(gateway.client.post("/admin/deployments/mini/disable"), 401)
