"""DnsResolver and GroupWatcher against a real DNS server on loopback
(``tests/support/dns_server.py``): answers become members, NXDOMAIN and empty answers empty
the group, SERVFAIL and silence keep the last members and are counted."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import REGISTRY

from gateway.config import Alias, Config, ServerSettings
from gateway.discovery.group import GroupWatcher
from gateway.discovery.resolver import DnsResolver, ResolveError
from gateway.discovery.settings import Discovery, Nameserver
from gateway.roster import Change, Roster
from tests.support.deployments import local
from tests.support.dns_server import DnsServer

NAME = "qwen-workers.default.svc.cluster.local"


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with DnsServer().running() as server:
        yield server


def resolver(server: DnsServer, timeout_s: float = 0.3) -> DnsResolver:
    return DnsResolver(Nameserver("127.0.0.1", server.port), timeout_s)


def resolve(server: DnsServer, name: str = NAME) -> frozenset[str]:
    return asyncio.run(resolver(server).addresses(name))


def test_a_and_aaaa_records_are_the_addresses(dns_server: DnsServer) -> None:
    dns_server.set(NAME, "10.0.0.1", "10.0.0.2", "fd00::7")
    assert resolve(dns_server) == {"10.0.0.1", "10.0.0.2", "fd00::7"}
    assert resolve(dns_server, NAME.upper() + ".") == {"10.0.0.1", "10.0.0.2", "fd00::7"}


def test_nxdomain_and_a_name_without_records_are_empty(dns_server: DnsServer) -> None:
    assert resolve(dns_server) == frozenset()
    dns_server.set(NAME)
    assert resolve(dns_server) == frozenset()


@pytest.mark.parametrize("failure", ["servfail", "drop"])
def test_servfail_and_silence_are_errors_within_the_timeout(
    dns_server: DnsServer, failure: str
) -> None:
    dns_server.set(NAME, "10.0.0.1")
    dns_server.fail("servfail" if failure == "servfail" else "drop")
    started = time.monotonic()
    with pytest.raises(ResolveError):
        resolve(dns_server)
    assert time.monotonic() - started < 1.5


def watched(server: DnsServer) -> tuple[Roster, GroupWatcher]:
    group = dataclasses.replace(
        local("qwen-7b"), base_url=None, discovery=Discovery(NAME, 8000, 0.05)
    )
    config = Config(
        server=ServerSettings(),
        deployments={"qwen-7b": group},
        aliases={"pods": Alias("pods", ("qwen-7b",))},
    )
    roster = Roster(config)
    return roster, GroupWatcher(group, resolver(server, 0.2), roster, lambda _: False)


def members(roster: Roster) -> list[str]:
    return [d.name for d in roster.deployments_for("pods")]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_watcher_follows_answers_and_keeps_members_through_failures(
    dns_server: DnsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.discovery.group")
    roster, watcher = watched(dns_server)
    errors = sample("gateway_discovery_errors_total", group="qwen-7b")
    added = sample("gateway_discovery_changes_total", group="qwen-7b", change="added")

    async def scenario() -> None:
        dns_server.set(NAME, "10.0.0.2", "10.0.0.1")
        await watcher.refresh()
        assert members(roster) == ["qwen-7b@10.0.0.1:8000", "qwen-7b@10.0.0.2:8000"]
        assert sample("gateway_discovery_members", group="qwen-7b") == 2
        for failure in ("servfail", "drop"):
            dns_server.fail(failure)
            await watcher.refresh()
            await watcher.refresh()
            assert len(members(roster)) == 2
        dns_server.fail(None)
        dns_server.set(NAME, "10.0.0.3")
        await watcher.refresh()
        assert members(roster) == ["qwen-7b@10.0.0.3:8000"]
        dns_server.remove(NAME)
        await watcher.refresh()
        assert members(roster) == []
        assert sample("gateway_discovery_members", group="qwen-7b") == 0

    asyncio.run(scenario())
    assert sample("gateway_discovery_errors_total", group="qwen-7b") == errors + 4
    assert sample("gateway_discovery_changes_total", group="qwen-7b", change="added") == added + 3
    warnings = [r for r in caplog.records if "cannot resolve" in r.getMessage()]
    assert len(warnings) == 1  # once per run of failures
    assert any("resolves again" in r.getMessage() for r in caplog.records)


def test_run_refreshes_every_interval_and_lets_retired_members_leave(
    dns_server: DnsServer,
) -> None:
    roster, watcher = watched(dns_server)
    left: list[str] = []

    class Leaving:
        def roster_changed(self, change: Change) -> None:
            left.extend(d.name for d in change.left)

    roster.subscribe(Leaving())
    dns_server.set(NAME, "10.0.0.1")

    async def until(done: Callable[[], bool]) -> None:
        for _ in range(100):
            if done():
                return
            await asyncio.sleep(0.02)

    async def scenario() -> None:
        running = asyncio.create_task(watcher.run())
        try:
            await until(lambda: bool(members(roster)))
            assert members(roster) == ["qwen-7b@10.0.0.1:8000"]
            dns_server.set(NAME)
            await until(lambda: bool(left))
            assert (members(roster), left) == ([], ["qwen-7b@10.0.0.1:8000"])
        finally:
            running.cancel()

    asyncio.run(scenario())
