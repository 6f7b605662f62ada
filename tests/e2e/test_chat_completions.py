"""POST /v1/chat/completions through the openai SDK: sync and async, streaming and not."""

from __future__ import annotations

import asyncio
from decimal import ROUND_HALF_UP, Decimal

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam

from gateway.config import load_config
from loadtests.fleet import DEMO_CONFIG
from tests.support.clients import async_client

pytestmark = pytest.mark.e2e

QWEN = "qwen2.5-7b-instruct"
QWEN_DEPLOYMENTS = {"qwen-7b-a", "qwen-7b-b"}
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Name three prime numbers."}
]
IGNORE_EOS = {"ignore_eos": True}


def _text(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_chat_completion_returns_an_assistant_message_and_gateway_headers(
    client: openai.OpenAI,
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=QWEN, messages=MESSAGES, max_tokens=16
    )
    completion = raw.parse()

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert raw.headers["x-gateway-deployment"] in QWEN_DEPLOYMENTS
    assert raw.headers["x-request-id"]


def test_each_response_carries_its_own_request_id(client: openai.OpenAI) -> None:
    ids = {
        client.chat.completions.with_raw_response.create(
            model=QWEN, messages=MESSAGES, max_tokens=2
        ).headers["x-request-id"]
        for _ in range(3)
    }
    assert len(ids) == 3


def test_usage_equals_max_tokens_when_ignore_eos_is_set(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=QWEN, messages=MESSAGES, max_tokens=23, extra_body=IGNORE_EOS
    )

    assert completion.usage is not None
    assert completion.usage.completion_tokens == 23
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 23
    assert completion.choices[0].finish_reason == "length"
    assert len((completion.choices[0].message.content or "").split()) == 23


def test_stream_delivers_the_text_and_no_usage_chunk_when_usage_was_not_asked(
    client: openai.OpenAI,
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=QWEN, messages=MESSAGES, max_tokens=12, stream=True, extra_body=IGNORE_EOS
    )
    with raw.parse() as stream:
        chunks = list(stream)

    assert raw.headers["x-gateway-deployment"] in QWEN_DEPLOYMENTS
    assert chunks
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert [chunk for chunk in chunks if chunk.usage is not None] == []
    assert all(chunk.choices for chunk in chunks)
    assert len(_text(chunks).split()) == 12
    assert chunks[-1].choices[0].finish_reason == "length"


def test_stream_with_include_usage_ends_with_exactly_one_usage_chunk(
    client: openai.OpenAI,
) -> None:
    with client.chat.completions.create(
        model=QWEN,
        messages=MESSAGES,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
        extra_body=IGNORE_EOS,
    ) as stream:
        chunks = list(stream)

    usage_chunks = [chunk for chunk in chunks if chunk.usage is not None]
    assert len(usage_chunks) == 1
    assert usage_chunks[0] is chunks[-1]
    assert chunks[-1].choices == []
    assert usage_chunks[0].usage is not None
    assert usage_chunks[0].usage.completion_tokens == 12
    assert len(_text(chunks).split()) == 12


def test_async_client_gets_concurrent_completions(gateway_url: str) -> None:
    async def run() -> list[ChatCompletion]:
        async with async_client(gateway_url) as client:
            calls = [
                client.chat.completions.create(
                    model=QWEN, messages=MESSAGES, max_tokens=5 + i, extra_body=IGNORE_EOS
                )
                for i in range(8)
            ]
            return await asyncio.gather(*calls)

    completions = asyncio.run(run())

    assert [c.usage.completion_tokens if c.usage else None for c in completions] == [
        5 + i for i in range(8)
    ]
    assert len({c.id for c in completions}) == 8


def test_async_client_streams_a_chat_completion(gateway_url: str) -> None:
    async def run() -> list[ChatCompletionChunk]:
        async with async_client(gateway_url) as client:
            stream = await client.chat.completions.create(
                model=QWEN, messages=MESSAGES, max_tokens=9, stream=True, extra_body=IGNORE_EOS
            )
            async with stream:
                return [chunk async for chunk in stream]

    chunks = asyncio.run(run())

    assert len(_text(chunks).split()) == 9
    assert all(chunk.usage is None for chunk in chunks)


@pytest.mark.parametrize(
    ("alias", "deployment"),
    [("gpt-4o-mini", "openai-gpt-4o-mini"), ("claude-haiku-4-5", "anthropic-haiku-4-5")],
)
def test_paid_aliases_are_served_by_their_provider(
    client: openai.OpenAI, alias: str, deployment: str
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=alias, messages=MESSAGES, max_tokens=16
    )
    completion = raw.parse()

    assert raw.headers["x-gateway-deployment"] == deployment
    assert completion.choices[0].message.content
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 16


@pytest.mark.parametrize("alias", ["gpt-4o-mini", "claude-haiku-4-5"])
def test_paid_aliases_stream_with_exactly_one_usage_chunk_when_asked(
    client: openai.OpenAI, alias: str
) -> None:
    with client.chat.completions.create(
        model=alias,
        messages=MESSAGES,
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)

    usage_chunks = [chunk for chunk in chunks if chunk.usage is not None]
    assert len(usage_chunks) == 1
    assert usage_chunks[0] is chunks[-1]
    assert _text(chunks)


def test_a_client_request_id_is_echoed_but_never_reused_as_the_gateways(
    client: openai.OpenAI,
) -> None:
    answers = [
        client.chat.completions.with_raw_response.create(
            model=QWEN, messages=MESSAGES, max_tokens=2, extra_headers={"x-request-id": "mine-1"}
        ).headers
        for _ in range(2)
    ]
    assert [a["x-client-request-id"] for a in answers] == ["mine-1", "mine-1"]
    assert len({a["x-request-id"] for a in answers} | {"mine-1"}) == 3


def test_a_non_streamed_answer_says_what_it_was_billed(client: openai.OpenAI) -> None:
    config = load_config(DEMO_CONFIG, env={})
    for alias in (QWEN, "gpt-4o-mini"):
        raw = client.chat.completions.with_raw_response.create(
            model=alias, messages=MESSAGES, max_tokens=16
        )
        usage = raw.parse().usage
        assert usage is not None
        deployment = config.deployments[raw.headers["x-gateway-deployment"]]
        billed = (
            0
            if deployment.local or deployment.price is None
            else deployment.price.cost(usage.prompt_tokens, usage.completion_tokens)
        )
        expected = Decimal(billed).quantize(Decimal("0.000001"), ROUND_HALF_UP)
        assert Decimal(raw.headers["x-gateway-cost-usd"]) == expected
        assert (Decimal(raw.headers["x-gateway-cost-usd"]) > 0) == (not deployment.local)
