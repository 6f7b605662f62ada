"""The litellm SDK as a client: it sees the gateway as any OpenAI-compatible server."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

pytestmark = [
    pytest.mark.e2e,
    # litellm's own streaming types trip a pydantic schema warning in this process (client
    # side, not the gateway); filterwarnings=error would turn it into a failed stream.
    pytest.mark.filterwarnings("ignore:Item.*ReadOnly. qualifier:UserWarning"),
]

MODEL = "openai/qwen2.5-7b-instruct"
MESSAGES = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture(scope="module")
def litellm() -> ModuleType:
    """litellm, imported only by the tests that need it (a 4-second import)."""
    import litellm as module

    return module


def _call(litellm: ModuleType, gateway_url: str, **kwargs: Any) -> Any:
    return litellm.completion(
        model=MODEL,
        api_base=f"{gateway_url}/v1",
        api_key="x",
        messages=MESSAGES,
        num_retries=0,
        timeout=30,
        **kwargs,
    )


def test_litellm_completion_gets_a_reply_with_exact_usage(
    litellm: ModuleType, gateway_url: str
) -> None:
    response = _call(litellm, gateway_url, max_tokens=7, extra_body={"ignore_eos": True})

    assert response.choices[0].message.content
    assert response.usage.completion_tokens == 7


def test_litellm_streaming_completion_yields_the_text(
    litellm: ModuleType, gateway_url: str
) -> None:
    chunks = list(
        _call(litellm, gateway_url, max_tokens=8, stream=True, extra_body={"ignore_eos": True})
    )

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert len(text.split()) == 8


def test_litellm_sees_an_unknown_model_as_not_found(litellm: ModuleType, gateway_url: str) -> None:
    with pytest.raises(litellm.NotFoundError):
        litellm.completion(
            model="openai/no-such-model",
            api_base=f"{gateway_url}/v1",
            api_key="x",
            messages=MESSAGES,
            num_retries=0,
        )
