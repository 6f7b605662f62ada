"""The upstream emulators as real processes: wire formats, metrics and fault knobs.

Each emulator runs via ``python -m loadtests.emulate`` on a free loopback port with a small
time scale, is bounded in time, and is stopped at the end. Clients are the official openai
SDK, litellm (as the gateway calls Anthropic) and raw aiohttp for exact SSE framing.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from loadtests.processes import ManagedProcess, free_port, running_process

pytestmark = pytest.mark.integration

QWEN = "Qwen/Qwen2.5-7B-Instruct"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "say something about routing"}
]


def _start(
    python_exe: str, repo_root: Path, kind: str, *extra: str
) -> Iterator[tuple[str, ManagedProcess]]:
    port = free_port()
    args = [python_exe, "-m", "loadtests.emulate", kind, "--port", str(port), *extra]
    base = f"http://127.0.0.1:{port}"
    with running_process(
        args, f"{base}/health", timeout_s=30, cwd=repo_root, max_lifetime_s=120
    ) as proc:
        yield base, proc


@pytest.fixture(scope="module")
def vllm_url(python_exe: str, repo_root: Path) -> Iterator[str]:
    """A vLLM worker emulator at 1/100 of real time."""
    for base, _ in _start(python_exe, repo_root, "vllm", "--time-scale", "0.01"):
        yield base


@pytest.fixture(scope="module")
def openai_url(python_exe: str, repo_root: Path) -> Iterator[str]:
    """An OpenAI API emulator at 1/100 of real time."""
    for base, _ in _start(python_exe, repo_root, "openai", "--time-scale", "0.01"):
        yield base


@pytest.fixture(scope="module")
def anthropic_url(python_exe: str, repo_root: Path) -> Iterator[str]:
    """An Anthropic API emulator at 1/100 of real time."""
    for base, _ in _start(python_exe, repo_root, "anthropic", "--time-scale", "0.01"):
        yield base


_CLIENTS: dict[str, openai.OpenAI] = {}


def _client(base: str) -> openai.OpenAI:
    """One client per emulator, closed with the module (see ``_close_clients``)."""
    client = _CLIENTS.get(base)
    if client is None:
        client = _CLIENTS[base] = openai.OpenAI(
            base_url=f"{base}/v1", api_key="sk-test", max_retries=0, timeout=10
        )
    return client


@pytest.fixture(autouse=True, scope="module")
def _close_clients() -> Iterator[None]:
    """Close the clients' sockets here, not whenever the garbage collector finds them (a
    ResourceWarning in whichever test is running then)."""
    yield
    for client in _CLIENTS.values():
        client.close()
    _CLIENTS.clear()


def _metrics(base: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name.split("{")[0]] = samples.get(name.split("{")[0], 0.0) + float(value)
    return samples


async def _raw(base: str, path: str, body: dict[str, object], **headers: str) -> bytes:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}{path}", json=body, headers=headers) as response,
    ):
        assert response.status == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        return await response.read()


def test_vllm_non_stream_usage_matches_the_generated_words(vllm_url: str) -> None:
    reply = _client(vllm_url).chat.completions.create(
        model=QWEN,
        messages=MESSAGES,
        max_tokens=7,
    )
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 4 + 4
    assert reply.usage.completion_tokens == len((reply.choices[0].message.content or "").split())
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_vllm_ignore_eos_generates_exactly_max_tokens(vllm_url: str) -> None:
    reply = _client(vllm_url).completions.create(
        model=QWEN, prompt="count to many", max_tokens=300, extra_body={"ignore_eos": True}
    )
    assert reply.object == "text_completion"
    assert reply.usage is not None and reply.usage.completion_tokens == 300
    assert reply.choices[0].finish_reason == "length"
    assert len(reply.choices[0].text.split()) == 300


def test_vllm_stream_sends_role_tokens_finish_then_usage(vllm_url: str) -> None:
    chunks = list(
        _client(vllm_url).chat.completions.create(
            model=QWEN,
            messages=MESSAGES,
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    assert chunks[-2].choices[0].finish_reason is not None
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    text = "".join(c.choices[0].delta.content or "" for c in chunks[1:-1])
    assert chunks[-1].usage.completion_tokens == len(text.split()) == len(chunks) - 2
    assert len({c.id for c in chunks}) == 1


def test_vllm_sse_framing_is_byte_exact(vllm_url: str) -> None:
    body = {"model": QWEN, "messages": MESSAGES, "max_tokens": 3, "stream": True}
    raw = asyncio.run(_raw(vllm_url, "/v1/chat/completions", body))
    events = raw.split(b"\n\n")
    assert events[-1] == b"" and events[-2] == b"data: [DONE]"
    assert all(e.startswith(b"data: {") for e in events[:-2])
    first = json.loads(events[0][len(b"data: ") :])
    assert list(first) == ["id", "object", "created", "model", "choices"]
    assert first["choices"][0] == {
        "index": 0,
        "delta": {"role": "assistant", "content": ""},
        "logprobs": None,
        "finish_reason": None,
    }
    last = json.loads(events[-3][len(b"data: ") :])
    assert last["choices"][0]["finish_reason"] == "length"
    assert last["choices"][0]["stop_reason"] is None


def test_vllm_models_health_errors_and_embeddings(vllm_url: str) -> None:
    client = _client(vllm_url)
    models = client.models.list()
    assert [m.id for m in models.data] == [QWEN]
    assert models.data[0].owned_by == "vllm"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=QWEN, messages=[])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=MESSAGES)
    emb = client.embeddings.create(model=QWEN, input=["a b", "c"])
    assert [len(d.embedding) for d in emb.data] == [1024, 1024]
    assert emb.usage.prompt_tokens == 3


def test_vllm_metrics_use_vllm_names(vllm_url: str) -> None:
    _client(vllm_url).chat.completions.create(
        model=QWEN,
        messages=MESSAGES,
        max_tokens=2,
    )
    samples = _metrics(vllm_url)
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:request_success_total",
        "vllm:time_to_first_token_seconds_count",
        "vllm:time_per_output_token_seconds_count",
        "vllm:inter_token_latency_seconds_count",
        "vllm:e2e_request_latency_seconds_count",
        "emulator_aborted_requests_total",
    ):
        assert name in samples, name
    assert samples["vllm:generation_tokens_total"] >= 2


async def _abandon_stream(base: str) -> None:
    body = {
        "model": QWEN,
        "messages": MESSAGES,
        "max_tokens": 5000,
        "ignore_eos": True,
        "stream": True,
    }
    async with aiohttp.ClientSession() as session:
        response = await session.post(f"{base}/v1/chat/completions", json=body)
        await response.content.readline()
        response.close()


def _wait_for_aborts(base: str, count: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _metrics(base)["emulator_aborted_requests_total"] != count:
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_vllm_client_abort_cancels_generation(python_exe: str, repo_root: Path) -> None:
    for base, _ in _start(python_exe, repo_root, "vllm", "--time-scale", "1"):
        asyncio.run(_abandon_stream(base))
        _wait_for_aborts(base, 1)
        assert _metrics(base)["vllm:num_requests_running"] == 0


def test_die_after_exits_after_n_requests(python_exe: str, repo_root: Path) -> None:
    for base, proc in _start(python_exe, repo_root, "vllm", "--zero-latency", "--die-after", "2"):
        client = _client(base)
        for _ in range(2):
            client.chat.completions.create(model=QWEN, messages=MESSAGES, max_tokens=1)
        assert proc.proc.wait(timeout=10) == 3


def test_fail_rate_answers_500_and_hang_rate_never_answers(
    python_exe: str, repo_root: Path
) -> None:
    for base, _ in _start(python_exe, repo_root, "vllm", "--zero-latency", "--fail-rate", "1"):
        with pytest.raises(openai.InternalServerError):
            _client(base).chat.completions.create(model=QWEN, messages=MESSAGES)
    for base, _ in _start(python_exe, repo_root, "vllm", "--zero-latency", "--hang-rate", "1"):
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="k", max_retries=0, timeout=0.5)
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model=QWEN, messages=MESSAGES)
        _wait_for_aborts(base, 1)


def test_openai_non_stream_and_stream_with_usage(openai_url: str) -> None:
    client = _client(openai_url)
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        max_tokens=6,
    )
    assert reply.model == "gpt-4o-mini-2024-07-18"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == len((reply.choices[0].message.content or "").split())
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            max_tokens=4,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4 == len(chunks) - 3


def test_openai_headers_auth_models_and_embeddings(openai_url: str) -> None:
    raw = _client(openai_url).chat.completions.with_raw_response.create(
        model="gpt-4.1-mini",
        messages=MESSAGES,
        max_tokens=1,
    )
    for header in (
        "x-request-id",
        "openai-processing-ms",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
    ):
        assert header in raw.headers, header
    with pytest.raises(openai.NotFoundError) as not_found:
        _client(openai_url).chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert not_found.value.code == "model_not_found"
    with urllib.request.urlopen(f"{openai_url}/health", timeout=5) as response:
        assert response.status == 200
    request = urllib.request.Request(f"{openai_url}/v1/models")
    with pytest.raises(urllib.error.HTTPError) as unauthorized:
        urllib.request.urlopen(request, timeout=5)
    unauthorized.value.close()
    assert unauthorized.value.code == 401
    assert "text-embedding-3-small" in [m.id for m in _client(openai_url).models.list().data]
    emb = _client(openai_url).embeddings.create(model="text-embedding-3-small", input="hi")
    assert len(emb.data[0].embedding) == 1536


def test_openai_rate_limit_rate_answers_429_with_retry_after(
    python_exe: str, repo_root: Path
) -> None:
    for base, _ in _start(
        python_exe, repo_root, "openai", "--zero-latency", "--rate-limit-rate", "1"
    ):
        with pytest.raises(openai.RateLimitError) as limited:
            _client(base).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert limited.value.code == "rate_limit_exceeded"
        assert limited.value.response.headers["retry-after"] == "1"


def test_anthropic_sse_events_come_in_anthropic_order(anthropic_url: str) -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 3, "stream": True, "messages": MESSAGES}
    raw = asyncio.run(
        _raw(
            anthropic_url,
            "/v1/messages",
            body,
            **{"x-api-key": "k", "anthropic-version": "2023-06-01"},
        )
    )
    names = [e.split(b"\n")[0] for e in raw.split(b"\n\n") if e]
    assert names == [
        b"event: " + n
        for n in (
            b"message_start",
            b"content_block_start",
            b"ping",
            b"content_block_delta",
            b"content_block_delta",
            b"content_block_delta",
            b"content_block_stop",
            b"message_delta",
            b"message_stop",
        )
    ]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_litellm_calls_the_anthropic_emulator_with_and_without_stream(
    anthropic_url: str,
) -> None:
    import litellm

    async def calls() -> tuple[object, list[object]]:
        kwargs = {
            "model": "anthropic/claude-haiku-4-5",
            "api_base": anthropic_url,
            "api_key": "sk-ant-test",
            "messages": MESSAGES,
            "max_tokens": 5,
        }
        reply = await litellm.acompletion(**kwargs)
        stream = await litellm.acompletion(
            **kwargs, stream=True, stream_options={"include_usage": True}
        )
        return reply, [chunk async for chunk in stream]

    reply, chunks = asyncio.run(calls())
    text = reply.choices[0].message.content  # type: ignore[attr-defined]
    assert len(text.split()) == 5
    assert reply.usage.prompt_tokens == 8  # type: ignore[attr-defined]
    assert reply.usage.completion_tokens == 5  # type: ignore[attr-defined]
    assert reply.choices[0].finish_reason == "length"  # type: ignore[attr-defined]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)  # type: ignore[attr-defined]
    assert streamed == text
    usages = [c.usage for c in chunks if getattr(c, "usage", None)]  # type: ignore[attr-defined]
    assert usages and usages[-1].completion_tokens == 5
    assert usages[-1].prompt_tokens == 8
