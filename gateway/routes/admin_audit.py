"""``GET /admin/audit``: the privacy audit log, newest first.

Query: ``team`` (one team's records), ``since`` (epoch seconds; default: all kept),
``limit`` (1-1000, default 100). Records hold who, which alias, the data class and what set
it, and how the request ended, never prompt text. Wrapped by ``admin.py``'s guard (master
key). Imports: ``gateway``.
"""

from __future__ import annotations

import dataclasses
import math

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.accounting.requests import Body, shown, team_id_from
from gateway.accounting.service import Accounting
from gateway.errors import InvalidRequest

MAX_LIMIT = 1000


async def audit_list(request: Request, accounting: Accounting, body: Body) -> Response:
    """``GET /admin/audit?team=&since=&limit=``: audit records, newest first."""
    query = request.query_params
    team = query.get("team")
    records = await accounting.store.audit(
        _since(query.get("since")),
        _limit(query.get("limit")),
        None if team is None else team_id_from(team, "team"),
    )
    data = [{**dataclasses.asdict(r), "sources": list(r.sources)} for r in records]
    return JSONResponse({"object": "list", "data": data})


def _since(value: str | None) -> float:
    if value is None:
        return 0.0
    try:
        since = float(value)
    except ValueError:
        since = math.nan
    if not math.isfinite(since) or since < 0:
        raise InvalidRequest(f"since must be epoch seconds, got {shown(value)}", param="since")
    return since


def _limit(value: str | None) -> int:
    if value is None:
        return 100
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise InvalidRequest(
            f"limit must be a whole number from 1 to {MAX_LIMIT}, got {shown(value)}",
            param="limit",
        )
    return int(value)
