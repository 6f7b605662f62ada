"""The control store on a real redis-server: a write reaches another process's watcher at
once, a state written without a message is picked up by the periodic re-read, and a dead
Redis is ``ControlUnavailable`` for readers, writers and watchers alike."""

from __future__ import annotations

import asyncio

import pytest

from gateway.control import store as control_store
from gateway.control.store import HASH, ControlUnavailable, RedisControl
from gateway.roster import State
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration


def test_a_write_reaches_a_watcher_at_once_and_a_silent_one_at_the_resync(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control_store, "RESYNC_S", 0.5)

    async def scenario() -> list[dict[str, State]]:
        writer, watcher = RedisControl(redis_server.url), RedisControl(redis_server.url)
        seen: list[dict[str, State]] = []
        watch = watcher.watch()
        seen.append(await anext(watch))
        await writer.write("mini", "disabled")
        seen.append(await asyncio.wait_for(anext(watch), 0.5))
        await writer.write("mini", None)
        seen.append(await asyncio.wait_for(anext(watch), 0.5))
        with redis_server.client() as direct:  # no PUBLISH: found by the re-read
            direct.hset(HASH, mapping={"qwen": "draining", "junk": "sideways"})
        seen.append(await asyncio.wait_for(anext(watch), 2.0))
        await watch.aclose()
        await writer.aclose()
        await watcher.aclose()
        return seen

    assert asyncio.run(scenario()) == [{}, {"mini": "disabled"}, {}, {"qwen": "draining"}]


def test_a_dead_redis_is_unavailable_to_readers_writers_and_watchers(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        control = RedisControl(redis_server.url, timeout_s=0.5)
        watch = control.watch()
        assert await anext(watch) == {}
        redis_server.kill()
        with pytest.raises(ControlUnavailable):
            await asyncio.wait_for(anext(watch), 2.0)
        with pytest.raises(ControlUnavailable):
            await control.read()
        with pytest.raises(ControlUnavailable):
            await control.write("mini", "disabled")
        await control.aclose()

    asyncio.run(scenario())
