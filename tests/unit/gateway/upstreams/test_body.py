"""rewrite_body: the alias becomes the deployment's model by a byte splice when that is
provably safe, by re-encoding otherwise, and streams ask for usage; in every case the JSON
the upstream parses is the client's body with only those fields changed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors import InvalidRequest
from gateway.features import parse_request
from gateway.upstreams.body import rewrite_body

NEW = "Qwen/Qwen2.5-7B-Instruct"


def expected(parsed: dict[str, Any], model: str, want_usage: bool) -> dict[str, Any]:
    """What json.loads of the rewritten body must equal."""
    result = {**parsed, "model": model}
    options = parsed.get("stream_options")
    if want_usage and not (isinstance(options, dict) and options.get("include_usage") is True):
        result["stream_options"] = {**(options or {}), "include_usage": True}
    return result


def rewrite(raw: bytes, model: str = NEW, want_usage: bool = False) -> bytes:
    return rewrite_body(raw, json.loads(raw), model, want_usage)


def test_model_is_spliced_and_every_other_byte_is_kept() -> None:
    raw = (
        b'{\n  "messages": [{"role": "user", "content": "hi"}],\n'
        b'  "model" :\t"chat",\n  "temperature":0.50\n}'
    )
    assert rewrite(raw) == raw.replace(b'"chat"', json.dumps(NEW).encode())


def test_body_is_returned_unchanged_when_the_model_name_is_the_same() -> None:
    raw = b'{ "model": "gpt-4o-mini",  "messages": [{"role": "user", "content": "x"}] }'
    assert rewrite(raw, model="gpt-4o-mini") == raw


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b'{"model": "chat", "metadata": {"model": "chat"}}', id="pair-twice-nested-object"
        ),
        pytest.param(
            b'{"tools": [{"model": "chat"}], "model":"chat"}', id="pair-twice-nested-first"
        ),
        pytest.param(b'{"model": "ch\\u0061t", "n": 1}', id="alias-with-unicode-escape"),
        pytest.param(b'{"mod\\u0065l": "chat", "n": 1}', id="key-with-unicode-escape"),
    ],
)
def test_unsafe_splices_fall_back_to_re_encoding(raw: bytes) -> None:
    assert json.loads(rewrite(raw)) == expected(json.loads(raw), NEW, False)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"model": "ch\\u0061t", "metadata": {"model": "chat"}}', id="escaped-value"),
        pytest.param(b'{"mod\\u0065l": "chat", "metadata": {"model": "chat"}}', id="escaped-key"),
    ],
)
def test_nested_pair_is_not_mistaken_for_an_escaped_top_level_model(raw: bytes) -> None:
    # Only one literal "model": "chat" pair exists and it is the nested one; splicing it
    # would send the alias upstream and corrupt the client's metadata.
    result = json.loads(rewrite(raw))
    assert result == {"model": NEW, "metadata": {"model": "chat"}}


@pytest.mark.parametrize(
    ("raw", "spliced"),
    [
        pytest.param(
            b'{"model": "chat", "stream": true}',
            b'{"stream_options":{"include_usage":true},"model": "m", "stream": true}',
            id="absent-inserted-up-front",
        ),
        pytest.param(
            b'{  \n"model":"a"}',
            b'{"stream_options":{"include_usage":true},"model":"m"}',
            id="one-field-body",
        ),
    ],
)
def test_stream_without_stream_options_gets_include_usage_spliced_in(
    raw: bytes, spliced: bytes
) -> None:
    result = rewrite(raw, model="m", want_usage=True)
    assert result == spliced
    assert json.loads(result) == expected(json.loads(raw), "m", True)


def test_stream_with_the_model_unchanged_still_asks_for_usage() -> None:
    raw = b'{"model":"a"}'
    result = rewrite(raw, model="a", want_usage=True)
    assert result == b'{"stream_options":{"include_usage":true},"model":"a"}'


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"include_usage": False}, id="include-usage-false"),
        pytest.param({}, id="empty-object"),
        pytest.param(None, id="null"),
        pytest.param({"continuous_usage_stats": True}, id="other-options-kept"),
    ],
)
def test_stream_options_without_include_usage_true_are_set_to_true(
    options: dict[str, bool] | None,
) -> None:
    raw = json.dumps({"model": "chat", "stream": True, "stream_options": options}).encode()
    result = json.loads(rewrite(raw, want_usage=True))
    assert result == expected(json.loads(raw), NEW, True)
    assert result["stream_options"]["include_usage"] is True


def test_stream_options_already_asking_for_usage_are_not_touched() -> None:
    raw = b'{"model": "chat", "stream": true, "stream_options": {"include_usage": true}}'
    assert rewrite(raw, want_usage=True) == raw.replace(b'"chat"', json.dumps(NEW).encode())


def test_usage_is_not_requested_when_not_wanted() -> None:
    raw = b'{"model": "chat", "stream": true}'
    assert b"stream_options" not in rewrite(raw, want_usage=False)


def test_utf16_body_never_reaches_the_byte_splices() -> None:
    # json.loads(bytes) accepts UTF-16, and a UTF-8 splice into such a body produces bytes no
    # upstream can parse; so parse_request, which runs before rewrite_body, refuses them.
    raw = '{"model": "gpt-4o-mini", "stream": true}'.encode("utf-16")
    with pytest.raises(InvalidRequest, match="UTF-8"):
        parse_request("chat/completions", raw)


def _awkward_bodies() -> list[Any]:
    quoted = 'say "model": "chat" and \\"model\\": \\"chat\\" please'
    tools = [
        {
            "type": "function",
            "function": {
                "name": "pick",
                "parameters": {
                    "type": "object",
                    "properties": {"model": {"type": "string", "default": "chat"}},
                },
                "arguments": '{"model": "chat"}',
            },
        }
    ]
    msgs = [{"role": "user", "content": "héllo ✓ 😀 \u2028 \\"}]
    bodies: list[tuple[str, bytes]] = [
        ("quoted-pair-in-content", json.dumps({"model": "chat", "content": quoted}).encode()),
        ("trailing-backslash", json.dumps({"m": [{"content": "x\\"}], "model": "chat"}).encode()),
        (
            "unicode-raw",
            json.dumps({"model": "chat", "messages": msgs}, ensure_ascii=False).encode(),
        ),
        ("unicode-escaped", json.dumps({"model": "chat", "messages": msgs}).encode()),
        ("tools-schema", json.dumps({"tools": tools, "model": "chat", "stream": True}).encode()),
        ("pretty", json.dumps({"model": "chat", "tools": tools}, indent=4).encode()),
        ("compact", json.dumps({"model": "chat", "n": 2}, separators=(",", ":")).encode()),
        ("alias-non-ascii", json.dumps({"model": "modèle", "messages": msgs}).encode()),
        ("alias-non-ascii-raw", '{"model": "modèle", "x": "ü"}'.encode()),
        ("model-string-as-value", b'{"content": "model", "model": "chat", "alias": "chat"}'),
        ("duplicate-key-last-wins", b'{"model": "other", "model": "chat"}'),
    ]
    return [pytest.param(raw, id=name) for name, raw in bodies]


@pytest.mark.parametrize("raw", _awkward_bodies())
@pytest.mark.parametrize("want_usage", [False, True], ids=["no-usage", "usage"])
@pytest.mark.parametrize("model", [NEW, "chat", 'new "quoted" ü'], ids=["new", "same", "odd"])
def test_rewritten_body_parses_to_the_client_body_with_only_model_and_usage_changed(
    raw: bytes, want_usage: bool, model: str
) -> None:
    parsed = json.loads(raw)
    assert json.loads(rewrite_body(raw, parsed, model, want_usage)) == expected(
        parsed, model, want_usage
    )
