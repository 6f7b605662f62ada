"""GET /v1/models: the aliases of the config, in the OpenAI list shape."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import openai
import pytest

from tests.support.clients import async_client

pytestmark = pytest.mark.e2e

DEMO_ALIASES = {
    "qwen2.5-7b-instruct",
    "gpt-4o-mini",
    "claude-haiku-4-5",
    "text-embedding-3-small",
    "auto",
}


def test_models_list_names_every_alias_of_the_config(client: openai.OpenAI) -> None:
    models = list(client.models.list())

    assert {model.id for model in models} == DEMO_ALIASES
    assert all(model.object == "model" for model in models)


def test_models_endpoint_answers_in_the_openai_list_shape(gateway_url: str) -> None:
    with urllib.request.urlopen(f"{gateway_url}/v1/models", timeout=10) as response:
        body = json.loads(response.read())

    assert body["object"] == "list"
    assert {item["id"] for item in body["data"]} == DEMO_ALIASES
    assert all({"id", "object", "created", "owned_by"} <= set(item) for item in body["data"])


def test_async_client_lists_models(gateway_url: str) -> None:
    async def run() -> set[str]:
        async with async_client(gateway_url) as client:
            return {model.id async for model in client.models.list()}

    assert asyncio.run(run()) == DEMO_ALIASES


def test_retrieve_returns_one_alias_and_404_names_the_known_ones(client: openai.OpenAI) -> None:
    model = client.models.retrieve("qwen2.5-7b-instruct")
    assert (model.id, model.object) == ("qwen2.5-7b-instruct", "model")

    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    assert "no-such-model" in caught.value.message
    assert all(alias in caught.value.message for alias in DEMO_ALIASES)
