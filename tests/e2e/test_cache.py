"""The response cache end to end: two gateways on one real ``redis-server``, logged emulators,
the openai SDK as the client.

- A burst of 50 identical requests makes exactly one upstream call (the emulators' request
  logs count), on one gateway and split across two; all 50 get the one answer (same id).
- A team never gets another team's cached answer.
- An entry written by a stream is served to a non-stream request and the reverse; the SDK
  sees the same content and usage either way.
- Hits are in the ledger at $0 with their savings; ``Cache-Control`` and the TTL header work.
The Qwen workers run at real speed (time scale 1), so a burst overlaps the leader's call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from loadtests.fleet import metric_sum, scrape
from tests.support.accounting import (
    QWEN,
    AccountingFleet,
    Admin,
    NewKey,
    start_accounting_fleet,
)
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e
BURST = 50


@dataclass(frozen=True, slots=True)
class CacheFleet:
    """The fleet, its admin client and one key per team (alpha, beta)."""

    fleet: AccountingFleet
    admin: Admin
    alpha: NewKey
    beta: NewKey

    def upstream_calls(self) -> int:
        """Requests the emulators have logged so far."""
        return sum(len(lines) for lines in self.fleet.upstream_requests().values())


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CacheFleet]:
    """Two gateways caching every answer (``mode: always``) on one Redis."""
    workdir = tmp_path_factory.mktemp("cache")
    redis = RedisServer(workdir)
    redis.start()
    try:
        with contextlib.ExitStack() as stack:
            fleet = start_accounting_fleet(
                stack, workdir, redis.url, gateways=2, cache={"mode": "always"}, qwen_time_scale=1.0
            )
            with fleet.admin() as admin:
                admin.create_team("alpha")
                admin.create_team("beta")
                yield CacheFleet(fleet, admin, admin.create_key("alpha"), admin.create_key("beta"))
    finally:
        redis.stop()


def _messages(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


async def _burst(
    urls: list[str], secret: str, prompt: str, count: int
) -> list[tuple[str, dict[str, Any]]]:
    """``count`` identical requests at once, spread over ``urls``; (x-gateway-cache, body)."""
    clients = [
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0, timeout=60.0)
        for url in urls
    ]
    try:

        async def one(n: int) -> tuple[str, dict[str, Any]]:
            raw = await clients[n % len(clients)].chat.completions.with_raw_response.create(
                model=QWEN, messages=_messages(prompt), max_tokens=48
            )
            return raw.headers["x-gateway-cache"], raw.parse().model_dump()

        return await asyncio.gather(*(one(n) for n in range(count)))
    finally:
        for client in clients:
            await client.close()


@pytest.mark.parametrize("gateways", [1, 2])
def test_a_burst_of_identical_misses_makes_one_upstream_call(
    cached: CacheFleet, gateways: int
) -> None:
    prompt = f"burst {gateways} {secrets.token_hex(4)}: name three rivers"
    before = cached.upstream_calls()
    answers = asyncio.run(_burst(cached.fleet.urls[:gateways], cached.alpha.secret, prompt, BURST))
    calls = cached.upstream_calls() - before
    results = Counter(result for result, _ in answers)
    ids = {body["id"] for _, body in answers}
    contents = {body["choices"][0]["message"]["content"] for _, body in answers}
    print(f"{gateways} gateway(s): {BURST} requests -> {calls} upstream call(s), {dict(results)}")
    assert calls == 1
    assert results == {"miss": 1, "hit": BURST - 1}
    assert len(ids) == 1 and len(contents) == 1  # the one upstream answer, 50 times


def test_a_team_never_gets_another_teams_answer(cached: CacheFleet) -> None:
    prompt = f"isolation {secrets.token_hex(4)}: what is our secret plan?"
    url = cached.fleet.urls[0]
    before = cached.upstream_calls()
    seen = []
    for key in (cached.alpha, cached.beta, cached.alpha, cached.beta):
        with openai.OpenAI(base_url=f"{url}/v1", api_key=key.secret, max_retries=0) as client:
            raw = client.chat.completions.with_raw_response.create(
                model=QWEN, messages=_messages(prompt), max_tokens=16
            )
            seen.append((raw.headers["x-gateway-cache"], raw.parse().id))
    assert [result for result, _ in seen] == ["miss", "miss", "hit", "hit"]
    assert cached.upstream_calls() - before == 2
    alpha_id, beta_id = seen[0][1], seen[1][1]
    assert alpha_id != beta_id
    assert seen[2][1] == alpha_id and seen[3][1] == beta_id


def _stream(client: openai.OpenAI, prompt: str) -> tuple[str, str, tuple[int, int]]:
    """A streamed answer through the SDK: (x-gateway-cache, content, usage)."""
    raw = client.chat.completions.with_raw_response.create(
        model=QWEN,
        messages=_messages(prompt),
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
    )
    content, usage = [], None
    for chunk in raw.parse():
        if chunk.choices and chunk.choices[0].delta.content:
            content.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
    assert usage is not None, "include_usage asked for a usage chunk"
    return raw.headers["x-gateway-cache"], "".join(content), usage


def _complete(client: openai.OpenAI, prompt: str) -> tuple[str, str, tuple[int, int]]:
    """A non-streamed answer through the SDK: (x-gateway-cache, content, usage)."""
    raw = client.chat.completions.with_raw_response.create(
        model=QWEN, messages=_messages(prompt), max_tokens=24
    )
    reply = raw.parse()
    assert reply.usage is not None
    usage = (reply.usage.prompt_tokens, reply.usage.completion_tokens)
    return raw.headers["x-gateway-cache"], reply.choices[0].message.content or "", usage


def test_stream_and_non_stream_share_entries(cached: CacheFleet) -> None:
    url = cached.fleet.urls[1]
    with openai.OpenAI(base_url=f"{url}/v1", api_key=cached.alpha.secret, max_retries=0) as sdk:
        first = f"stream first {secrets.token_hex(4)}"
        streamed = _stream(sdk, first)
        replayed = _complete(sdk, first)
        second = f"json first {secrets.token_hex(4)}"
        completed = _complete(sdk, second)
        restreamed = _stream(sdk, second)
    assert (streamed[0], replayed[0]) == ("miss", "hit")
    assert streamed[1] and replayed[1:] == streamed[1:]
    assert (completed[0], restreamed[0]) == ("miss", "hit")
    assert completed[1] and restreamed[1:] == completed[1:]


def test_cache_control_and_ttl_headers(cached: CacheFleet) -> None:
    url = cached.fleet.urls[0]
    prompt = f"controls {secrets.token_hex(4)}"
    body = {"model": QWEN, "messages": _messages(prompt), "max_tokens": 8}
    auth = {"Authorization": f"Bearer {cached.alpha.secret}"}

    def ask(**headers: str) -> tuple[str, str]:
        reply = httpx.post(f"{url}/v1/chat/completions", json=body, headers={**auth, **headers})
        assert reply.status_code == 200, reply.text
        return reply.headers["x-gateway-cache"], reply.json()["id"]

    assert ask(**{"cache-control": "no-store"})[0] == "miss"
    result, first = ask()
    assert result == "miss"  # no-store wrote nothing
    assert ask() == ("hit", first)
    result, refreshed = ask(**{"cache-control": "no-cache"})
    assert result == "refresh" and refreshed != first
    assert ask(**{"cache-control": "no-cache, no-store"})[0] == "bypass"
    deadline = time.monotonic() + 5.0  # the refreshed answer is written after its response
    while (latest := ask()) != ("hit", refreshed) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert latest == ("hit", refreshed)
    bad = httpx.post(
        f"{url}/v1/chat/completions", json=body, headers={**auth, "x-gateway-cache-ttl": "soon"}
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "x-gateway-cache-ttl"
    short = {**body, "max_tokens": 9}
    for expected in ("miss", "hit"):
        reply = httpx.post(
            f"{url}/v1/chat/completions",
            json=short,
            headers={**auth, "x-gateway-cache-ttl": "0.5"},
        )
        assert reply.headers["x-gateway-cache"] == expected
    time.sleep(0.8)
    expired = httpx.post(f"{url}/v1/chat/completions", json=short, headers=auth)
    assert expired.headers["x-gateway-cache"] == "miss"


def test_hits_are_in_the_ledger_at_no_cost_with_their_savings(cached: CacheFleet) -> None:
    url = cached.fleet.urls[0]
    team = cached.admin.create_team(f"ledger-{secrets.token_hex(3)}")["team_id"]
    key = cached.admin.create_key(team)
    prompt = f"ledger {secrets.token_hex(4)}"
    with openai.OpenAI(base_url=f"{url}/v1", api_key=key.secret, max_retries=0) as sdk:
        results = [_complete(sdk, prompt)[0] for _ in range(3)]
    assert results == ["miss", "hit", "hit"]
    records: list[dict[str, Any]] = []
    for _ in range(100):
        records = cached.admin.export(team)
        if len(records) == 3:
            break
        time.sleep(0.1)
    hits = [r for r in records if r["cache_hit"]]
    assert len(records) == 3 and len(hits) == 2
    miss = next(r for r in records if not r["cache_hit"])
    for hit in hits:
        assert hit["source"] == "cache" and hit["deployment"] == "cache"
        assert hit["cost_micros"] == 0
        assert (hit["input_tokens"], hit["output_tokens"]) == (
            miss["input_tokens"],
            miss["output_tokens"],
        )
        assert hit["reference_micros"] == miss["reference_micros"] > 0
    saved = metric_sum(
        scrape(url),
        "gateway_savings_usd_total",
        lambda labels: labels.get("source") == "cache" and labels.get("team") == team,
    )
    assert saved == pytest.approx(2 * miss["reference_micros"] / 1e6, rel=1e-6)


def test_admin_stats_and_purge(cached: CacheFleet) -> None:
    url = cached.fleet.urls[0]
    team = cached.admin.create_team(f"purge-{secrets.token_hex(3)}")["team_id"]
    key = cached.admin.create_key(team)
    with openai.OpenAI(base_url=f"{url}/v1", api_key=key.secret, max_retries=0) as sdk:
        for n in range(3):
            _complete(sdk, f"purge me {n}")
        assert _complete(sdk, "purge me 0")[0] == "hit"
        stats = cached.admin.http.get("/admin/cache/stats", params={"namespace": team}).json()
        assert stats["entries"] == 3 and stats["bytes"] > 0
        assert stats["hits"] == 1 and stats["misses"] == 3
        purged = cached.admin.http.delete("/admin/cache", params={"namespace": team}).json()
        assert purged["deleted"] == 3
        assert _complete(sdk, "purge me 0")[0] == "miss"
    other = cached.admin.http.get("/admin/cache/stats", params={"namespace": "alpha"}).json()
    assert other["entries"] > 0  # another team's entries are untouched


@contextlib.contextmanager
def _fleet_on_own_redis(
    workdir: Path,
    redis: RedisServer,
    gateways: int,
    accounting: dict[str, Any],
    cache: dict[str, Any],
) -> Iterator[tuple[AccountingFleet, str]]:
    """``redis`` started, a fleet with a cache on it, and a key of team ``ops``; all stopped
    at the end."""
    redis.workdir.mkdir()
    redis.start()
    try:
        with contextlib.ExitStack() as stack:
            fleet = start_accounting_fleet(
                stack, workdir, redis.url, gateways=gateways, accounting=accounting, cache=cache
            )
            with fleet.admin() as admin:
                admin.create_team("ops")
                yield fleet, admin.create_key("ops").secret
    finally:
        redis.stop()


@pytest.mark.slow
def test_redis_killed_mid_load_gives_no_5xx_and_hits_resume(tmp_path: Path) -> None:
    # Durable (AOF, fsync always) as in production: the keys must survive the restart.
    redis = RedisServer(tmp_path / "redis", durable=True)
    with _fleet_on_own_redis(
        tmp_path,
        redis,
        2,
        accounting={"store_timeout_ms": 250, "store_retry_s": 0.5},
        cache={"mode": "always", "retry_s": 0.5},
    ) as (fleet, secret):
        prompts = [f"outage {n % 20}" for n in range(600)]
        statuses, results = asyncio.run(_load_with_outage(fleet, secret, prompts, redis))
        time.sleep(0.6)  # past retry_s: a circuit still open at the end of the load probes again
        after = asyncio.run(_burst(fleet.urls, secret, "after the outage", 1))
        again = asyncio.run(_burst(fleet.urls, secret, "after the outage", 1))
    print(f"statuses {dict(statuses)}, cache results {dict(results)}")
    assert set(statuses) == {200}
    assert results["bypass"] > 0 and results["hit"] > 0
    assert (after[0][0], again[0][0]) == ("miss", "hit")


async def _load_with_outage(
    fleet: AccountingFleet, secret: str, prompts: list[str], redis: RedisServer
) -> tuple[Counter[int], Counter[str]]:
    statuses: Counter[int] = Counter()
    results: Counter[str] = Counter()
    done = 0
    third, two_thirds = asyncio.Event(), asyncio.Event()
    clients = [
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=60.0)
        for url in fleet.urls
    ]

    async def worker(lane: int) -> None:
        nonlocal done
        for n in range(lane, len(prompts), 20):
            body = {"model": QWEN, "messages": _messages(prompts[n]), "max_tokens": 4}
            reply = await clients[n % 2].post("/v1/chat/completions", json=body)
            statuses[reply.status_code] += 1
            results[reply.headers.get("x-gateway-cache", "none")] += 1
            done += 1
            if done >= len(prompts) // 3:
                third.set()
            if done >= 2 * len(prompts) // 3:
                two_thirds.set()

    async def outage() -> None:
        await third.wait()
        await asyncio.to_thread(redis.kill)
        await two_thirds.wait()
        await asyncio.to_thread(redis.start)

    try:
        await asyncio.gather(outage(), *(worker(lane) for lane in range(20)))
    finally:
        for client in clients:
            await client.aclose()
    return statuses, results


@pytest.mark.slow
def test_a_frozen_redis_costs_a_few_timeouts_per_interval_not_one_per_request(
    tmp_path: Path,
) -> None:
    """Redis stopped (SIGSTOP: connections open, no answers) for 2 s under sequential
    traffic: every request is answered, the cache times out 3 times per ``retry_s`` and is
    bypassed in between, and hits come back once Redis runs again."""
    redis = RedisServer(tmp_path / "redis")
    with (
        _fleet_on_own_redis(
            tmp_path,
            redis,
            1,
            accounting={"key_cache_s": 600},  # the key is read once, before the freeze
            cache={"mode": "always", "retry_s": 1.0, "timeout_ms": 25},
        ) as (fleet, secret),
        httpx.Client(
            base_url=fleet.urls[0], headers={"Authorization": f"Bearer {secret}"}, timeout=30.0
        ) as http,
    ):
        body = {"model": QWEN, "messages": _messages("frozen"), "max_tokens": 4}
        assert http.post("/v1/chat/completions", json=body).status_code == 200
        errors_before = _cache_errors(fleet.urls[0])
        os.kill(redis.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            seen = []
            while time.monotonic() - frozen_at < 2.0:
                started = time.monotonic()
                reply = http.post("/v1/chat/completions", json=body)
                seen.append((reply.status_code, time.monotonic() - started))
        finally:
            os.kill(redis.pid, signal.SIGCONT)
        errors = _cache_errors(fleet.urls[0]) - errors_before
        time.sleep(1.2)  # past retry_s: the next request probes Redis again
        headers = [
            http.post("/v1/chat/completions", json=body).headers["x-gateway-cache"]
            for _ in range(2)
        ]
    slow = sorted(seconds for _, seconds in seen)[-3:]
    print(f"{len(seen)} requests while frozen, {errors:.0f} cache errors, slowest {slow}")
    assert {status for status, _ in seen} == {200}
    assert len(seen) > 20
    assert errors <= 3 * 3  # 3 failures open the circuit, once per second of the freeze
    assert headers[-1] == "hit"


def _cache_errors(url: str) -> float:
    return metric_sum(scrape(url), "gateway_cache_errors_total")


def test_a_stream_the_client_cut_off_is_not_stored(cached: CacheFleet) -> None:
    url = cached.fleet.urls[0]
    prompt = f"cut {secrets.token_hex(4)}: count slowly to one hundred"
    auth = {"Authorization": f"Bearer {cached.alpha.secret}"}
    body = {"model": QWEN, "messages": _messages(prompt), "max_tokens": 200, "stream": True}
    with httpx.Client(base_url=url, headers=auth, timeout=30.0) as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as cut:
            assert cut.headers["x-gateway-cache"] == "miss"
            first = next(line for line in cut.iter_lines() if line.startswith("data: "))
        assert first.startswith("data: {")  # one event read, then the connection closed
        # Asked again at once, it follows the cut stream's lease, or finds no entry.
        again = http.post("/v1/chat/completions", json={**body, "stream": False})
    assert again.headers["x-gateway-cache"] == "miss"
    assert again.json()["choices"][0]["finish_reason"] in ("stop", "length")
