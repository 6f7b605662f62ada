"""The ``redis_server`` fixture: a real server that can be killed and restarted."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis_server.client() as redis_client:
        yield redis_client


def test_redis_server_answers_ping_on_loopback(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert client.ping() is True


def test_set_then_get_round_trips_a_value(client: redis.Redis) -> None:
    client.set("gw:{test}:key", b"value")
    assert client.get("gw:{test}:key") == b"value"


def test_killed_server_refuses_clients_until_it_is_started_again(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    client.set("k", b"1")
    redis_server.kill()
    with pytest.raises(redis.ConnectionError):
        client.ping()

    redis_server.start()
    assert client.ping() is True
    assert client.get("k") is None  # persistence is off: a restart starts empty


@pytest.fixture
def pids_must_be_gone() -> Iterator[list[int]]:
    """Collects pids; after the test's other fixtures are torn down, checks they are dead."""
    pids: list[int] = []
    yield pids
    assert pids, "the test recorded no pid"
    assert not [pid for pid in pids if _pid_alive(pid)]


def test_server_process_is_gone_after_the_fixture_ends(
    pids_must_be_gone: list[int], redis_server: RedisServer
) -> None:
    # pids_must_be_gone is set up first, so its teardown runs after redis_server's.
    pids_must_be_gone.append(redis_server.pid)
    assert _pid_alive(redis_server.pid)
