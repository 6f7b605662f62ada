"""POST /v1/embeddings through the openai SDK, which asks for base64 unless told otherwise."""

from __future__ import annotations

import asyncio

import openai
import pytest
from openai.types import CreateEmbeddingResponse

from tests.support.clients import async_client

pytestmark = pytest.mark.e2e

EMBEDDING = "text-embedding-3-small"
INPUTS = ["the quick brown fox", "jumps over the lazy dog"]


def test_embeddings_return_one_vector_per_input_in_order(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(model=EMBEDDING, input=INPUTS)
    response = raw.parse()

    assert response.object == "list"
    assert [item.index for item in response.data] == [0, 1]
    dimensions = {len(item.embedding) for item in response.data}
    assert len(dimensions) == 1
    assert dimensions.pop() > 0
    assert all(isinstance(x, float) for x in response.data[0].embedding)
    assert response.usage.prompt_tokens > 0
    assert raw.headers["x-gateway-deployment"] == "openai-embedding-3-small"


def test_float_and_base64_encodings_give_the_same_vectors(client: openai.OpenAI) -> None:
    as_float = client.embeddings.create(model=EMBEDDING, input=INPUTS, encoding_format="float")
    as_base64 = client.embeddings.create(model=EMBEDDING, input=INPUTS)  # SDK default

    assert [len(item.embedding) for item in as_float.data] == [
        len(item.embedding) for item in as_base64.data
    ]
    for floats, decoded in zip(as_float.data, as_base64.data, strict=True):
        assert floats.embedding == pytest.approx(decoded.embedding, rel=1e-6, abs=1e-6)


def test_async_client_gets_embeddings(gateway_url: str) -> None:
    async def run() -> CreateEmbeddingResponse:
        async with async_client(gateway_url) as client:
            return await client.embeddings.create(model=EMBEDDING, input="hello")

    response = asyncio.run(run())

    assert len(response.data) == 1
    assert response.data[0].embedding
