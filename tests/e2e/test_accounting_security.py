"""Who may see and do what: keys see their own team only, the admin API is the master key's,
a revoked key stops working everywhere within ``key_cache_s``, and no secret or prompt text
leaks into logs, metrics or Redis.

One fleet (three gateways on one Redis) serves the module; each test makes its own keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from loadtests.fleet import scrape
from tests.support.accounting import (
    MINI,
    QWEN,
    AccountingFleet,
    Admin,
    NewKey,
    Shot,
    admin_of,
    run_load,
    start_accounting_fleet,
    wait_until_settled,
)
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

KEY_CACHE_S = 1.0
STORE_TIMEOUT_MS = 1000  # see test_accounting_exactness.py: 2 cores, many processes
CANARY = "quokka-" + secrets.token_hex(8)
"""A prompt string that must never leave the request path."""


@pytest.fixture(scope="module")
def redis_for_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One ``redis-server`` for the module's fleet."""
    server = RedisServer(tmp_path_factory.mktemp("security-redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def fleet(
    redis_for_module: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountingFleet]:
    """Three gateways; key records are re-read every ``KEY_CACHE_S``."""
    with contextlib.ExitStack() as stack:
        yield start_accounting_fleet(
            stack,
            tmp_path_factory.mktemp("security"),
            redis_for_module.url,
            accounting={"key_cache_s": KEY_CACHE_S, "store_timeout_ms": STORE_TIMEOUT_MS},
        )


@pytest.fixture(scope="module")
def made_keys() -> list[NewKey]:
    """Every key the module's tests create (their secrets are grepped for at the end)."""
    return []


@pytest.fixture
def admin(fleet: AccountingFleet) -> Iterator[Admin]:
    """The admin API of the first gateway, with the master key."""
    with admin_of(fleet) as opened:
        yield opened


def _key(admin: Admin, made: list[NewKey], team: str, **fields: object) -> NewKey:
    key = admin.create_key(team, **fields)
    made.append(key)
    return key


def _get(url: str, path: str, secret: str | None, **params: str) -> httpx.Response:
    headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
    return httpx.get(f"{url}{path}", headers=headers, params=params, timeout=10.0)


def _chat(url: str, secret: str, prompt: str = "hello", model: str = QWEN) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 3}
    return httpx.post(
        f"{url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10.0,
    )


def test_a_key_sees_only_its_own_teams_spend_and_403_for_another_team(
    fleet: AccountingFleet, admin: Admin, made_keys: list[NewKey]
) -> None:
    alpha = _key(admin, made_keys, "sec-alpha")
    beta = _key(admin, made_keys, "sec-beta")
    shots = [Shot(i % 3, k.secret, MINI, f"spend {i}", 4) for i, k in enumerate([alpha, beta] * 3)]
    assert [r.status for r in asyncio.run(run_load(fleet.urls, shots, concurrency=6))] == [200] * 6
    wait_until_settled(fleet, admin, len(shots))

    for url in fleet.urls:
        own = _get(url, "/v1/spend", alpha.secret)
        by_key = _get(url, "/v1/spend", alpha.secret, group_by="key")
        other = _get(url, "/v1/spend", alpha.secret, team="sec-beta")

        assert own.status_code == 200 and own.json()["team"] == "sec-alpha", own.text
        assert [row["group"] for row in own.json()["data"]] == ["sec-alpha"]
        assert own.json()["total"]["requests"] == 3
        assert [row["group"] for row in by_key.json()["data"]] == [alpha.key_id]
        assert other.status_code == 403, other.text
        assert other.json()["error"]["code"] == "permission_denied", other.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/teams"),
        ("POST", "/admin/teams"),
        ("GET", "/admin/keys"),
        ("POST", "/admin/keys"),
        ("GET", "/admin/spend"),
        ("GET", "/admin/spend/export"),
        ("GET", "/admin/teams/sec-alpha"),
        ("POST", "/admin/keys/key_000000000000/revoke"),
    ],
)
def test_admin_api_is_403_for_a_virtual_key_and_401_without_the_master_key(
    fleet: AccountingFleet, admin: Admin, made_keys: list[NewKey], method: str, path: str
) -> None:
    key = _key(admin, made_keys, "sec-admin-probe")
    url = fleet.urls[1]  # not the gateway the keys were made on: nothing is process-local

    def call(authorization: str | None) -> httpx.Response:
        headers = {} if authorization is None else {"Authorization": authorization}
        body = {"team_id": "intruders"} if method == "POST" else None
        return httpx.request(method, f"{url}{path}", headers=headers, json=body, timeout=10.0)

    virtual = call(f"Bearer {key.secret}")
    missing = call(None)
    unknown = call("Bearer sk-gw-" + secrets.token_urlsafe(32))
    wrong_master = call("Bearer " + secrets.token_urlsafe(24))

    assert virtual.status_code == 403, virtual.text
    assert virtual.json()["error"]["code"] == "permission_denied", virtual.text
    assert (missing.status_code, unknown.status_code, wrong_master.status_code) == (401, 401, 401)
    assert admin.http.get("/admin/teams/intruders").status_code == 404  # nothing was created


def test_a_revoked_key_gets_401_on_every_gateway_within_key_cache_s(
    fleet: AccountingFleet, admin: Admin, made_keys: list[NewKey]
) -> None:
    key = _key(admin, made_keys, "sec-revoked")
    assert [_chat(url, key.secret).status_code for url in fleet.urls] == [200] * 3  # cached

    admin.revoke(key.key_id)
    revoked_at = time.monotonic()
    delays: list[float] = []
    for url in fleet.urls:
        while True:
            reply = _chat(url, key.secret)
            if reply.status_code != 200 or time.monotonic() - revoked_at > 3 * KEY_CACHE_S:
                break
            time.sleep(0.05)
        delays.append(time.monotonic() - revoked_at)
        assert reply.status_code == 401, reply.text
        assert reply.json()["error"]["code"] == "invalid_api_key", reply.text
    again = [_chat(url, key.secret).status_code for url in fleet.urls]

    print(
        f"revoked key refused after {[round(d, 2) for d in delays]} s (key_cache_s {KEY_CACHE_S})"
    )
    assert max(delays) <= KEY_CACHE_S + 0.5
    assert again == [401] * 3


def test_no_key_secret_or_prompt_text_in_logs_metrics_or_redis(
    fleet: AccountingFleet,
    admin: Admin,
    made_keys: list[NewKey],
    redis_for_module: RedisServer,
) -> None:
    key = _key(admin, made_keys, "sec-canary", rpm=3)
    prompt = f"please keep {CANARY} secret"
    # Success, streams, a paid alias, an unknown model, a bad body, a rate-limited request.
    shots = [
        Shot(i % 3, key.secret, alias, prompt, 4, stream=stream)
        for i, (alias, stream) in enumerate([(QWEN, False), (QWEN, True), (MINI, True)])
    ]
    served = asyncio.run(run_load(fleet.urls, shots, concurrency=1))
    url = fleet.urls[0]
    unknown = _chat(url, key.secret, prompt, model=f"model-{CANARY}")
    limited = _chat(url, key.secret, prompt)
    bad_body = httpx.post(
        f"{url}/v1/chat/completions",
        content=b'{"model": "' + QWEN.encode() + b'", "messages": "' + prompt.encode() + b'"}',
        headers={"Authorization": f"Bearer {key.secret}", "Content-Type": "application/json"},
        timeout=10.0,
    )
    bad_key = _chat(url, "sk-gw-" + CANARY, prompt)
    wait_until_settled(fleet, admin, 0)  # every backlog empty: the records are in Redis

    assert [r.status for r in served] == [200] * 3
    assert (unknown.status_code, limited.status_code) == (404, 429)
    assert (bad_body.status_code, bad_key.status_code) == (400, 401)
    secrets_ = [k.secret for k in made_keys] + [fleet.master_key]
    places = {
        "gateway logs": fleet.gateway_logs(),
        "metrics": "\n".join(scrape(u) for u in fleet.urls),
        "redis": _redis_dump(redis_for_module),
    }
    assert len(places["redis"]) > 1000 and len(made_keys) >= 4
    for place, text in places.items():
        assert CANARY not in text, f"prompt text in the {place}"
        leaked = [s[:12] for s in secrets_ if s in text]
        assert not leaked, f"key secrets in the {place}: {leaked}"


def _redis_dump(server: RedisServer) -> str:
    """Every key and value in Redis, as text."""
    parts: list[str] = []
    with server.client() as client:
        for name in client.scan_iter(count=1000):
            kind = client.type(name).decode()
            value: Any
            if kind == "string":
                value = client.get(name)
            elif kind == "hash":
                value = client.hgetall(name)
            elif kind == "set":
                value = client.smembers(name)
            elif kind == "zset":
                value = client.zrange(name, 0, -1, withscores=True)
            elif kind == "stream":
                value = client.xrange(name)
            elif kind == "list":
                value = client.lrange(name, 0, -1)
            else:
                raise AssertionError(f"unexpected redis type {kind} of {name!r}")
            parts.append(f"{name!r} {value!r}")
    return "\n".join(parts)
