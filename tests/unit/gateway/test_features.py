"""parse_request rejects malformed bodies with a 400 naming the parameter, and reads
stream and client_wants_usage from good ones."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors import InvalidRequest
from gateway.features import parse_request
from gateway.upstreams.base import Endpoint

CHAT: Endpoint = "chat/completions"
COMPLETIONS: Endpoint = "completions"
EMBEDDINGS: Endpoint = "embeddings"
MSGS = [{"role": "user", "content": "hi"}]


def chat(**fields: Any) -> bytes:
    return json.dumps({"model": "m", "messages": MSGS, **fields}).encode()


def case(endpoint: Endpoint, body: bytes | dict[str, Any], param: str | None, name: str) -> Any:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return pytest.param(endpoint, raw, param, id=name)


@pytest.mark.parametrize(
    ("endpoint", "body", "param"),
    [
        case(CHAT, b"", None, "empty-body"),
        case(CHAT, b"{not json", None, "not-json"),
        case(CHAT, b"\xff\xfe\x00garbage", None, "not-text"),
        case(CHAT, b"[1, 2]", None, "json-array"),
        case(CHAT, b'"model"', None, "json-string"),
        case(CHAT, b"[" * 100_000, None, "deeply-nested-json"),
        case(CHAT, {"messages": MSGS}, "model", "model-missing"),
        case(CHAT, {"model": "", "messages": MSGS}, "model", "model-empty"),
        case(CHAT, {"model": 4, "messages": MSGS}, "model", "model-not-string"),
        case(CHAT, {"model": None, "messages": MSGS}, "model", "model-null"),
        case(CHAT, {"model": "m"}, "messages", "messages-missing"),
        case(CHAT, {"model": "m", "messages": []}, "messages", "messages-empty"),
        case(CHAT, {"model": "m", "messages": {"role": "user"}}, "messages", "messages-object"),
        case(CHAT, {"model": "m", "messages": "hi"}, "messages", "messages-string"),
        case(CHAT, {"model": "m", "messages": [{"content": "x"}]}, "messages[0]", "no-role"),
        case(CHAT, {"model": "m", "messages": [*MSGS, {"role": 1}]}, "messages[1]", "role-not-str"),
        case(CHAT, {"model": "m", "messages": [*MSGS, "hi"]}, "messages[1]", "message-string"),
        case(COMPLETIONS, {"model": "m"}, "prompt", "prompt-missing"),
        case(COMPLETIONS, {"model": "m", "prompt": []}, "prompt", "prompt-empty-list"),
        case(COMPLETIONS, {"model": "m", "prompt": 5}, "prompt", "prompt-number"),
        case(EMBEDDINGS, {"model": "m"}, "input", "input-missing"),
        case(EMBEDDINGS, {"model": "m", "input": []}, "input", "input-empty-list"),
        case(EMBEDDINGS, {"model": "m", "input": "x", "stream": True}, "stream", "stream-embed"),
        case(CHAT, chat(stream="true"), "stream", "stream-string"),
        case(CHAT, chat(stream=1), "stream", "stream-number"),
        case(CHAT, chat(max_tokens=0), "max_tokens", "max-tokens-zero"),
        case(CHAT, chat(max_tokens=-3), "max_tokens", "max-tokens-negative"),
        case(CHAT, chat(max_tokens="5"), "max_tokens", "max-tokens-string"),
        case(CHAT, chat(max_tokens=True), "max_tokens", "max-tokens-boolean"),
        case(CHAT, chat(max_tokens=5.0), "max_tokens", "max-tokens-float"),
        case(CHAT, chat(max_completion_tokens=0), "max_completion_tokens", "max-completion-0"),
        case(CHAT, chat(n=0), "n", "n-zero"),
        case(CHAT, chat(stream_options={"include_usage": True}), "stream_options", "no-stream"),
        case(
            CHAT,
            chat(stream=False, stream_options={"include_usage": True}),
            "stream_options",
            "stream-false",
        ),
        case(CHAT, chat(stream=True, stream_options=True), "stream_options", "options-bool"),
        case(CHAT, chat(stream=True, stream_options=[]), "stream_options", "options-list"),
        case(
            CHAT,
            chat(stream=True, stream_options={"include_usage": "yes"}),
            "stream_options",
            "include-usage-string",
        ),
    ],
)
def test_bad_body_is_an_invalid_request_naming_the_param(
    endpoint: Endpoint, body: bytes, param: str | None
) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_request(endpoint, body)
    assert info.value.param == param
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("endpoint", "body", "stream", "wants_usage"),
    [
        pytest.param(CHAT, chat(), False, False, id="plain-chat"),
        pytest.param(CHAT, chat(stream=None), False, False, id="stream-null"),
        pytest.param(CHAT, chat(stream=False), False, False, id="stream-false"),
        pytest.param(CHAT, chat(stream=True), True, False, id="stream-without-options"),
        pytest.param(
            CHAT, chat(stream=True, stream_options={}), True, False, id="stream-options-empty"
        ),
        pytest.param(
            CHAT,
            chat(stream=True, stream_options={"include_usage": False}),
            True,
            False,
            id="include-usage-false",
        ),
        pytest.param(
            CHAT,
            chat(stream=True, stream_options={"include_usage": True}),
            True,
            True,
            id="include-usage-true",
        ),
        pytest.param(CHAT, chat(stream_options=None), False, False, id="stream-options-null"),
        pytest.param(CHAT, chat(max_tokens=1, n=2), False, False, id="max-tokens-one"),
        pytest.param(
            COMPLETIONS, b'{"model": "m", "prompt": "x", "stream": true}', True, False, id="prompt"
        ),
        pytest.param(
            COMPLETIONS, b'{"model": "m", "prompt": [1, 2]}', False, False, id="token-prompt"
        ),
        pytest.param(EMBEDDINGS, b'{"model": "m", "input": ["a"]}', False, False, id="embeddings"),
    ],
)
def test_good_body_gives_its_features(
    endpoint: Endpoint, body: bytes, stream: bool, wants_usage: bool
) -> None:
    features = parse_request(endpoint, body)
    assert (features.stream, features.client_wants_usage) == (stream, wants_usage)
    assert features.endpoint == endpoint
    assert features.model == "m"
    assert features.parsed == json.loads(body)


def test_unknown_fields_are_left_for_the_upstream() -> None:
    features = parse_request(CHAT, chat(temperature=0.2, vendor_extension={"x": [1]}))
    assert features.parsed["vendor_extension"] == {"x": [1]}
