"""The admin API (``/admin/...``, master key only) and the self-service ``GET /v1/spend``.

This module holds the route table, the guard every endpoint goes through and the team
endpoints; ``admin_keys.py`` holds the virtual keys, ``admin_spend.py`` spend reports and the
ledger export, ``admin_cache.py`` the response cache's stats and purge,
``admin_deployments.py`` the deployments' operator states. The guard checks the caller
before anything is read (401 without the master key, 403 for a valid virtual key),
reads a bounded JSON body and turns a store outage into 503, so every failure is an OpenAI
error envelope with the right status, never a 500. Imports: ``gateway``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.accounting.model import PeriodIds, Team
from gateway.accounting.refusals import AccountingUnavailable
from gateway.accounting.requests import Body, json_body, new_team, patch_team, team_json
from gateway.accounting.service import Accounting
from gateway.accounting.store import StoreUnavailable
from gateway.errors import (
    AuthenticationFailed,
    Conflict,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
)
from gateway.routes.admin_audit import audit_list
from gateway.routes.admin_cache import cache_purge, cache_stats
from gateway.routes.admin_deployments import change_deployment, list_deployments
from gateway.routes.admin_keys import (
    create_key,
    delete_key,
    get_key,
    list_keys,
    revoke_key,
    update_key,
)
from gateway.routes.admin_spend import own_spend, spend_export, spend_report

MAX_BODY_BYTES = 64 * 1024
Handler = Callable[[Request, Accounting, Body], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def admin_routes() -> list[Route]:
    """Every admin route, and ``GET /v1/spend`` (a virtual key's own team's spend)."""
    return [
        Route("/admin/teams", _admin(create_team), methods=["POST"]),
        Route("/admin/teams", _admin(list_teams), methods=["GET"]),
        Route("/admin/teams/{team_id}", _admin(get_team), methods=["GET"]),
        Route("/admin/teams/{team_id}", _admin(update_team), methods=["PATCH"]),
        Route("/admin/teams/{team_id}", _admin(delete_team), methods=["DELETE"]),
        Route("/admin/keys", _admin(create_key), methods=["POST"]),
        Route("/admin/keys", _admin(list_keys), methods=["GET"]),
        Route("/admin/keys/{key_id}", _admin(get_key), methods=["GET"]),
        Route("/admin/keys/{key_id}", _admin(update_key), methods=["PATCH"]),
        Route("/admin/keys/{key_id}", _admin(delete_key), methods=["DELETE"]),
        Route("/admin/keys/{key_id}/revoke", _admin(revoke_key), methods=["POST"]),
        Route("/admin/spend", _admin(spend_report), methods=["GET"]),
        Route("/admin/cache/stats", _admin(cache_stats), methods=["GET"]),
        Route("/admin/cache", _admin(cache_purge), methods=["DELETE"]),
        Route("/admin/spend/export", _admin(spend_export), methods=["GET"]),
        Route("/admin/audit", _admin(audit_list), methods=["GET"]),
        Route("/admin/deployments", _admin(list_deployments), methods=["GET"]),
        Route(
            "/admin/deployments/{name:path}/{action}",
            _admin(change_deployment),
            methods=["POST"],
        ),
        Route("/v1/spend", _guarded(own_spend, master=False), methods=["GET"]),
    ]


def _admin(handler: Handler) -> Endpoint:
    return _guarded(handler, master=True)


def _guarded(handler: Handler, *, master: bool) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        accounting: Accounting = request.state.accounting
        try:
            if master:
                await require_master(accounting, request.headers.get("authorization"))
            body = json_body(await _read(request)) if request.method in ("POST", "PATCH") else {}
            return await handler(request, accounting, body)
        except StoreUnavailable as exc:
            raise AccountingUnavailable(f"the accounting store is unavailable: {exc}") from None

    endpoint.__name__ = endpoint.__qualname__ = handler.__name__
    return endpoint


async def require_master(accounting: Accounting, authorization: str | None) -> None:
    """Pass the master key; 401 for no or an unknown key, 403 for a virtual key."""
    if accounting.is_master(authorization):
        return
    try:
        principal = await accounting.principal(authorization, time.time())
    except AuthenticationFailed:
        principal = None
    if principal is not None and principal.key is not None:
        raise PermissionDenied(
            f"key {principal.key.key_id} is a virtual key; the admin API needs the master key"
        )
    raise AuthenticationFailed(
        "the admin API needs the master key: send 'Authorization: Bearer <master key>'"
    )


async def _read(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"an admin body may be at most {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"an admin body may be at most {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# --- teams -------------------------------------------------------------------------------


async def create_team(request: Request, accounting: Accounting, body: Body) -> Response:
    """``POST /admin/teams`` -> 201 with the team; 409 if the id is taken."""
    team = new_team(body, time.time())
    if await accounting.store.team(team.team_id) is not None:
        raise Conflict(
            f"team '{team.team_id}' already exists; PATCH /admin/teams/{team.team_id} changes it",
            param="team_id",
        )
    await accounting.store.save_team(team)
    return JSONResponse(team_json(team), status_code=201)


async def list_teams(request: Request, accounting: Accounting, body: Body) -> Response:
    """``GET /admin/teams``: every team, by id."""
    teams = await accounting.store.teams()
    return JSONResponse({"object": "list", "data": [team_json(t) for t in teams]})


async def get_team(request: Request, accounting: Accounting, body: Body) -> Response:
    """``GET /admin/teams/{id}``: the team, its spend and budget left in each period."""
    team = await _team(accounting, request.path_params["team_id"])
    periods = PeriodIds.at(time.time())
    spent = await accounting.store.spent(team.team_id, None, periods)
    return JSONResponse(team_json(team, spent))


async def update_team(request: Request, accounting: Accounting, body: Body) -> Response:
    """``PATCH /admin/teams/{id}``: change limits or metadata; the team's keys see the new
    limits at once in this process (other replicas within their key cache time)."""
    team = patch_team(await _team(accounting, request.path_params["team_id"]), body)
    await accounting.store.save_team(team)
    for key in await accounting.store.keys(team.team_id):
        accounting.forget_key(key.key_id)
    return JSONResponse(team_json(team))


async def delete_team(request: Request, accounting: Accounting, body: Body) -> Response:
    """``DELETE /admin/teams/{id}``; 409 while the team has keys that are not revoked."""
    team = await _team(accounting, request.path_params["team_id"])
    active = [k.key_id for k in await accounting.store.keys(team.team_id) if not k.disabled]
    if active:
        raise Conflict(
            f"team '{team.team_id}' has {len(active)} active key(s) ({', '.join(active[:5])}); "
            "revoke or delete them first"
        )
    await accounting.store.delete_team(team.team_id)
    return JSONResponse({"id": team.team_id, "object": "team", "deleted": True})


async def _team(accounting: Accounting, team_id: str) -> Team:
    team = await accounting.store.team(team_id)
    if team is None:
        raise NotFound(f"no team '{team_id}'", param="team_id")
    return team
