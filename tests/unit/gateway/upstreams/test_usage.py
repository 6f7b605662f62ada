"""usage_from_json reads token counts from a reply's ``usage`` object, and only from it."""

from __future__ import annotations

import json

import pytest

from gateway.upstreams.base import Usage
from gateway.upstreams.usage import usage_from_dict, usage_from_json

VLLM_CHAT = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"Qwen/Qwen2.5-7B",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"Hi","tool_calls":[]},'
    b'"logprobs":null,"finish_reason":"stop","stop_reason":null}],'
    b'"usage":{"prompt_tokens":21,"total_tokens":30,"completion_tokens":9,'
    b'"prompt_tokens_details":null},"prompt_logprobs":null}'
)
OPENAI_CHAT = json.dumps(
    {
        "id": "chatcmpl-2",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        "usage": {
            "prompt_tokens": 13,
            "completion_tokens": 2,
            "total_tokens": 15,
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "system_fingerprint": "fp_1",
    },
    indent=2,
).encode()
EMBEDDINGS = (
    b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-0.2]}],'
    b'"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}'
)
CONTENT_MENTIONS_USAGE = json.dumps(
    {
        "choices": [{"message": {"content": 'the "usage": {"prompt_tokens": 999} field'}}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 6},
    }
).encode()
USAGE_FIRST = json.dumps(
    {
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
        "choices": [{"message": {"content": 'ends with "usage": {"prompt_tokens": 999}'}}],
    }
).encode()
VALUE_NAMED_USAGE = b'{"usage": {"prompt_tokens": 8, "completion_tokens": 2}, "note": "usage"}'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(VLLM_CHAT, Usage(21, 9), id="vllm-chat"),
        pytest.param(OPENAI_CHAT, Usage(13, 2), id="openai-chat-pretty"),
        pytest.param(EMBEDDINGS, Usage(5, 0), id="embeddings-no-completion-tokens"),
        pytest.param(CONTENT_MENTIONS_USAGE, Usage(4, 6), id="content-mentions-usage"),
        pytest.param(USAGE_FIRST, Usage(3, 1), id="usage-before-choices"),
        pytest.param(VALUE_NAMED_USAGE, Usage(8, 2), id="string-value-usage-after"),
    ],
)
def test_usage_is_read_from_the_reply(body: bytes, expected: Usage) -> None:
    assert usage_from_json(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"choices": []}', id="missing-usage"),
        pytest.param(b'{"choices": [], "usage": null}', id="null-usage"),
        pytest.param(b'{"choices": [], "usage": [1, 2]}', id="usage-not-an-object"),
        pytest.param(b'{"choices": [{"text": "usage"}]}', id="only-a-string-usage"),
        pytest.param(b"not json at all", id="invalid-json"),
        pytest.param(b'{"usage": {"prompt_tokens": 1', id="truncated-json"),
        pytest.param(b"[1, 2, 3]", id="json-array"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe\xfa", id="not-utf8"),
    ],
)
def test_no_usable_usage_gives_none(body: bytes) -> None:
    assert usage_from_json(body) is None


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param({"prompt_tokens": 4, "completion_tokens": 5}, Usage(4, 5), id="both"),
        pytest.param({"prompt_tokens": 4}, Usage(4, 0), id="no-completion"),
        pytest.param({"prompt_tokens": None, "completion_tokens": 2}, Usage(0, 2), id="null"),
        pytest.param({"prompt_tokens": "4", "completion_tokens": 2.5}, Usage(0, 0), id="bad-types"),
        pytest.param({}, Usage(0, 0), id="empty"),
    ],
)
def test_usage_from_dict_counts_only_integers(usage: dict[str, object], expected: Usage) -> None:
    assert usage_from_dict(usage) == expected
