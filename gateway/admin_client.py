"""``python -m gateway keys|teams|spend|cache|audit|deployments``: the admin API, from a shell.

Talks HTTP with the standard library only (urllib), to ``--url`` (default: the
``TOKEN_GATEWAY_URL`` environment variable, else http://127.0.0.1:8080) with the master key
from ``TOKEN_GATEWAY_MASTER_KEY``. Exit codes: 0 done; 1 the gateway refused (its error
message is printed); 2 the gateway could not be reached or the master key is not set.
``cli.py`` adds these subcommands (``add_admin_commands``) and dispatches to them
(``run_admin_command``). Imports: stdlib and ``policies.model`` (the data classes).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, BinaryIO, TextIO

from policies.model import DATA_CLASSES

URL_ENV = "TOKEN_GATEWAY_URL"
MASTER_KEY_ENV = "TOKEN_GATEWAY_MASTER_KEY"
DEFAULT_URL = "http://127.0.0.1:8080"
ADMIN_COMMANDS = frozenset({"keys", "teams", "spend", "cache", "audit", "deployments"})
GROUPS = ("team", "key", "alias", "deployment")
TIMEOUT_S = 30.0

Json = dict[str, Any]
Action = Callable[["AdminClient", argparse.Namespace, TextIO], None]


class AdminError(Exception):
    """The gateway answered with an error (its OpenAI-style message)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


class Unreachable(Exception):
    """No HTTP answer: connection refused, DNS failure, timeout."""


class AdminClient:
    """The admin API over HTTP, authenticated with the master key."""

    def __init__(self, url: str, master_key: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self._headers = {"authorization": f"Bearer {master_key}"}
        self.timeout_s = timeout_s

    def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, object] | None = None,
        query: Mapping[str, str | None] | None = None,
    ) -> Json:
        """One JSON request; raises AdminError or Unreachable."""
        data = None if body is None else json.dumps(body).encode()
        with self.open(method, path, query, data) as response:
            try:
                reply: Json = json.load(response)
            except OSError as exc:
                raise Unreachable(f"the connection to {self.url} broke: {exc}") from None
            except ValueError:
                raise AdminError(
                    f"{self.url}{path} did not answer JSON; is --url a token-gateway?",
                    response.status,
                ) from None
            return reply

    def download(self, path: str, query: Mapping[str, str | None], out: BinaryIO) -> None:
        """Stream a response body into ``out``."""
        with self.open("GET", path, query, None) as response:
            try:
                shutil.copyfileobj(response, out)
            except OSError as exc:
                raise Unreachable(f"the download from {self.url} failed: {exc}") from None

    def open(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | None] | None = None,
        data: bytes | None = None,
    ) -> http.client.HTTPResponse:
        """The response to one request, open for reading (the caller closes it)."""
        params = {k: v for k, v in (query or {}).items() if v is not None}
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        headers = dict(self._headers)
        if data is not None:
            headers["content-type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            response: http.client.HTTPResponse = urllib.request.urlopen(
                request, timeout=self.timeout_s
            )
        except urllib.error.HTTPError as exc:
            with exc:
                raise AdminError(_error_message(exc.read(), exc.code), exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise Unreachable(f"cannot reach the gateway at {self.url}: {reason}") from None
        return response


def _error_message(raw: bytes, status: int) -> str:
    try:
        error = json.loads(raw)["error"]
        message = str(error["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}: {raw[:200].decode(errors='replace')}"
    param = error.get("param")
    return f"{message} (field: {param})" if param and param not in message else message


# --- the command line --------------------------------------------------------------------


def add_admin_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``keys``, ``teams``, ``spend``, ``cache``, ``audit`` and ``deployments`` to the CLI."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=os.environ.get(URL_ENV, DEFAULT_URL),
        help=f"the gateway (default: ${URL_ENV} or {DEFAULT_URL}); "
        f"the master key is read from ${MASTER_KEY_ENV}",
    )
    keys = _group(sub, "keys", "create, list and revoke virtual keys")
    create = _leaf(keys, "create", "create a key; prints its secret, once", common, _create_key)
    create.add_argument("--team", default="default", help="its team (created if unknown)")
    create.add_argument("--name", help="a label")
    create.add_argument(
        "--alias", action="append", default=[], help="an alias it may call (repeat; default: all)"
    )
    create.add_argument("--policy", help="the routing policy for its requests")
    create.add_argument(
        "--cache", choices=("off", "deterministic", "always"), help="its response cache mode"
    )
    create.add_argument("--expires-in-s", type=float, help="seconds until it expires")
    create.add_argument(
        "--data-class", choices=DATA_CLASSES, help="the least strict data class of its requests"
    )
    _limit_options(create)
    listing = _leaf(keys, "list", "list keys (never their secrets)", common, _list_keys)
    listing.add_argument("--team", help="only this team's keys")
    revoke = _leaf(keys, "revoke", "disable a key for good (kept for audit)", common, _revoke)
    revoke.add_argument("key_id")
    teams = _group(sub, "teams", "create and list teams")
    team = _leaf(teams, "create", "create a team", common, _create_team)
    team.add_argument("team_id")
    team.add_argument(
        "--data-class", choices=DATA_CLASSES, help="the least strict data class of its requests"
    )
    _limit_options(team)
    _leaf(teams, "list", "list teams", common, _list_teams)
    spend = _group(sub, "spend", "spend reports and the ledger export")
    report = _leaf(spend, "report", "totals per group, as a table", common, _report)
    report.add_argument("--group-by", choices=GROUPS, default="team")
    _range_options(report)
    export = _leaf(spend, "export", "ledger records as CSV or JSONL", common, _export)
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--output", help="write to this file instead of stdout")
    _range_options(export)
    cache = _group(sub, "cache", "the response cache: stats and purge")
    stats = _leaf(cache, "stats", "entries, bytes and hit ratio", common, _cache_stats)
    purge = _leaf(cache, "purge", "delete cached answers", common, _cache_purge)
    for parser in (stats, purge):
        parser.add_argument("--namespace", help="one team's entries (or '~shared')")
        parser.add_argument("--alias", help="one alias's entries")
    audit = _group(sub, "audit", "the privacy audit log")
    records = _leaf(audit, "list", "pinned, upgraded and refused requests", common, _audit)
    records.add_argument("--team", help="only this team")
    records.add_argument("--since", help="epoch seconds (default: every record kept)")
    records.add_argument("--limit", type=int, default=100, help="at most this many (newest)")

    deployments = _group(sub, "deployments", "operator states: list, disable, enable, drain")
    _leaf(deployments, "list", "every deployment and its state", common, _list_deployments)
    for action, summary in (
        ("disable", "no new requests on any replica"),
        ("enable", "serve again"),
        ("drain", "no new requests; disabled once the calls in flight finish"),
    ):
        leaf = _leaf(deployments, action, summary, common, _change_deployment)
        leaf.add_argument("name", help="a deployment, a discovery group or a member group@ip:port")


def run_admin_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run a parsed admin command (``keys``, ``deployments``, ...); returns the exit code."""
    master_key = os.environ.get(MASTER_KEY_ENV)
    if not master_key:
        print(f"set {MASTER_KEY_ENV} to the gateway's master key", file=sys.stderr)
        return 2
    action: Action = args.admin_action
    try:
        action(AdminClient(args.url, master_key), args, out or sys.stdout)
    except AdminError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except Unreachable as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except OSError as exc:  # a local file: --output in a missing directory, a full disk
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _group(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    parser = sub.add_parser(name, help=summary, description=summary)
    return parser.add_subparsers(dest="action", required=True)


def _leaf(
    group: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    common: argparse.ArgumentParser,
    action: Action,
) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=summary, description=summary, parents=[common])
    parser.set_defaults(admin_action=action)
    return parser


def _limit_options(parser: argparse.ArgumentParser) -> None:
    for period in ("day", "month", "total"):
        parser.add_argument(f"--budget-{period}", metavar="USD", help=f"{period} budget in USD")
    parser.add_argument("--rpm", type=int, help="requests per minute")
    parser.add_argument("--tpm", type=int, help="tokens per minute")
    parser.add_argument("--max-parallel", type=int, help="requests in flight at once")


def _range_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", help="first day (2026-11-30) or epoch seconds")
    parser.add_argument("--to", dest="end", help="last day, included (default: today, UTC)")
    parser.add_argument("--team", help="only this team")


def _limits(args: argparse.Namespace) -> Json:
    budget = {
        period: getattr(args, f"budget_{period}")
        for period in ("day", "month", "total")
        if getattr(args, f"budget_{period}") is not None
    }
    limits: Json = {"budget_usd": budget} if budget else {}
    for name in ("rpm", "tpm", "max_parallel"):
        if getattr(args, name) is not None:
            limits[name] = getattr(args, name)
    return limits


# --- the commands ------------------------------------------------------------------------


def _create_key(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    body: Json = {"team_id": args.team, **_limits(args)}
    if args.name is not None:
        body["name"] = args.name
    if args.alias:
        body["aliases"] = args.alias
    if args.policy is not None:
        body["policy"] = args.policy
    if args.cache is not None:
        body["cache"] = args.cache
    if args.expires_in_s is not None:
        body["expires_in_s"] = args.expires_in_s
    if args.data_class is not None:
        body["data_class"] = args.data_class
    key = client.call("POST", "/admin/keys", body)
    print(f"key_id  {key['key_id']}", file=out)
    print(f"team    {key['team_id']}", file=out)
    print(f"secret  {key['key']}", file=out)
    print("The secret is shown only this once: store it now.", file=sys.stderr)


def _list_keys(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    keys = client.call("GET", "/admin/keys", query={"team": args.team})["data"]
    rows = [
        [k["key_id"], k["team_id"], k["name"], k["hint"], _status(k), _when(k["expires_at"])]
        for k in keys
    ]
    print(_table(["key_id", "team", "name", "hint", "status", "expires"], rows), file=out)


def _revoke(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    key = client.call("POST", f"/admin/keys/{urllib.parse.quote(args.key_id, safe='')}/revoke")
    print(f"revoked {key['key_id']} (team {key['team_id']})", file=out)


def _create_team(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    body: Json = {"team_id": args.team_id, **_limits(args)}
    if args.data_class is not None:
        body["data_class"] = args.data_class
    team = client.call("POST", "/admin/teams", body)
    print(f"created team {team['team_id']}", file=out)


def _list_teams(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    teams = client.call("GET", "/admin/teams")["data"]
    rows = [
        [
            t["team_id"],
            *(_money(t["budget_usd"][p]) for p in ("day", "month", "total")),
            *(_number(t[name]) for name in ("rpm", "tpm", "max_parallel")),
        ]
        for t in teams
    ]
    headers = ["team", "budget/day $", "budget/month $", "budget/total $", "rpm", "tpm"]
    print(_table([*headers, "parallel"], rows, right_from=1), file=out)


def _report(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    query = {"group_by": args.group_by, "from": args.start, "to": args.end, "team": args.team}
    spend = client.call("GET", "/admin/spend", query=query)
    rows = [_spend_row(row) for row in [*spend["data"], spend["total"]]]
    headers = [args.group_by, "requests", "tokens in", "tokens out", "cost $", "reference $"]
    title = f"spend from {spend['from']} to {spend['to']}"
    if spend["team"] is not None:
        title += f", team {spend['team']}"
    print(title, file=out)
    print(_table([*headers, "savings $"], rows, right_from=1, rule_before_last=True), file=out)


def _export(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    query = {"format": args.format, "from": args.start, "to": args.end, "team": args.team}
    if args.output is None:
        out.flush()
        client.download("/admin/spend/export", query, _binary(out))
        return
    partial = f"{args.output}.partial"  # no half-written file under the real name
    try:
        with open(partial, "wb") as file:
            client.download("/admin/spend/export", query, file)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    os.replace(partial, args.output)
    print(f"wrote {args.output}", file=sys.stderr)


def _cache_stats(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    query = {"namespace": args.namespace, "alias": args.alias}
    stats = client.call("GET", "/admin/cache/stats", query=query)
    ratio = stats["hit_ratio"]
    rows = [
        [
            str(stats["entries"]),
            str(stats["bytes"]),
            str(stats["hits"]),
            str(stats["misses"]),
            "-" if ratio is None else f"{ratio:.1%}",
        ]
    ]
    print(_table(["entries", "bytes", "hits", "misses", "hit ratio"], rows), file=out)


def _cache_purge(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    query = {"namespace": args.namespace, "alias": args.alias}
    purged = client.call("DELETE", "/admin/cache", query=query)
    print(f"deleted {purged['deleted']} cached answers", file=out)


def _audit(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    query = {"team": args.team, "since": args.since, "limit": str(args.limit)}
    records = client.call("GET", "/admin/audit", query=query)["data"]
    rows = [
        [
            _when(r["ts"]),
            r["request_id"],
            r["team_id"],
            r["key_id"],
            r["alias"],
            r["data_class"],
            ",".join(r["sources"]),
            r["outcome"],
            r["deployment"],
            r["reason"],
        ]
        for r in records
    ]
    headers = ["time", "request", "team", "key", "alias", "class", "set by", "outcome"]
    print(_table([*headers, "deployment", "reason"], rows), file=out)


def _list_deployments(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    rows = [_deployment_row(d) for d in client.call("GET", "/admin/deployments")["data"]]
    headers = ["name", "kind", "state", "wanted", "provider", "inflight", "circuit"]
    print(_table(headers, rows), file=out)


def _change_deployment(client: AdminClient, args: argparse.Namespace, out: TextIO) -> None:
    name = urllib.parse.quote(args.name, safe="")
    changed = client.call("POST", f"/admin/deployments/{name}/{args.action}")
    for row in changed["data"]:
        print(f"{row['name']}: {row['state'] or 'not present here'}", file=out)


def _deployment_row(row: Json) -> list[str]:
    return [
        str(row["name"]),
        str(row["kind"]),
        str(row["state"] or "-"),
        str(row["wanted"] or "-"),
        str(row.get("provider", "-")),
        str(row.get("inflight", "-")),
        str(row.get("circuit") or "-"),
    ]


def _binary(out: TextIO) -> BinaryIO:
    buffer: BinaryIO = getattr(out, "buffer", sys.stdout.buffer)
    return buffer


# --- shaping -----------------------------------------------------------------------------


def _spend_row(row: Json) -> list[str]:
    return [
        str(row["group"]),
        f"{row['requests']:,}",
        f"{row['input_tokens']:,}",
        f"{row['output_tokens']:,}",
        _dollars(row["cost_micros"]),
        _dollars(row["reference_micros"]),
        _dollars(row["savings_micros"]),
    ]


def _dollars(micros: int) -> str:
    return f"{Decimal(micros).scaleb(-6):,.6f}"


def _money(usd: float | None) -> str:
    return "-" if usd is None else f"{usd:,.2f}"


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _status(key: Json) -> str:
    if key["disabled"]:
        return "revoked"
    expires = key["expires_at"]
    if expires is not None and expires <= datetime.now(UTC).timestamp():
        return "expired"
    return "active"


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right_from: int | None = None,
    rule_before_last: bool = False,
) -> str:
    """Columns padded to their widest cell; numbers (columns from ``right_from``) right."""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            str(c).rjust(w) if right_from is not None and i >= right_from else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(r) for r in rows]
    if rule_before_last and body:
        body.insert(len(body) - 1, rule)
    return "\n".join([line(headers), rule, *body])
