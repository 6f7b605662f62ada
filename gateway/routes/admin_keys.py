"""``/admin/keys``: create, list, read, change, revoke and delete virtual keys.

The secret (``sk-gw-`` and 256 random bits) is in the reply to ``POST /admin/keys`` and
nowhere else: the store keeps its SHA-256, replies show the ``hint``. Every change drops the
key from this process's auth cache (``Accounting.forget_key``). Handlers are wrapped by
``admin.py``'s guard (master key, bounded JSON body). Imports: ``gateway``.
"""

from __future__ import annotations

import time
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.accounting.model import PeriodIds, Team, VirtualKey, hash_secret, new_secret
from gateway.accounting.requests import (
    Body,
    hint_for,
    key_json,
    new_key,
    new_key_id,
    patch_key,
    team_id_from,
)
from gateway.accounting.service import Accounting
from gateway.errors import NotFound

_NO_STORE = {"cache-control": "no-store"}


async def create_key(request: Request, accounting: Accounting, body: Body) -> Response:
    """``POST /admin/keys`` -> 201 with the secret (``key``), shown this once; an unknown
    team is created without limits."""
    now = time.time()
    secret = new_secret()
    key = new_key(
        body, key_id=new_key_id(), secret_hash=hash_secret(secret), hint=hint_for(secret), now=now
    )
    store = accounting.store
    while await store.key(key.key_id) is not None:  # 48 random bits: practically never
        key = replace(key, key_id=new_key_id())
    if await store.team(key.team_id) is None:
        await store.save_team(Team(key.team_id, created_at=now))
    await store.save_key(key)
    return JSONResponse({"key": secret, **key_json(key)}, status_code=201, headers=_NO_STORE)


async def list_keys(request: Request, accounting: Accounting, body: Body) -> Response:
    """``GET /admin/keys[?team=T]``: keys by id (never a secret or its hash)."""
    team = request.query_params.get("team")
    team_id = None if team is None else team_id_from(team, "team")
    keys = await accounting.store.keys(team_id)
    return JSONResponse({"object": "list", "data": [key_json(k) for k in keys]})


async def get_key(request: Request, accounting: Accounting, body: Body) -> Response:
    """``GET /admin/keys/{id}``: the key, its spend and budget left in each period."""
    key = await _key(accounting, request.path_params["key_id"])
    spent = await accounting.store.spent(key.team_id, key.key_id, PeriodIds.at(time.time()))
    return JSONResponse(key_json(key, spent))


async def update_key(request: Request, accounting: Accounting, body: Body) -> Response:
    """``PATCH /admin/keys/{id}``: disabled, limits, aliases, policy, metadata, expiry."""
    key = patch_key(await _key(accounting, request.path_params["key_id"]), body, time.time())
    await _save(accounting, key)
    return JSONResponse(key_json(key))


async def revoke_key(request: Request, accounting: Accounting, body: Body) -> Response:
    """``POST /admin/keys/{id}/revoke``: disabled for good, kept for the audit trail."""
    key = replace(await _key(accounting, request.path_params["key_id"]), disabled=True)
    await _save(accounting, key)
    return JSONResponse(key_json(key))


async def delete_key(request: Request, accounting: Accounting, body: Body) -> Response:
    """``DELETE /admin/keys/{id}``: gone (its spend records stay in the ledger)."""
    key_id = request.path_params["key_id"]
    if not await accounting.store.delete_key(key_id):
        raise NotFound(f"no key '{key_id}'", param="key_id")
    accounting.forget_key(key_id)
    return JSONResponse({"id": key_id, "object": "key", "deleted": True})


async def _key(accounting: Accounting, key_id: str) -> VirtualKey:
    key = await accounting.store.key(key_id)
    if key is None:
        raise NotFound(f"no key '{key_id}'", param="key_id")
    return key


async def _save(accounting: Accounting, key: VirtualKey) -> None:
    await accounting.store.save_key(key)
    accounting.forget_key(key.key_id)
