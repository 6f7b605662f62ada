"""Config reload: what needs a restart is named and rejected, an invalid file is rejected
with its field path, a valid one is swapped into the roster, dispatcher and model catalog
(operator states kept), and polling reloads a file only when its content changed and settled."""

from __future__ import annotations

import asyncio
import copy
import logging
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gateway.config import load_config
from gateway.dispatch import Dispatcher
from gateway.reload import Reloader, needs_restart
from gateway.roster import Roster
from gateway.routes.models import ModelCatalog
from gateway.stats.fleet import FleetStats
from tests.support.services import demo_deployment, local_deployment, write_config

BASE: dict[str, Any] = {
    "server": {"config_poll_s": 0.05},
    "deployments": [local_deployment("qwen", 9), demo_deployment("openai-gpt-4o-mini")],
    "aliases": {"chat": {"deployments": ["qwen", "openai-gpt-4o-mini"]}},
}


def variant(**sections: Any) -> dict[str, Any]:
    config = copy.deepcopy(BASE)
    config.update(sections)
    return config


def reloads(result: str) -> float:
    value = REGISTRY.get_sample_value("gateway_config_reloads_total", {"result": result})
    return value or 0.0


def test_settings_read_at_start_are_named_as_needing_a_restart(tmp_path: Path) -> None:
    old = load_config(write_config(tmp_path / "old.yaml", BASE))
    new = variant(
        server={"config_poll_s": 0.05, "max_body_bytes": 1000, "cooldown_s": 9},
        accounting={"auth": "off", "redis_url": "redis://127.0.0.1:1/0"},
        cache={"ttl_s": 60},
        privacy={"default_class": "internal"},
    )
    found = needs_restart(old, load_config(write_config(tmp_path / "new.yaml", new)), ["openai"])
    assert "privacy.default_class" in found
    assert "server.cooldown_s" in found
    assert "server.max_body_bytes" not in found  # a reload applies it
    assert "accounting.redis_url" in found
    assert any(path.startswith("cache.") for path in found)


def test_a_discovery_group_or_a_kind_without_a_client_needs_a_restart(tmp_path: Path) -> None:
    old = load_config(write_config(tmp_path / "old.yaml", BASE))
    group = demo_deployment("qwen-7b-a") | {"name": "pods", "discovery": {"dns": "w.svc"}}
    del group["base_url"]
    deployments = [*BASE["deployments"], group]
    new = load_config(write_config(tmp_path / "new.yaml", variant(deployments=deployments)))
    assert needs_restart(old, new, ["openai"]) == ["deployments[pods] (a discovery group)"]
    assert needs_restart(old, old, ["litellm"]) == [
        "deployments[qwen].kind (openai: no openai client yet)",
        "deployments[openai-gpt-4o-mini].kind (openai: no openai client yet)",
    ]


class Gateway:
    def __init__(self, path: Path) -> None:
        config = load_config(path)
        self.roster = Roster(config)
        fleet = FleetStats(self.roster.live.values())
        self.dispatcher = Dispatcher(config, {}, fleet, self.roster)
        self.roster.subscribe(fleet)
        self.roster.subscribe(self.dispatcher)
        self.models = ModelCatalog(config)
        self.reloader = Reloader(
            str(path), config, self.roster, self.dispatcher, self.models, ["openai"]
        )


def test_a_valid_file_is_swapped_in_and_an_invalid_one_leaves_the_old_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(tmp_path / "gateway.yaml", BASE)
    gateway = Gateway(path)
    gateway.roster.set_states({"qwen": "disabled"})
    aliases = {**BASE["aliases"], "fast": {"deployments": ["openai-gpt-4o-mini"]}}
    write_config(path, variant(aliases=aliases))
    applied, rejected = reloads("applied"), reloads("rejected")
    assert REGISTRY.get_sample_value("gateway_config_last_reload_successful") == 1
    assert asyncio.run(gateway.reloader.reload("test"))
    assert set(gateway.dispatcher.config.aliases) == {"chat", "fast"}
    assert set(gateway.models.models) == {"chat", "fast"}
    assert gateway.roster.state("qwen") == "disabled"  # the operator's state is kept
    assert [d.name for d in gateway.roster.deployments_for("fast")] == ["openai-gpt-4o-mini"]

    write_config(path, BASE)  # the alias goes again, and its series with it
    assert asyncio.run(gateway.reloader.reload("test"))
    assert set(gateway.models.models) == {"chat"}
    healthy = "gateway_alias_healthy_deployments"
    assert REGISTRY.get_sample_value(healthy, {"model": "fast"}) is None
    assert REGISTRY.get_sample_value(healthy, {"model": "chat"}) == 1  # qwen is disabled

    write_config(path, variant(aliases={"chat": {"deployments": ["nope"]}}))
    with caplog.at_level(logging.ERROR, "gateway.reload"):
        assert not asyncio.run(gateway.reloader.reload("test"))
    assert "aliases.chat.deployments[0]: unknown deployment 'nope'" in caplog.text
    write_config(path, variant(accounting={"auth": "off", "redis_url": "redis://127.0.0.1:1"}))
    assert not asyncio.run(gateway.reloader.reload("test"))
    assert "need a restart: accounting.redis_url" in caplog.text
    assert set(gateway.dispatcher.config.aliases) == {"chat"}
    assert (reloads("applied"), reloads("rejected")) == (applied + 2, rejected + 2)
    assert REGISTRY.get_sample_value("gateway_config_last_reload_successful") == 0
    write_config(path, BASE)
    assert asyncio.run(gateway.reloader.reload("test"))
    assert REGISTRY.get_sample_value("gateway_config_last_reload_successful") == 1


def test_polling_reloads_a_changed_file_once_and_sighup_reloads_at_once(tmp_path: Path) -> None:
    path = write_config(tmp_path / "gateway.yaml", BASE)
    gateway = Gateway(path)
    applied = reloads("applied")

    async def scenario() -> None:
        task = asyncio.create_task(gateway.reloader.run())
        await asyncio.sleep(0.2)
        assert reloads("applied") == applied  # unchanged: nothing reloaded
        aliases = {**BASE["aliases"], "more": {"deployments": ["qwen"]}}
        write_config(path, variant(aliases=aliases))
        await asyncio.sleep(0.3)
        assert "more" in gateway.dispatcher.config.aliases
        assert reloads("applied") == applied + 1
        gateway.reloader.wake()
        await asyncio.sleep(0.02)
        assert reloads("applied") == applied + 2
        task.cancel()

    asyncio.run(scenario())


def test_polling_never_loads_a_file_that_is_still_being_written(tmp_path: Path) -> None:
    slow = variant(server={"config_poll_s": 0.2})
    path = write_config(tmp_path / "gateway.yaml", slow)
    aliases = {**BASE["aliases"], "more": {"deployments": ["qwen"]}}
    full = write_config(tmp_path / "next.yaml", {**slow, "aliases": aliases}).read_bytes()
    gateway = Gateway(path)
    applied, rejected = reloads("applied"), reloads("rejected")

    async def scenario() -> None:
        task = asyncio.create_task(gateway.reloader.run())
        await asyncio.sleep(0.1)  # between two polls
        with path.open("wb") as file:  # written in 20 pieces over ~0.2 s, as a slow copy does
            for start in range(0, len(full), len(full) // 20 + 1):
                file.write(full[start : start + len(full) // 20 + 1])
                file.flush()
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.6)  # two more polls: the content settled and was loaded
        task.cancel()

    asyncio.run(scenario())
    assert (reloads("applied"), reloads("rejected")) == (applied + 1, rejected)
    assert "more" in gateway.dispatcher.config.aliases


def test_a_file_that_is_not_utf8_is_rejected_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(tmp_path / "gateway.yaml", BASE)
    gateway = Gateway(path)
    path.write_bytes(b"aliases: {\xff\xfe}\n")
    with caplog.at_level(logging.ERROR, "gateway.reload"):
        assert not asyncio.run(gateway.reloader.reload("test"))
    assert "not UTF-8" in caplog.text
    assert set(gateway.dispatcher.config.aliases) == {"chat"}
