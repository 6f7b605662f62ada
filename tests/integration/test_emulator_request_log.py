"""The emulators' ``--request-log``: one JSON line per request, joinable by X-Request-Id.

Real emulator processes on loopback (``loadtests.fleet.start_emulator``), driven with raw
aiohttp so that a stream can be cut off after a few events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from loadtests.fleet import Service, start_emulator
from tests.support.services import EMULATOR_TIME_SCALE

pytestmark = pytest.mark.integration

QWEN = "Qwen/Qwen2.5-7B-Instruct"
TIMEOUT = aiohttp.ClientTimeout(total=20)


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[dict[str, tuple[Service, Path]]]:
    """A vLLM worker (real-time speed, so a stream can be cut), an OpenAI emulator and an
    always-failing vLLM worker, each with its request log."""
    with contextlib.ExitStack() as stack:
        found: dict[str, tuple[Service, Path]] = {}
        for name, kind, scale, extra in (
            ("vllm", "vllm", 1.0, ()),
            ("openai", "openai", EMULATOR_TIME_SCALE, ()),
            ("failing", "vllm", EMULATOR_TIME_SCALE, ("--fail-rate", "1")),
        ):
            log = tmp_path / f"{name}.jsonl"
            service = start_emulator(
                stack, kind, "--request-log", str(log), *extra, time_scale=scale, log_dir=tmp_path
            )
            found[name] = (service, log)
        yield found


def _lines(path: Path, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """The log's lines once there are ``count`` of them (the caller asserts on them)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        lines = [json.loads(line) for line in text.splitlines()]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def _chat(model: str, *, stream: bool, max_tokens: int, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "tell me about request logs"}],
        "max_tokens": max_tokens,
        "stream": stream,
        **extra,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


async def _post(session: aiohttp.ClientSession, url: str, rid: str, body: object) -> int:
    async with session.post(
        f"{url}/v1/chat/completions",
        json=body,
        headers={"X-Request-Id": rid, "Authorization": "Bearer sk-emulated"},
    ) as resp:
        await resp.read()
        return resp.status


async def _cut_stream(session: aiohttp.ClientSession, url: str, rid: str, events: int) -> None:
    """Read ``events`` SSE events of a long stream, then drop the connection."""
    body = _chat(QWEN, stream=True, max_tokens=400, ignore_eos=True)
    async with session.post(
        f"{url}/v1/chat/completions", json=body, headers={"X-Request-Id": rid}
    ) as resp:
        assert resp.status == 200
        seen = 0
        async for line in resp.content:
            if line.startswith(b"data: "):
                seen += 1
                if seen == events:
                    break
        resp.close()  # not released to the pool: the server sees the disconnect


def test_request_log_has_one_line_per_request_with_its_id_tokens_and_status(
    logged: dict[str, tuple[Service, Path]],
) -> None:
    vllm, vllm_log = logged["vllm"]
    openai_emulator, openai_log = logged["openai"]
    failing, failing_log = logged["failing"]

    async def run() -> list[int]:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            statuses = [
                await _post(session, vllm.url, "r-plain", _chat(QWEN, stream=False, max_tokens=5)),
                await _post(
                    session,
                    openai_emulator.url,
                    "r-stream",
                    _chat("gpt-4o-mini", stream=True, max_tokens=7),
                ),
                await _post(
                    session, vllm.url, "r-unknown", _chat("nope", stream=False, max_tokens=5)
                ),
                await _post(
                    session, failing.url, "r-fail", _chat(QWEN, stream=False, max_tokens=5)
                ),
            ]
            await _cut_stream(session, vllm.url, "r-cut", events=6)
            return statuses

    statuses = asyncio.run(run())
    by_id = {line["request_id"]: line for line in _lines(vllm_log, 3)}
    paid = _lines(openai_log, 1)
    failed = _lines(failing_log, 1)

    assert statuses == [200, 200, 404, 500]
    assert set(by_id) == {"r-plain", "r-unknown", "r-cut"}
    plain, unknown, cut = by_id["r-plain"], by_id["r-unknown"], by_id["r-cut"]
    assert plain["model"] == QWEN and plain["stream"] is False
    assert plain["status"] == 200 and not plain["aborted"]
    assert plain["prompt_tokens"] > 0 and 1 <= plain["completion_tokens"] <= 5
    assert unknown["status"] == 404 and unknown["completion_tokens"] == 0
    # The role chunk and 5 tokens were read; more may have been in flight, not all 400.
    assert cut["status"] == 200 and cut["aborted"] is True and cut["stream"] is True
    assert 5 <= cut["completion_tokens"] < 400
    assert [(p["request_id"], p["model"], p["stream"], p["status"]) for p in paid] == [
        ("r-stream", "gpt-4o-mini", True, 200)
    ]
    assert 1 <= paid[0]["completion_tokens"] <= 7 and not paid[0]["aborted"]
    assert [(f["request_id"], f["status"], f["completion_tokens"]) for f in failed] == [
        ("r-fail", 500, 0)
    ]
