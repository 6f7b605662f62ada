"""``keys create --data-class``, ``teams create --data-class`` and ``audit list`` against a
live admin API (uvicorn in a thread, a real Accounting on a MemoryStore)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from gateway.accounting.memory_store import MemoryStore
from gateway.accounting.model import AuditRecord
from gateway.admin_client import MASTER_KEY_ENV
from tests.integration.test_admin_cli import CACHE, _run, _serve
from tests.unit.gateway.test_admin_routes import MASTER, MASTER_ENV, admin_app, make_accounting

pytestmark = pytest.mark.integration


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    records = [
        AuditRecord(
            ts=1_796_040_000.0 + n,
            request_id=f"r{n}",
            key_id="key_aaaaaaaaaaaa",
            team_id=team,
            alias="chat",
            data_class="private",
            sources=("default", "detector:iban"),
            outcome="served",
            deployment="qwen-7b-a",
            reason="only_candidate",
            status=200,
        )
        for n, team in enumerate(("legal", "ops", "legal"))
    ]
    asyncio.run(store.append_audit(records))
    return store


@pytest.fixture
def admin_url(store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv(MASTER_ENV, MASTER)
    monkeypatch.setenv(MASTER_KEY_ENV, MASTER)
    yield from _serve(admin_app(make_accounting(store), CACHE))


def test_keys_and_teams_take_a_data_class_from_the_cli(
    admin_url: str, store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    url = ("--url", admin_url)
    assert _run(capsys, "teams", "create", "legal", "--data-class", "internal", *url)[0] == 0
    code, out, _ = _run(
        capsys, "keys", "create", "--team", "legal", "--data-class", "private", *url
    )
    key_id = dict(line.split(maxsplit=1) for line in out.splitlines())["key_id"]
    team, key = asyncio.run(store.team("legal")), asyncio.run(store.key(key_id))

    assert code == 0
    assert team is not None and team.data_class == "internal"
    assert key is not None and key.data_class == "private"


def test_audit_list_prints_a_teams_records_newest_first(
    admin_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "audit", "list", "--team", "legal", "--url", admin_url)
    header, _rule, *rows = out.splitlines()

    assert code == 0
    assert header.split()[:4] == ["time", "request", "team", "key"]
    assert [row.split()[2] for row in rows] == ["r2", "r0"]
    assert "default,detector:iban" in rows[0] and "served" in rows[0]


def test_a_bad_audit_query_is_an_error_naming_the_parameter(
    admin_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "audit", "list", "--limit", "0", "--url", admin_url)

    assert code == 1
    assert "limit must be a whole number from 1 to 1000" in err
