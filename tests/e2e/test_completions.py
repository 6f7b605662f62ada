"""POST /v1/completions (legacy text completions) through the openai SDK."""

from __future__ import annotations

import asyncio

import openai
import pytest
from openai.types import Completion

from tests.support.clients import async_client

pytestmark = pytest.mark.e2e

QWEN = "qwen2.5-7b-instruct"
QWEN_DEPLOYMENTS = {"qwen-7b-a", "qwen-7b-b"}
PROMPT = "The capital of France is"
IGNORE_EOS = {"ignore_eos": True}


def test_text_completion_returns_text_with_usage_equal_to_max_tokens(
    client: openai.OpenAI,
) -> None:
    raw = client.completions.with_raw_response.create(
        model=QWEN, prompt=PROMPT, max_tokens=14, extra_body=IGNORE_EOS
    )
    completion = raw.parse()

    assert completion.object == "text_completion"
    assert len(completion.choices[0].text.split()) == 14
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 14
    assert completion.usage.prompt_tokens > 0
    assert raw.headers["x-gateway-deployment"] in QWEN_DEPLOYMENTS
    assert raw.headers["x-request-id"]


def test_streamed_text_completion_has_no_usage_chunk_unless_asked(
    client: openai.OpenAI,
) -> None:
    with client.completions.create(
        model=QWEN, prompt=PROMPT, max_tokens=10, stream=True, extra_body=IGNORE_EOS
    ) as stream:
        chunks = list(stream)

    assert all(chunk.usage is None for chunk in chunks)
    assert len("".join(c.choices[0].text for c in chunks if c.choices).split()) == 10


def test_streamed_text_completion_with_include_usage_ends_with_one_usage_chunk(
    client: openai.OpenAI,
) -> None:
    with client.completions.create(
        model=QWEN,
        prompt=PROMPT,
        max_tokens=10,
        stream=True,
        stream_options={"include_usage": True},
        extra_body=IGNORE_EOS,
    ) as stream:
        chunks = list(stream)

    usage_chunks = [chunk for chunk in chunks if chunk.usage is not None]
    assert len(usage_chunks) == 1
    assert usage_chunks[0] is chunks[-1]
    assert usage_chunks[0].usage is not None
    assert usage_chunks[0].usage.completion_tokens == 10


def test_async_client_gets_concurrent_text_completions(gateway_url: str) -> None:
    async def run() -> list[Completion]:
        async with async_client(gateway_url) as client:
            calls = [
                client.completions.create(
                    model=QWEN, prompt=PROMPT, max_tokens=3 + i, extra_body=IGNORE_EOS
                )
                for i in range(6)
            ]
            return await asyncio.gather(*calls)

    completions = asyncio.run(run())

    assert [c.usage.completion_tokens if c.usage else None for c in completions] == [
        3 + i for i in range(6)
    ]
