"""Spend: ``GET /admin/spend`` (totals per group), ``GET /admin/spend/export`` (the ledger as
CSV or JSONL) and ``GET /v1/spend`` (the same totals for a virtual key's own team only).

``from``/``to`` are dates (``2026-11-30``, UTC; ``to`` includes that day) or epoch seconds;
without them, today (UTC). Totals are kept per UTC day, so ``/spend`` counts whole days; the
export filters records to the second. Handlers are wrapped by ``admin.py``'s guard.
Imports: ``gateway``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from gateway.accounting.model import GroupBy, SpendRecord
from gateway.accounting.requests import (
    Body,
    row_json,
    shown,
    team_id_from,
    total_row,
)
from gateway.accounting.service import Accounting
from gateway.errors import InvalidRequest, PermissionDenied

ExportFormat = Literal["csv", "jsonl"]
MAX_SPAN_DAYS = 3660
_DAY_S = 86_400
_LATEST_S = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
"""Later instants (and a day after them) would overflow ``datetime``."""
_BATCH = 500
_FIELDS = [f.name for f in dataclasses.fields(SpendRecord)]
_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


async def spend_report(request: Request, accounting: Accounting, body: Body) -> Response:
    """``GET /admin/spend?group_by=&from=&to=&team=``: rows per group and their total."""
    team = request.query_params.get("team")
    return await _report(accounting, request.query_params, _team(team))


async def own_spend(request: Request, accounting: Accounting, body: Body) -> Response:
    """``GET /v1/spend``: the caller's team's spend; asking for another team is 403 (the
    master key may name any team, like ``/admin/spend``)."""
    authorization = request.headers.get("authorization")
    team = _team(request.query_params.get("team"))
    if not accounting.is_master(authorization):
        own = (await accounting.principal(authorization, time.time())).team.team_id
        if team not in (None, own):
            raise PermissionDenied(
                f"this key belongs to team '{own}' and may not see team '{team}'", param="team"
            )
        team = own
    return await _report(accounting, request.query_params, team)


async def spend_export(request: Request, accounting: Accounting, body: Body) -> Response:
    """``GET /admin/spend/export?format=csv|jsonl&from=&to=&team=``: ledger records, oldest
    first; the CSV header is the ``SpendRecord`` field names."""
    query = request.query_params
    fmt = export_format(query.get("format"))
    span = time_range(query.get("from"), query.get("to"), time.time())
    records = await accounting.store.records(span.start, span.end, _team(query.get("team")))
    lines = _csv(records) if fmt == "csv" else _jsonl(records)
    name = f"spend-{_day(span.start)}-{_day(span.end - 1)}.{fmt}"
    disposition = {"content-disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(lines, media_type=_MEDIA[fmt], headers=disposition)


async def _report(
    accounting: Accounting, query: Mapping[str, str], team: str | None
) -> JSONResponse:
    group = group_by(query.get("group_by"))
    span = time_range(query.get("from"), query.get("to"), time.time())
    rows = await accounting.store.spend(group, span.start, span.last_instant, team)
    reply = {
        "object": "spend",
        "group_by": group,
        **span.describe(),
        "team": team,
        "data": [row_json(row) for row in rows],
        "total": row_json(total_row(rows)),
    }
    return JSONResponse(reply)


def _team(value: str | None) -> str | None:
    return None if value is None else team_id_from(value, "team")


async def _csv(records: Sequence[SpendRecord]) -> AsyncIterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_FIELDS)
    for start in range(0, len(records), _BATCH):
        writer.writerows(r.to_fields().values() for r in records[start : start + _BATCH])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    if out.tell():
        yield out.getvalue()


async def _jsonl(records: Sequence[SpendRecord]) -> AsyncIterator[str]:
    for start in range(0, len(records), _BATCH):
        batch = records[start : start + _BATCH]
        yield "".join(json.dumps(dataclasses.asdict(r)) + "\n" for r in batch)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """``start <= ts < end`` in epoch seconds (a ``to`` date includes that whole day)."""

    start: float
    end: float

    @property
    def last_instant(self) -> float:
        """An instant in the range's last UTC day (``Store.spend`` counts days inclusively)."""
        return max(self.start, self.end - 0.001)

    def describe(self) -> dict[str, str]:
        """The range as ISO instants (UTC), for replies."""
        return {"from": _iso(self.start), "to": _iso(self.end)}


def time_range(start: str | None, end: str | None, now: float) -> TimeRange:
    """``from``/``to`` query values (``2026-11-30`` or epoch seconds) -> a range; with
    neither, today (UTC); with only ``to``, that day; with only ``from``, to the end of today
    (or of that day, if it is later)."""
    begin = _instant(start, "from", end_of_day=False) if start is not None else None
    finish = _instant(end, "to", end_of_day=True) if end is not None else None
    if begin is None:
        begin = max(0.0, _midnight(finish - 0.001)) if finish is not None else _midnight(now)
    if finish is None:
        finish = max(_midnight(now), _midnight(begin)) + _DAY_S
    if begin >= finish:
        raise InvalidRequest(
            f"from ({_iso(begin)}) must be before to ({_iso(finish)})", param="from"
        )
    if finish - begin > MAX_SPAN_DAYS * _DAY_S:
        raise InvalidRequest(f"the range may span at most {MAX_SPAN_DAYS} days", param="to")
    return TimeRange(begin, finish)


def group_by(value: str | None) -> GroupBy:
    """The ``group_by`` query value (default ``team``)."""
    for option in ("team", "key", "alias", "deployment"):
        if (value or "team") == option:
            return option
    raise InvalidRequest(
        f"group_by must be team, key, alias or deployment, got {shown(value)}",
        param="group_by",
    )


def export_format(value: str | None) -> ExportFormat:
    """The ``format`` query value of the export (default ``csv``)."""
    if value in (None, "csv"):
        return "csv"
    if value == "jsonl":
        return "jsonl"
    raise InvalidRequest(f"format must be csv or jsonl, got {shown(value)}", param="format")


def _instant(value: str, param: str, *, end_of_day: bool) -> float:
    text = value.strip()
    try:
        ts = float(text)
    except ValueError:
        ts = _day_start(text, param, end_of_day=end_of_day)
    if not 0 <= ts <= _LATEST_S:
        raise InvalidRequest(
            f"{param} must be between 1970-01-01 and 9000-01-01, got {shown(value)}",
            param=param,
        )
    return ts


def _day_start(text: str, param: str, *, end_of_day: bool) -> float:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"{param} must be a date (2026-11-30) or epoch seconds, got {shown(text)}",
            param=param,
        ) from None
    if end_of_day and day < date.max:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def _midnight(ts: float) -> float:
    return float(int(ts // _DAY_S) * _DAY_S)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
