"""The admin API through HTTP (httpx's ASGI transport) on a real Accounting and MemoryStore:
master key only, the secret shown once and stored as a hash, teams and keys end to end,
OpenAI error envelopes for every failure."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from gateway.accounting.cost import Costing
from gateway.accounting.memory_store import MemoryStore
from gateway.accounting.model import hash_secret
from gateway.accounting.pricing import Price
from gateway.accounting.service import Accounting
from gateway.accounting.settings import AccountingSettings
from gateway.asgi import Receive, Scope, Send
from gateway.cache.backend import MemoryBackend
from gateway.cache.service import ResponseCache
from gateway.cache.settings import CacheSettings
from gateway.errors import (
    GatewayError,
    handle_gateway_error,
    handle_http_exception,
    handle_unexpected,
)
from gateway.routes.admin import MAX_BODY_BYTES, admin_routes

MASTER_ENV = "TOKEN_GATEWAY_TEST_ADMIN_MASTER_KEY"
MASTER = "admin-test-master-key-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}


def make_accounting(store: MemoryStore, *, auth: bool = True) -> Accounting:
    """A real Accounting on ``store``; the master key is read from ``MASTER_ENV`` now."""
    settings = AccountingSettings(auth=auth, master_key_env=MASTER_ENV)
    reference = Price.per_million(Decimal("2.5"), Decimal(10))
    return Accounting(settings, store, Costing(reference, ()))


def admin_app(accounting: Accounting, cache: ResponseCache | None = None) -> Starlette:
    """The admin routes with the gateway's error handlers, ``accounting`` and ``cache`` in
    state."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"accounting": accounting, "cache": cache}

    handlers = {
        GatewayError: handle_gateway_error,
        HTTPException: handle_http_exception,
        Exception: handle_unexpected,
    }
    return Starlette(routes=admin_routes(), lifespan=lifespan, exception_handlers=handlers)


class Client:
    """Sync HTTP calls into the admin app, each on its own event loop, with the lifespan's
    state (``accounting``) in every scope, as uvicorn would pass it."""

    def __init__(self, accounting: Accounting) -> None:
        self.app = admin_app(accounting)
        self.state: dict[str, object] = {"accounting": accounting, "cache": None}

    async def _with_state(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app({**scope, "state": dict(self.state)}, receive, send)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return asyncio.run(self._request(method, path, json, content, headers))

    async def _request(
        self,
        method: str,
        path: str,
        json: object,
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        transport = httpx.ASGITransport(app=self._with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            return await client.request(method, path, json=json, content=content, headers=headers)

    def get(self, path: str, *, headers: Mapping[str, str] | None = None) -> httpx.Response:
        return self.request("GET", path, headers=headers)

    def post(
        self,
        path: str,
        *,
        json: object = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return self.request("POST", path, json=json, content=content, headers=headers)

    def patch(
        self, path: str, *, json: object, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return self.request("PATCH", path, json=json, headers=headers)

    def put(self, path: str, *, headers: Mapping[str, str] | None = None) -> httpx.Response:
        return self.request("PUT", path, headers=headers)

    def delete(self, path: str, *, headers: Mapping[str, str] | None = None) -> httpx.Response:
        return self.request("DELETE", path, headers=headers)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def client(store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.setenv(MASTER_ENV, MASTER)
    return Client(make_accounting(store))


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


def _create_key(client: Client, **body: Any) -> dict[str, Any]:
    response = client.post("/admin/keys", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_the_admin_api_needs_the_master_key(client: Client) -> None:
    secret = _create_key(client, team_id="a")["key"]
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": MASTER}):
        error = _error(client.get("/admin/teams", headers=headers), 401)
        assert error["code"] == "invalid_api_key"
    unknown = {"authorization": "Bearer sk-gw-not-a-key"}
    assert _error(client.get("/admin/keys", headers=unknown), 401)["code"] == "invalid_api_key"
    for method, path in [("GET", "/admin/teams"), ("POST", "/admin/keys"), ("GET", "/admin/spend")]:
        response = client.request(method, path, headers={"authorization": f"Bearer {secret}"})
        error = _error(response, 403)
        assert error["code"] == "permission_denied" and "master key" in error["message"]
    assert client.get("/admin/teams", headers=AUTH).status_code == 200


def test_a_body_is_not_read_before_the_caller_is_checked(client: Client) -> None:
    error = _error(client.post("/admin/teams", content=b"{not json"), 401)
    assert error["code"] == "invalid_api_key"


def test_a_new_key_shows_its_secret_once_and_the_store_keeps_only_its_hash(
    client: Client, store: MemoryStore
) -> None:
    created = _create_key(client, team_id="research", name="nb")
    secret = created["key"]
    assert secret.startswith("sk-gw-") and len(secret) > 40
    assert re.fullmatch(r"key_[0-9a-f]{12}", created["key_id"])
    assert created["hint"] == f"sk-gw-...{secret[-4:]}"
    assert created["team_id"] == "research" and created["name"] == "nb"
    key_id = created["key_id"]
    stored = asyncio.run(store.key(key_id))
    assert stored is not None and stored.secret_hash == hash_secret(secret)
    assert secret not in repr(stored)
    for path in (f"/admin/keys/{key_id}", "/admin/keys", "/admin/keys?team=research"):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 200
        assert secret not in response.text and stored.secret_hash not in response.text
        assert '"key":' not in response.text
    shown = client.get(f"/admin/keys/{key_id}", headers=AUTH).json()
    assert shown["hint"] == created["hint"] and shown["spent_usd"]["day"] == 0.0
    own = client.get("/v1/spend", headers={"authorization": f"Bearer {secret}"})
    assert own.status_code == 200 and own.json()["team"] == "research"


def test_a_key_for_an_unknown_team_creates_the_team_and_the_default_team_is_default(
    client: Client,
) -> None:
    _create_key(client, team_id="newcomers")
    assert _create_key(client)["team_id"] == "default"
    teams = client.get("/admin/teams", headers=AUTH).json()["data"]
    assert [t["team_id"] for t in teams] == ["default", "newcomers"]
    assert teams[1]["budget_usd"] == {"day": None, "month": None, "total": None}


def test_a_team_is_created_read_changed_listed_and_deleted(client: Client) -> None:
    body = {"team_id": "ml", "budget_usd": {"day": "5", "month": 100}, "rpm": 60}
    response = client.post("/admin/teams", json=body, headers=AUTH)
    assert response.status_code == 201
    assert response.json()["budget_usd"] == {"day": 5.0, "month": 100.0, "total": None}
    duplicate = _error(client.post("/admin/teams", json=body, headers=AUTH), 409)
    assert duplicate["param"] == "team_id" and "already exists" in duplicate["message"]
    shown = client.get("/admin/teams/ml", headers=AUTH).json()
    assert shown["spent_usd"] == {"day": 0.0, "month": 0.0, "total": 0.0}
    assert shown["budget_left_usd"] == {"day": 5.0, "month": 100.0, "total": None}
    patch = {"budget_usd": {"day": None, "total": 1000}, "tpm": 5000, "metadata": {"o": "x"}}
    changed = client.patch("/admin/teams/ml", json=patch, headers=AUTH).json()
    assert changed["budget_usd"] == {"day": None, "month": 100.0, "total": 1000.0}
    assert (changed["rpm"], changed["tpm"], changed["metadata"]) == (60, 5000, {"o": "x"})
    listed = client.get("/admin/teams", headers=AUTH).json()
    assert listed["object"] == "list" and listed["data"] == [changed]
    deleted = client.delete("/admin/teams/ml", headers=AUTH)
    assert deleted.json() == {"id": "ml", "object": "team", "deleted": True}
    assert _error(client.get("/admin/teams/ml", headers=AUTH), 404)["param"] == "team_id"


def test_a_team_with_active_keys_cannot_be_deleted_until_they_are_revoked(
    client: Client,
) -> None:
    key_id = _create_key(client, team_id="ops")["key_id"]
    error = _error(client.delete("/admin/teams/ops", headers=AUTH), 409)
    assert key_id in error["message"] and "revoke" in error["message"]
    client.post(f"/admin/keys/{key_id}/revoke", headers=AUTH)
    assert client.delete("/admin/teams/ops", headers=AUTH).status_code == 200


def test_a_revoked_key_stays_listed_and_stops_working_at_once(client: Client) -> None:
    created = _create_key(client, team_id="a")
    caller = {"authorization": f"Bearer {created['key']}"}
    assert client.get("/v1/spend", headers=caller).status_code == 200  # now cached
    revoked = client.post(f"/admin/keys/{created['key_id']}/revoke", headers=AUTH)
    assert revoked.status_code == 200 and revoked.json()["disabled"] is True
    assert _error(client.get("/v1/spend", headers=caller), 401)["code"] == "invalid_api_key"
    listed = client.get("/admin/keys?team=a", headers=AUTH).json()["data"]
    assert [(k["key_id"], k["disabled"]) for k in listed] == [(created["key_id"], True)]


def test_a_key_is_changed_and_deleted(client: Client) -> None:
    created = _create_key(client, team_id="a", rpm=10, aliases=["chat"])
    path = f"/admin/keys/{created['key_id']}"
    patch: dict[str, object] = {
        "rpm": None,
        "tpm": 1000,
        "aliases": [],
        "budget_usd": {"total": 0.5},
        "policy": "cost",
        "slo_ttft_ms": 750,
        "expires_in_s": 60,
        "name": "renamed",
    }
    changed = client.patch(path, json=patch, headers=AUTH).json()
    assert (changed["rpm"], changed["tpm"], changed["aliases"]) == (None, 1000, [])
    assert changed["budget_usd"]["total"] == 0.5 and changed["policy"] == "cost"
    assert changed["slo_ttft_ms"] == 750 and changed["name"] == "renamed"
    assert changed["expires_at"] > created["created_at"]
    assert _error(client.patch(path, json={"team_id": "b"}, headers=AUTH), 400)["param"] == (
        "team_id"
    )
    caller = {"authorization": f"Bearer {created['key']}"}
    assert client.get("/v1/spend", headers=caller).status_code == 200
    assert client.delete(path, headers=AUTH).json() == {
        "id": created["key_id"],
        "object": "key",
        "deleted": True,
    }
    assert _error(client.get(path, headers=AUTH), 404)["param"] == "key_id"
    assert _error(client.get("/v1/spend", headers=caller), 401)["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/teams/nope"),
        ("PATCH", "/admin/teams/nope"),
        ("DELETE", "/admin/teams/nope"),
        ("GET", "/admin/keys/key_000000000000"),
        ("PATCH", "/admin/keys/key_000000000000"),
        ("DELETE", "/admin/keys/key_000000000000"),
        ("POST", "/admin/keys/key_000000000000/revoke"),
    ],
)
def test_unknown_ids_are_404(client: Client, method: str, path: str) -> None:
    error = _error(client.request(method, path, headers=AUTH), 404)
    assert error["code"] == "not_found" and path.split("/")[3] in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/admin/teams", {"team_id": "t", "budget_usd": {"day": -1}}, "budget_usd.day"),
        ("/admin/teams", {"team_id": "t", "rpm": "many"}, "rpm"),
        ("/admin/keys", {"budget_usd": {"total": "NaN"}}, "budget_usd.total"),
        ("/admin/keys", {"aliases": [1]}, "aliases[0]"),
        ("/admin/keys", {"expires_in_s": -3}, "expires_in_s"),
        ("/admin/keys", {"owner": "me"}, "owner"),
    ],
)
def test_a_bad_field_is_a_400_naming_it(
    client: Client, path: str, body: dict[str, Any], param: str
) -> None:
    error = _error(client.post(path, json=body, headers=AUTH), 400)
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_bodies_that_are_not_json_objects_or_too_large_are_refused(client: Client) -> None:
    for raw in (b"{", b"[]", b"null"):
        error = _error(client.post("/admin/keys", content=raw, headers=AUTH), 400)
        assert "JSON" in error["message"]
    big = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}'
    error = _error(client.post("/admin/keys", content=big, headers=AUTH), 413)
    assert error["code"] == "payload_too_large"


def test_wrong_methods_and_paths_answer_openai_errors(client: Client) -> None:
    assert _error(client.put("/admin/teams", headers=AUTH), 405)["code"] == "method_not_allowed"
    assert _error(client.get("/admin/nothing", headers=AUTH), 404)["code"] == "not_found"


def test_with_auth_off_the_admin_api_still_needs_the_master_key(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MASTER_ENV, MASTER)
    client = Client(make_accounting(store, auth=False))
    assert _error(client.get("/admin/teams"), 401)["code"] == "invalid_api_key"
    anyone = {"authorization": "Bearer whatever"}
    assert _error(client.get("/admin/teams", headers=anyone), 401)["code"] == ("invalid_api_key")
    assert client.get("/admin/teams", headers=AUTH).status_code == 200


def test_without_a_configured_master_key_nobody_is_admin(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MASTER_ENV, raising=False)
    client = Client(make_accounting(store))
    assert _error(client.get("/admin/teams", headers=AUTH), 401)["code"] == ("invalid_api_key")


def test_the_cache_endpoints_say_when_the_cache_is_off_and_reject_unknown_parameters(
    client: Client,
) -> None:
    assert client.request("GET", "/admin/cache/stats").status_code == 401
    off = client.request("GET", "/admin/cache/stats", headers=AUTH)
    assert off.status_code == 400 and "cache is off" in off.json()["error"]["message"]
    client.state["cache"] = ResponseCache(CacheSettings(enabled=True), MemoryBackend(1024))
    typo = client.request("DELETE", "/admin/cache?namspace=a", headers=AUTH)
    assert typo.status_code == 400 and typo.json()["error"]["param"] == "namspace"
    purged = client.request("DELETE", "/admin/cache?namespace=a", headers=AUTH)
    assert purged.json() == {
        "object": "cache.purge",
        "namespace": "a",
        "alias": None,
        "deleted": 0,
    }
