"""Accounting on real processes: gateways sharing one redis-server, emulators that log every
request, teams and keys made through the admin HTTP API, load from the openai SDK.

``start_accounting_fleet`` starts two vLLM Qwen workers and one OpenAI emulator (each with
``--request-log``) and N ``python -m gateway serve`` processes on the given Redis, all on
loopback and entered into the caller's ExitStack. ``Admin`` talks to ``/admin`` with the
master key. ``run_load`` sends ``Shot``s from concurrent clients: the openai SDK
(``AsyncOpenAI``, no retries), or raw aiohttp for a stream the client cuts off. The sums the
tests compare (ledger records, emulator request logs, price table) are computed here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import openai

from gateway.accounting.codec import SPEND_METRICS
from gateway.accounting.model import to_micros
from gateway.config import Config, load_config
from loadtests.fleet import Service, metric_sum, scrape, start_emulator, start_gateway
from tests.support.services import (
    EMULATOR_TIME_SCALE,
    demo_deployment,
    local_deployment,
    logged_requests,
    write_config,
)

MASTER_KEY_ENV = "TOKEN_GATEWAY_MASTER_KEY"
QWEN = "qwen2.5-7b-instruct"
MINI = "gpt-4o-mini"
MINI_41 = "gpt-4.1-mini"
AUTO = "auto"
MINI_41_PRICE = {"input_usd_per_mtok": 0.40, "output_usd_per_mtok": 1.60}
"""Written into the config (not looked up), so one recomputation uses a price the test set."""
CLIENT_TIMEOUT_S = 30.0
LIFETIME_S = 400.0


# --- processes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoggedEmulator:
    """An emulator process and the file it logs its requests to."""

    service: Service
    request_log: Path

    def requests(self) -> list[dict[str, Any]]:
        """Every line logged so far."""
        return logged_requests(self.request_log)


@dataclass(frozen=True, slots=True)
class AccountingFleet:
    """Gateways on one Redis in front of logged emulators; ``config`` is what they serve."""

    gateways: tuple[Service, ...]
    upstreams: Mapping[str, tuple[LoggedEmulator, str]]
    """Deployment name -> the emulator serving it and the model it asks for there."""
    master_key: str
    config: Config
    log_dir: Path

    @property
    def urls(self) -> list[str]:
        """Base URLs of the gateways (no /v1)."""
        return [g.url for g in self.gateways]

    def admin(self, gateway: int = 0) -> Admin:
        """An admin client (master key) for one gateway; the caller closes it."""
        return Admin(self.gateways[gateway].url, self.master_key)

    def gateway_logs(self) -> str:
        """Everything the gateways wrote to stdout and stderr."""
        return "\n".join(g.process.log_text() for g in self.gateways)

    def upstream_requests(self) -> dict[str, list[dict[str, Any]]]:
        """Request-log lines per deployment (a shared emulator's lines split by model)."""
        found: dict[str, list[dict[str, Any]]] = {}
        lines: dict[Path, list[dict[str, Any]]] = {}
        for name, (emulator, model) in self.upstreams.items():
            if emulator.request_log not in lines:
                lines[emulator.request_log] = emulator.requests()
            found[name] = [e for e in lines[emulator.request_log] if e["model"] == model]
        return found


def start_accounting_fleet(
    stack: contextlib.ExitStack,
    log_dir: Path,
    redis_url: str,
    *,
    gateways: int = 3,
    accounting: Mapping[str, Any] | None = None,
    cache: Mapping[str, Any] | None = None,
    fail_rate: float = 0.0,
    qwen_time_scale: float = EMULATOR_TIME_SCALE,
    paid_time_scale: float = EMULATOR_TIME_SCALE,
) -> AccountingFleet:
    """Two Qwen workers, an OpenAI emulator and ``gateways`` gateways on ``redis_url``.

    Aliases: ``qwen2.5-7b-instruct`` (both workers, local), ``gpt-4o-mini`` (litellm's
    price), ``gpt-4.1-mini`` (the config's ``MINI_41_PRICE``) and ``auto`` (spillover: local
    first, then gpt-4o-mini). Auth is required; ``accounting`` adds to the section;
    ``cache``, if given, is the ``cache:`` section.
    """
    fail = ("--fail-rate", str(fail_rate)) if fail_rate else ()

    def emulator(name: str, kind: str, scale: float, *extra: str) -> LoggedEmulator:
        path = log_dir / f"requests-{name}.jsonl"
        args = ("--request-log", str(path), *fail, *extra)
        service = start_emulator(
            stack, kind, *args, time_scale=scale, log_dir=log_dir, max_lifetime_s=LIFETIME_S
        )
        return LoggedEmulator(service, path)

    qwen_a = emulator("qwen-a", "vllm", qwen_time_scale, "--seed", "1")
    qwen_b = emulator("qwen-b", "vllm", qwen_time_scale, "--seed", "2")
    paid = emulator("openai", "openai", paid_time_scale)
    mini = demo_deployment("openai-gpt-4o-mini")
    mini["base_url"] = f"{paid.service.url}/v1"
    mini_41 = {**mini, "name": "openai-gpt-4-1-mini", "model": MINI_41, "price": MINI_41_PRICE}
    config = {
        "accounting": {
            "redis_url": redis_url,
            "auth": "required",
            "master_key_env": MASTER_KEY_ENV,
            "reference_model": "gpt-4o",
            **(accounting or {}),
        },
        "deployments": [
            local_deployment("qwen-a", qwen_a.service.port),
            local_deployment("qwen-b", qwen_b.service.port),
            mini,
            mini_41,
        ],
        "aliases": {
            QWEN: {"deployments": ["qwen-a", "qwen-b"], "policy": "latency"},
            MINI: {"deployments": [mini["name"]]},
            MINI_41: {"deployments": [mini_41["name"]]},
            AUTO: {
                "deployments": ["qwen-a", "qwen-b", mini["name"]],
                "policy": "spillover",
                "slo_ttft_ms": 1000,
            },
        },
    }
    if cache is not None:
        config["cache"] = dict(cache)
    path = write_config(log_dir / "accounting.yaml", config)
    master_key = "mk-" + secrets.token_urlsafe(24)
    env = {MASTER_KEY_ENV: master_key}
    started = _start_gateways(stack, path, env, log_dir, gateways)
    upstreams = {
        "qwen-a": (qwen_a, "Qwen/Qwen2.5-7B-Instruct"),
        "qwen-b": (qwen_b, "Qwen/Qwen2.5-7B-Instruct"),
        mini["name"]: (paid, MINI),
        mini_41["name"]: (paid, MINI_41),
    }
    return AccountingFleet(tuple(started), upstreams, master_key, load_config(path, {}), log_dir)


def _start_gateways(
    stack: contextlib.ExitStack, path: Path, env: Mapping[str, str], log_dir: Path, count: int
) -> list[Service]:
    """``count`` gateways started side by side (each waits for its /readyz in a thread)."""
    stacks = [contextlib.ExitStack() for _ in range(count)]
    for own in stacks:
        stack.enter_context(own)  # each is closed by the caller's stack, also on failure
    started: list[Service | BaseException | None] = [None] * count

    def start(index: int) -> None:
        try:
            started[index] = start_gateway(
                stacks[index], path, env, log_dir=log_dir, max_lifetime_s=LIFETIME_S
            )
        except BaseException as exc:  # re-raised below, in the caller's thread
            started[index] = exc

    threads = [threading.Thread(target=start, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    services: list[Service] = []
    for result in started:
        if isinstance(result, BaseException):
            raise RuntimeError(f"a gateway did not start: {result}") from result
        if result is None:
            raise RuntimeError("a gateway did not start")
        services.append(result)
    return services


# --- the admin API -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key as ``POST /admin/keys`` returned it: the secret is only here."""

    key_id: str
    secret: str
    team_id: str


class Admin:
    """``/admin`` of one gateway with the master key (httpx, synchronous)."""

    def __init__(self, url: str, master_key: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {master_key}"}, timeout=30.0
        )

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def _ok(self, response: httpx.Response, status: int = 200) -> dict[str, Any]:
        if response.status_code != status:
            raise AssertionError(
                f"{response.request.method} {response.request.url.path}: expected {status}, "
                f"got {response.status_code}: {response.text}"
            )
        body: dict[str, Any] = response.json()
        return body

    def create_team(self, team_id: str, **fields: object) -> dict[str, Any]:
        """``POST /admin/teams`` (fields: budget_usd, rpm, tpm, max_parallel, metadata)."""
        return self._ok(self.http.post("/admin/teams", json={"team_id": team_id, **fields}), 201)

    def create_key(self, team_id: str, **fields: object) -> NewKey:
        """``POST /admin/keys`` for ``team_id``."""
        body = self._ok(self.http.post("/admin/keys", json={"team_id": team_id, **fields}), 201)
        return NewKey(body["key_id"], body["key"], body["team_id"])

    def team(self, team_id: str) -> dict[str, Any]:
        """``GET /admin/teams/{id}``: limits, spent and budget left per period."""
        return self._ok(self.http.get(f"/admin/teams/{team_id}"))

    def key(self, key_id: str) -> dict[str, Any]:
        """``GET /admin/keys/{id}``."""
        return self._ok(self.http.get(f"/admin/keys/{key_id}"))

    def revoke(self, key_id: str) -> dict[str, Any]:
        """``POST /admin/keys/{id}/revoke``."""
        return self._ok(self.http.post(f"/admin/keys/{key_id}/revoke"))

    def spend(self, group_by: str, team: str | None = None) -> dict[str, Any]:
        """``GET /admin/spend`` from yesterday to tomorrow (UTC: a run may cross midnight)."""
        params = {"group_by": group_by, **days_around_now()}
        if team is not None:
            params["team"] = team
        return self._ok(self.http.get("/admin/spend", params=params))

    def export(self, team: str | None = None) -> list[dict[str, Any]]:
        """``GET /admin/spend/export?format=jsonl`` from yesterday to tomorrow: every record."""
        params = {"format": "jsonl", **days_around_now()}
        if team is not None:
            params["team"] = team
        response = self.http.get("/admin/spend/export", params=params)
        if response.status_code != 200:
            raise AssertionError(f"export: {response.status_code}: {response.text}")
        return [json.loads(line) for line in response.text.splitlines() if line]


def days_around_now() -> dict[str, str]:
    """``from`` yesterday ``to`` tomorrow, as UTC dates."""
    today = datetime.now(UTC).date()
    return {
        "from": (today - timedelta(days=1)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
    }


# --- load --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shot:
    """One request a client will send."""

    gateway: int
    secret: str
    alias: str
    prompt: str
    max_tokens: int
    stream: bool = False
    cut_after: int | None = None
    """Streams only: read this many SSE events, then drop the connection (raw aiohttp)."""
    ignore_eos: bool = False
    """vLLM's extension: generate exactly ``max_tokens`` (a reply of known duration)."""


@dataclass(slots=True)
class Result:
    """How one shot went, as its client saw it."""

    shot: Shot
    status: int
    """The HTTP status; 0 when the client got no response at all."""
    request_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error_type: str | None = None
    error_code: str | None = None
    message: str = ""
    events: int = 0
    """SSE events read (streams)."""
    ended: float = 0.0
    """``time.monotonic()`` when the client was done with it."""


class Clients:
    """One AsyncOpenAI client per (gateway, key) and one aiohttp session; closed together."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = list(urls)
        self._sdk: dict[tuple[int, str], openai.AsyncOpenAI] = {}
        # A connection per request: a cut stream's is dropped anyway, and a reused keep-alive
        # connection the server is closing would fail a request before the gateway sees it.
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True),
            timeout=aiohttp.ClientTimeout(CLIENT_TIMEOUT_S),
        )

    def sdk(self, gateway: int, secret: str) -> openai.AsyncOpenAI:
        """The openai client for this gateway and key."""
        found = self._sdk.get((gateway, secret))
        if found is None:
            found = self._sdk[(gateway, secret)] = openai.AsyncOpenAI(
                base_url=f"{self.urls[gateway]}/v1",
                api_key=secret,
                max_retries=0,
                timeout=CLIENT_TIMEOUT_S,
            )
        return found

    async def aclose(self) -> None:
        """Close every client."""
        for client in self._sdk.values():
            await client.close()
        await self.session.close()


async def send(clients: Clients, shot: Shot) -> Result:
    """Send one shot and report how it went (never raises for an HTTP-level failure).

    Replies are not parsed into the SDK's models: on 2 shared cores that would cost the
    client more CPU than the gateway spends; the status, headers and events are what count.
    """
    if shot.cut_after is not None:
        return await _cut_stream(clients, shot)
    client = clients.sdk(shot.gateway, shot.secret)
    messages: list[Any] = [{"role": "user", "content": shot.prompt}]
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model=shot.alias,
            messages=messages,
            max_tokens=shot.max_tokens,
            stream=shot.stream,
            extra_body={"ignore_eos": True} if shot.ignore_eos else None,
        )
        result = _result(shot, raw.status_code, raw.headers)
        if shot.stream:
            try:
                async for line in raw.http_response.aiter_lines():
                    if line.startswith("data: "):
                        result.events += 1
                        if line.startswith('data: {"error"'):  # the upstream broke mid-stream
                            result.error_type, result.message = "stream_error", line
            finally:
                await raw.http_response.aclose()
        return result
    except openai.APIStatusError as err:
        result = _result(shot, err.status_code, err.response.headers)
        result.error_type, result.error_code, result.message = err.type, err.code, err.message
        return result
    except (openai.APIConnectionError, httpx.HTTPError) as err:
        return Result(shot, 0, message=f"{type(err).__name__}: {err}")


def _result(shot: Shot, status: int, headers: Mapping[str, str]) -> Result:
    kept = {k.lower(): v for k, v in headers.items()}
    return Result(shot, status, kept.get("x-request-id"), kept)


async def _cut_stream(clients: Clients, shot: Shot) -> Result:
    body = {
        "model": shot.alias,
        "messages": [{"role": "user", "content": shot.prompt}],
        "max_tokens": shot.max_tokens,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {shot.secret}"}
    url = f"{clients.urls[shot.gateway]}/v1/chat/completions"
    try:
        async with clients.session.post(url, json=body, headers=headers) as resp:
            result = _result(shot, resp.status, resp.headers)
            if resp.status != 200:
                result.message = await resp.text()
                return result
            async for line in resp.content:
                if line.startswith(b"data: "):
                    result.events += 1
                    if result.events >= (shot.cut_after or 0):
                        break
            resp.close()  # drop the connection: the gateway sees the client leave
            return result
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Result(shot, 0, message=f"{type(exc).__name__}: {exc}")


async def run_load(
    urls: Sequence[str],
    shots: Iterable[Shot],
    *,
    concurrency: int,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Send every shot from ``concurrency`` concurrent clients; results in shot order (each
    also handed to ``on_result`` as it comes, for a task that acts mid-load)."""
    queue = list(enumerate(shots))
    results: list[Result | None] = [None] * len(queue)
    clients = Clients(urls)
    cursor = iter(queue)

    async def worker() -> None:
        for index, shot in cursor:
            result = results[index] = await send(clients, shot)
            result.ended = time.monotonic()
            if on_result is not None:
                on_result(result)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    finally:
        await clients.aclose()
    return [r for r in results if r is not None]


# --- what the tests compare --------------------------------------------------------------


def wait_until_settled(
    fleet: AccountingFleet, admin: Admin, expected_records: int, timeout_s: float = 60.0
) -> int:
    """Poll until every gateway's ledger backlog is 0 and ``/admin/spend`` counts
    ``expected_records`` requests (estimates run in a thread before they are queued);
    returns the last count (the caller asserts)."""
    deadline = time.monotonic() + timeout_s
    while True:
        backlog = sum(metric_sum(scrape(url), "gateway_ledger_backlog") for url in fleet.urls)
        counted = int(admin.spend("team")["total"]["requests"])
        if (backlog == 0 and counted >= expected_records) or time.monotonic() > deadline:
            return counted
        time.sleep(0.2)


def ledger_totals(records: Iterable[Mapping[str, Any]], group_by: str) -> dict[str, dict[str, int]]:
    """Per group (team_id, key_id, alias or deployment), the sums ``/admin/spend`` keeps."""
    field_of = {"team": "team_id", "key": "key_id", "alias": "alias", "deployment": "deployment"}
    totals: dict[str, dict[str, int]] = {}
    for record in records:
        row = totals.setdefault(record[field_of[group_by]], dict.fromkeys(SPEND_METRICS, 0))
        row["requests"] += 1
        for name in SPEND_METRICS[1:-1]:
            row[name] += int(record[name])
        if record["source"] != "paid":
            row["savings_micros"] += int(record["reference_micros"]) - int(record["cost_micros"])
    return totals


def report_totals(report: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """``/admin/spend``'s rows in the shape of ``ledger_totals``."""
    return {row["group"]: {m: int(row[m]) for m in SPEND_METRICS} for row in report["data"]}


def priced(config: Config, deployment: str, input_tokens: int, output_tokens: int) -> int:
    """What the config's price table bills for these tokens on ``deployment`` (micros)."""
    dep = config.deployments[deployment]
    if dep.local or dep.price is None:
        return 0
    return to_micros(dep.price.cost(input_tokens, output_tokens))


def reference_priced(config: Config, input_tokens: int, output_tokens: int) -> int:
    """These tokens on the config's reference model (micros)."""
    price = config.accounting.reference_price
    assert price is not None
    return to_micros(price.cost(input_tokens, output_tokens))


@contextlib.contextmanager
def admin_of(fleet: AccountingFleet, gateway: int = 0) -> Iterator[Admin]:
    """``fleet.admin(gateway)``, closed at the end of the block."""
    admin = fleet.admin(gateway)
    try:
        yield admin
    finally:
        admin.close()
