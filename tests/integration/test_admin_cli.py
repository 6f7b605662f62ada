"""``python -m gateway keys|teams|spend`` (``gateway.cli.main``) against a live admin API:
uvicorn serving the admin routes on a real Accounting and MemoryStore, on a free loopback
port in a thread, stopped when each test ends."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette

from gateway.accounting.memory_store import MemoryStore
from gateway.accounting.model import SpendRecord, hash_secret
from gateway.admin_client import MASTER_KEY_ENV
from gateway.cache.backend import MemoryBackend
from gateway.cache.request import CachePlan
from gateway.cache.service import ResponseCache
from gateway.cache.settings import CacheSettings
from gateway.cli import main
from loadtests.processes import free_port
from tests.unit.gateway.test_admin_routes import MASTER, MASTER_ENV, admin_app, make_accounting

pytestmark = pytest.mark.integration

DAY = "2026-11-30"
NOON = 1_796_040_000.0  # 2026-11-30T12:00:00Z
START_TIMEOUT_S = 10.0


def _record(n: int, key_id: str, team_id: str, cost: int, reference: int) -> SpendRecord:
    return SpendRecord(
        request_id=f"r{n}",
        ts=NOON + n,
        key_id=key_id,
        team_id=team_id,
        alias="chat",
        deployment="gpt-4o-mini",
        provider="openai",
        source="paid",
        input_tokens=1000 * n,
        output_tokens=100 * n,
        cost_micros=cost,
        shadow_micros=0,
        reference_micros=reference,
        latency_ms=20.0,
        ttft_ms=5.0,
        status=200,
    )


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()

    async def seed() -> None:
        await store.settle(_record(1, "key_aaaaaaaaaaaa", "a", 1_234_567, 2_000_000))
        await store.settle(_record(2, "key_aaaaaaaaaaaa", "a", 1_000_000, 1_000_000))
        await store.settle(_record(3, "key_bbbbbbbbbbbb", "b", 7_000_000, 9_000_000))

    asyncio.run(seed())
    return store


@pytest.fixture
def admin_url(store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The admin API on http://127.0.0.1:PORT; the CLI gets the master key from its env."""
    monkeypatch.setenv(MASTER_ENV, MASTER)
    monkeypatch.setenv(MASTER_KEY_ENV, MASTER)
    yield from _serve(admin_app(make_accounting(store), CACHE))


CACHE = ResponseCache(CacheSettings(enabled=True), MemoryBackend(1 << 20))
"""An in-process response cache the cache commands manage (entries seeded by each test)."""


def _serve(app: Starlette) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="none",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="admin-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)
        assert not thread.is_alive(), "uvicorn did not stop"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_keys_and_teams_are_created_listed_and_revoked_from_the_cli(
    admin_url: str, store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    url = ("--url", admin_url)
    code, out, _ = _run(
        capsys, "teams", "create", "research", "--budget-day", "5", "--rpm", "60", *url
    )
    assert (code, out) == (0, "created team research\n")
    code, out, err = _run(
        capsys,
        "keys",
        "create",
        "--team",
        "research",
        "--name",
        "notebook",
        "--alias",
        "chat",
        "--alias",
        "embed",
        "--budget-total",
        "2.5",
        "--expires-in-s",
        "3600",
        *url,
    )
    assert code == 0 and "shown only this once" in err
    fields = dict(line.split(maxsplit=1) for line in out.splitlines())
    key_id, secret = fields["key_id"], fields["secret"]
    assert re.fullmatch(r"key_[0-9a-f]{12}", key_id) and fields["team"] == "research"
    assert secret.startswith("sk-gw-")
    stored = asyncio.run(store.key(key_id))
    assert stored is not None and stored.secret_hash == hash_secret(secret)
    assert stored.aliases == ("chat", "embed") and stored.limits.budget_micros == {
        "total": 2_500_000
    }
    code, out, _ = _run(capsys, "keys", "list", "--team", "research", *url)
    assert code == 0 and secret not in out
    header, rule, row = out.splitlines()
    assert set(rule) == {"-", " "}
    assert header.split() == ["key_id", "team", "name", "hint", "status", "expires"]
    assert row.split()[:5] == [key_id, "research", "notebook", f"sk-gw-...{secret[-4:]}", "active"]
    code, out, _ = _run(capsys, "teams", "list", *url)
    assert code == 0
    research = next(line for line in out.splitlines() if line.startswith("research"))
    assert research.split() == ["research", "5.00", "-", "-", "60", "-", "-"]
    code, out, _ = _run(capsys, "keys", "revoke", key_id, *url)
    assert (code, out) == (0, f"revoked {key_id} (team research)\n")
    _, out, _ = _run(capsys, "keys", "list", *url)
    assert f"{key_id}  research" in out and "revoked" in out


def test_spend_report_is_a_table_with_a_total_and_export_writes_the_ledger(
    admin_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    span = ("--from", DAY, "--to", DAY, "--url", admin_url)
    code, out, _ = _run(capsys, "spend", "report", "--group-by", "team", *span)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "spend from 2026-11-30T00:00:00Z to 2026-12-01T00:00:00Z"
    assert lines[1].split() == [
        "team", "requests", "tokens", "in", "tokens", "out", "cost", "$", "reference", "$",
        "savings", "$",
    ]  # fmt: skip
    assert lines[3].split() == ["b", "1", "3,000", "300", "7.000000", "9.000000", "0.000000"]
    assert lines[4].split() == ["a", "2", "3,000", "300", "2.234567", "3.000000", "0.000000"]
    assert set(lines[5]) == {"-", " "}
    assert lines[6].split() == ["total", "3", "6,000", "600", "9.234567", "12.000000", "0.000000"]
    code, out, _ = _run(capsys, "spend", "report", "--group-by", "key", "--team", "a", *span)
    assert code == 0 and "key_aaaaaaaaaaaa" in out and "key_bbbbbbbbbbbb" not in out

    target = tmp_path / "spend.csv"
    code, _, err = _run(capsys, "spend", "export", "--output", str(target), *span)
    assert code == 0 and str(target) in err
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows[0] == list(SpendRecord.__dataclass_fields__)
    assert [row[0] for row in rows[1:]] == ["r1", "r2", "r3"]
    assert not (tmp_path / "spend.csv.partial").exists()
    code, out, _ = _run(capsys, "spend", "export", "--format", "jsonl", "--team", "b", *span)
    assert code == 0
    assert [json.loads(line)["request_id"] for line in out.splitlines()] == ["r3"]


def test_api_errors_exit_1_with_their_message_and_connection_failures_exit_2(
    admin_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = ("--url", admin_url)
    code, out, err = _run(capsys, "keys", "revoke", "key_nope", *url)
    assert (code, out, err) == (1, "", "error: no key 'key_nope' (field: key_id)\n")
    code, _, err = _run(capsys, "teams", "create", "has space", *url)
    assert code == 1 and "team_id must be 1-64 letters" in err
    code, _, err = _run(capsys, "keys", "create", "--budget-day", "-1", *url)
    assert code == 1 and "budget_usd.day must not be negative" in err
    code, _, err = _run(capsys, "spend", "report", "--from", "soon", *url)
    assert code == 1 and "from must be a date" in err
    missing = tmp_path / "missing" / "spend.csv"
    code, _, err = _run(capsys, "spend", "export", "--output", str(missing), *url)
    assert code == 2 and "No such file or directory" in err

    monkeypatch.setenv(MASTER_KEY_ENV, "not-the-master-key")
    code, _, err = _run(capsys, "teams", "list", *url)
    assert code == 1 and "master key" in err
    monkeypatch.delenv(MASTER_KEY_ENV)
    code, _, err = _run(capsys, "teams", "list", *url)
    assert code == 2 and MASTER_KEY_ENV in err

    monkeypatch.setenv(MASTER_KEY_ENV, MASTER)
    closed = f"http://127.0.0.1:{free_port()}"
    code, out, err = _run(capsys, "keys", "list", "--url", closed)
    assert (code, out) == (2, "") and err.startswith(f"cannot reach the gateway at {closed}")


def test_cache_stats_and_purge_from_the_cli(
    admin_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    plans = [
        CachePlan(team, alias, f"{n:032x}", True, True, 60.0)
        for n, (team, alias) in enumerate([("a", "chat"), ("a", "embed"), ("b", "chat")])
    ]

    async def seed() -> None:
        for plan in plans:
            await CACHE.backend.store(plan.key, b"x" * 100, 60.0, plan.lock, "seed")
        await CACHE.backend.add_counts({"a": (3, 1)})

    asyncio.run(seed())
    url = ("--url", admin_url)
    code, out, _ = _run(capsys, "cache", "stats", "--namespace", "a", *url)
    assert code == 0
    assert out.splitlines()[-1].split() == ["2", "200", "3", "1", "75.0%"]
    code, out, _ = _run(capsys, "cache", "purge", "--alias", "chat", *url)
    assert (code, out) == (0, "deleted 2 cached answers\n")
    code, out, _ = _run(capsys, "cache", "stats", *url)
    assert out.splitlines()[-1].split()[:2] == ["1", "100"]
    code, _, err = _run(capsys, "cache", "stats", "--url", "http://127.0.0.1:9")
    assert code == 2 and "cannot reach" in err
