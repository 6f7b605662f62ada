"""Errors in the OpenAI envelope with the status the openai SDK maps to the right exception."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.support.fleets import FaultGateway

pytestmark = pytest.mark.e2e

QWEN = "qwen2.5-7b-instruct"
DEMO_ALIASES = ["qwen2.5-7b-instruct", "gpt-4o-mini", "claude-haiku-4-5", "text-embedding-3-small"]
ENVELOPE_KEYS = {"message", "type", "param", "code"}


def _post_raw(gateway_url: str, content: bytes) -> httpx.Response:
    return httpx.post(
        f"{gateway_url}/v1/chat/completions",
        content=content,
        headers={"content-type": "application/json"},
        timeout=10,
    )


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == ENVELOPE_KEYS
    assert error["message"]
    return error


def test_invalid_json_is_a_400_invalid_request_error(gateway_url: str) -> None:
    response = _post_raw(gateway_url, b'{"model": "qwen2.5-7b-instruct", "messages": [')

    assert response.status_code == 400
    assert _error(response)["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "qwen2.5-7b-instruct"}', "messages"),
        (b'{"model": 7, "messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "qwen2.5-7b-instruct", "messages": "hi"}', "messages"),
        (
            b'{"model": "qwen2.5-7b-instruct", "max_tokens": "ten",'
            b' "messages": [{"role": "user", "content": "hi"}]}',
            "max_tokens",
        ),
        (b'["not", "an", "object"]', ""),
    ],
    ids=[
        "missing-model",
        "missing-messages",
        "model-not-string",
        "messages-not-list",
        "max-tokens-not-int",
        "body-not-object",
    ],
)
def test_missing_or_mistyped_fields_are_400_naming_the_field(
    gateway_url: str, body: bytes, field: str
) -> None:
    response = _post_raw(gateway_url, body)

    assert response.status_code == 400
    error = _error(response)
    assert error["type"] == "invalid_request_error"
    assert field in f"{error['message']} {error['param']}"


def test_sdk_raises_bad_request_for_a_mistyped_field(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=QWEN, messages="hello")  # type: ignore[arg-type]

    assert caught.value.status_code == 400


def test_unknown_model_is_404_listing_the_known_aliases(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )

    message = str(caught.value)
    assert "no-such-model" in message
    assert all(alias in message for alias in DEMO_ALIASES)


def test_unknown_embedding_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-embedding", input="hi")


def test_body_over_max_body_bytes_is_413(
    fault_client: openai.OpenAI, fault_gateway: FaultGateway
) -> None:
    big = "a " * fault_gateway.max_body_bytes
    with pytest.raises(openai.APIStatusError) as caught:
        fault_client.chat.completions.create(
            model="dead-first", messages=[{"role": "user", "content": big}]
        )

    assert caught.value.status_code == 413


def test_body_just_under_max_body_bytes_is_accepted(
    fault_client: openai.OpenAI, fault_gateway: FaultGateway
) -> None:
    text = "a " * (fault_gateway.max_body_bytes // 2 - 200)
    completion = fault_client.chat.completions.create(
        model="dead-first", messages=[{"role": "user", "content": text}], max_tokens=2
    )

    assert completion.choices


def test_all_deployments_down_is_a_5xx_naming_what_failed(fault_client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        fault_client.chat.completions.create(
            model="all-down", messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.status_code in {502, 503, 504}
    message = str(caught.value)
    assert "all-down" in message or ("dead-a" in message and "dead-b" in message)
    body = caught.value.response.json()
    assert set(body["error"]) == ENVELOPE_KEYS
