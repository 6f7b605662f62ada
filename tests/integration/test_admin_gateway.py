"""The admin API and CLI on the real gateway process: auth required, a real redis-server, the
demo's emulated upstreams. Keys made with the CLI call the gateway through the openai SDK,
their spend reaches the ledger, each team sees only its own, the secret never reaches Redis
(only its hash does), and a revoked key stops working."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import redis

from gateway.accounting.model import hash_secret
from gateway.admin_client import MASTER_KEY_ENV
from gateway.cli import main
from loadtests.fleet import DEMO_CONFIG, DemoFleet, Service, start_gateway
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration

MASTER = "integration-master-key-3f9a1c"
SPEND_TIMEOUT_S = 15.0


@pytest.fixture
def gateway(
    demo_fleet: DemoFleet,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Service]:
    """configs/demo.yaml with auth required, on ``redis_server``; the CLI has the master key."""
    env = {
        **demo_fleet.env(),
        "GATEWAY_AUTH": "required",
        "REDIS_URL": redis_server.url,
        MASTER_KEY_ENV: MASTER,
    }
    monkeypatch.setenv(MASTER_KEY_ENV, MASTER)
    with contextlib.ExitStack() as stack:
        yield start_gateway(stack, DEMO_CONFIG, env, log_dir=tmp_path)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _create_key(capsys: pytest.CaptureFixture[str], url: str, team: str) -> tuple[str, str]:
    out = _cli(capsys, "keys", "create", "--team", team, "--url", url)
    fields = dict(line.split(maxsplit=1) for line in out.splitlines())
    return fields["key_id"], fields["secret"]


def _get(url: str, bearer: str | None) -> tuple[int, Any]:
    headers = {} if bearer is None else {"authorization": f"Bearer {bearer}"}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


def _chat(url: str, secret: str, model: str) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0, timeout=30)
    with client:
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Say hi."}], max_tokens=16
        )
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def _teams_with_spend(url: str, want: set[str]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + SPEND_TIMEOUT_S
    while True:
        status, body = _get(f"{url}/admin/spend?group_by=team", MASTER)
        assert status == 200, body
        rows = {row["group"]: row for row in body["data"]}
        if want <= set(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def _everything_in(client: redis.Redis) -> str:
    """Every key name and value in Redis, as text (to search for a secret)."""
    parts: list[str] = []
    for name in client.scan_iter(count=1000):
        parts.append(repr(name))
        kind = client.type(name)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            parts.append(repr(client.get(name)))
        elif kind == "hash":
            parts.append(repr(client.hgetall(name)))
        elif kind == "set":
            parts.append(repr(client.smembers(name)))
        elif kind == "zset":
            parts.append(repr(client.zrange(name, 0, -1, withscores=True)))
        elif kind == "list":
            parts.append(repr(client.lrange(name, 0, -1)))
        elif kind == "stream":
            parts.append(repr(client.xrange(name)))
    return "\n".join(parts)


def test_keys_from_the_cli_are_billed_to_their_team_and_see_only_its_spend(
    gateway: Service, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = gateway.url
    key_a, secret_a = _create_key(capsys, url, "team-a")
    key_b, secret_b = _create_key(capsys, url, "team-b")
    _chat(url, secret_a, "gpt-4o-mini")  # paid: billed
    _chat(url, secret_b, "qwen2.5-7b-instruct")  # local: shadow cost, savings

    rows = _teams_with_spend(url, {"team-a", "team-b"})
    assert rows["team-a"]["requests"] == 1 and rows["team-a"]["cost_micros"] > 0
    assert rows["team-b"]["requests"] == 1 and rows["team-b"]["cost_micros"] == 0
    assert rows["team-b"]["savings_micros"] > 0

    status, own = _get(f"{url}/v1/spend?group_by=key", secret_a)
    assert status == 200 and own["team"] == "team-a"
    assert [row["group"] for row in own["data"]] == [key_a]
    status, own_b = _get(f"{url}/v1/spend?group_by=key", secret_b)
    assert status == 200 and [row["group"] for row in own_b["data"]] == [key_b]
    status, other = _get(f"{url}/v1/spend?team=team-b", secret_a)
    assert status == 403 and other["error"]["param"] == "team"
    assert _get(f"{url}/admin/teams", secret_a)[0] == 403
    assert _get(f"{url}/admin/teams", None)[0] == 401

    stored = _everything_in(redis_server.client())
    assert hash_secret(secret_a) in stored and hash_secret(secret_b) in stored
    assert secret_a not in stored and secret_b not in stored
    assert secret_a[6:] not in stored  # not even without its prefix

    report = _cli(capsys, "spend", "report", "--group-by", "team", "--url", url)
    assert "team-a" in report and "team-b" in report and "total" in report
    export = _cli(capsys, "spend", "export", "--format", "jsonl", "--team", "team-a", "--url", url)
    records = [json.loads(line) for line in export.splitlines()]
    assert [(r["key_id"], r["team_id"], r["alias"]) for r in records] == [
        (key_a, "team-a", "gpt-4o-mini")
    ]

    _cli(capsys, "keys", "revoke", key_a, "--url", url)
    with pytest.raises(openai.AuthenticationError):
        _chat(url, secret_a, "gpt-4o-mini")
    _chat(url, secret_b, "qwen2.5-7b-instruct")


def test_admin_calls_answer_503_while_redis_is_down_and_work_again_after(
    gateway: Service, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = gateway.url
    _create_key(capsys, url, "team-a")
    redis_server.kill()
    for path in ("/admin/teams", "/admin/keys", "/admin/spend", "/admin/teams/team-a"):
        status, body = _get(f"{url}{path}", MASTER)
        assert status == 503 and body["error"]["code"] == "accounting_unavailable", body
    code = main(["keys", "create", "--team", "team-a", "--url", url])
    assert code == 1 and "unavailable" in capsys.readouterr().err
    redis_server.start()
    deadline = time.monotonic() + SPEND_TIMEOUT_S
    while _get(f"{url}/admin/teams", MASTER)[0] != 200:
        assert time.monotonic() < deadline, "the admin API did not recover with Redis"
        time.sleep(0.1)
