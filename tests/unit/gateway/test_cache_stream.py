"""assemble folds the SSE a client was sent into the non-stream body the cache stores; replay
streams a stored body back; the two round-trip, and the openai SDK reads what replay sends."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from gateway.cache.stream import DONE, PIECE_CHARS, assemble, replay
from loadtests.emulators import vllm_wire

CHAT, TEXT = "chat/completions", "completions"
HEAD = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "m"}
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}


def sse(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def chunk(*choices: dict[str, Any], **extra: Any) -> bytes:
    return sse({**HEAD, "choices": list(choices), **extra})


def delta(index: int = 0, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": fields, "logprobs": None, "finish_reason": finish}


def assembled(endpoint: str, relayed: list[bytes]) -> dict[str, Any]:
    body = assemble(endpoint, relayed)
    assert body is not None
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def data_of(events: list[bytes]) -> list[dict[str, Any]]:
    """The JSON of each replayed event, after checking every event is one whole SSE event."""
    assert events[-1] == DONE
    for event in events:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        assert event.count(b"\n") == 2
    return [json.loads(e[len(b"data: ") :]) for e in events[:-1]]


def chat_body(*choices: dict[str, Any], usage: bool = True, **extra: Any) -> dict[str, Any]:
    body = {**HEAD, "object": "chat.completion", "choices": list(choices), **extra}
    return {**body, "usage": USAGE} if usage else body


def message_choice(index: int = 0, finish: str = "stop", **message: Any) -> dict[str, Any]:
    message = {"role": "assistant", **message}
    return {"index": index, "message": message, "logprobs": None, "finish_reason": finish}


# --- assemble -------------------------------------------------------------------------------


def vllm_chat_stream(words: list[str], *, chat: bool = True, running: bool = False) -> list[bytes]:
    """Byte for byte what the vLLM emulator streams (include_usage on)."""
    writer = vllm_wire.ChunkWriter("chatcmpl-v", 1700000001, "qwen", chat)

    def usage(done: int) -> dict[str, object] | None:
        return vllm_wire.usage(12, done, details=False) if running else None

    events = [writer.role(usage(0))] if chat else []
    for i, word in enumerate(words):
        events.append(writer.token(word, "stop" if i == len(words) - 1 else None, usage(i + 1)))
    if not running:
        events.append(writer.final_usage(12, len(words)))
    return [*events, vllm_wire.DONE]


def test_assemble_folds_a_vllm_chat_stream_into_the_body_vllm_would_have_returned() -> None:
    words = ["Héllo", ",", " wörld", " ✓"]
    relayed = vllm_chat_stream(words)
    # The gateway may relay several complete events in one write.
    relayed = [relayed[0], b"".join(relayed[1:3]), *relayed[3:]]

    body = assemble(CHAT, relayed)

    expected = {
        "id": "chatcmpl-v",
        "object": "chat.completion",
        "created": 1700000001,
        "model": "qwen",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Héllo, wörld ✓"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "total_tokens": 16, "completion_tokens": 4},
    }
    assert body == json.dumps(expected, separators=(",", ":"), ensure_ascii=False).encode()
    ChatCompletion.model_validate_json(body)


def test_assemble_takes_usage_riding_on_the_last_content_chunk() -> None:
    body = assembled(CHAT, vllm_chat_stream(["a", "b", "c"], running=True))
    assert body["usage"] == {"prompt_tokens": 12, "total_tokens": 15, "completion_tokens": 3}
    assert body["choices"][0]["message"]["content"] == "abc"


def test_assemble_folds_a_vllm_completions_stream() -> None:
    body = assembled(TEXT, vllm_chat_stream(["Once", " upon", " a time"], chat=False))
    assert body == {
        "id": "chatcmpl-v",
        "object": "text_completion",
        "created": 1700000001,
        "model": "qwen",
        "choices": [
            {"index": 0, "text": "Once upon a time", "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 12, "total_tokens": 15, "completion_tokens": 3},
    }


def test_assemble_sorts_interleaved_choices_of_an_n2_stream_by_index() -> None:
    relayed = [
        chunk(delta(1, role="assistant", content=""), delta(0, role="assistant", content="")),
        chunk(delta(1, content="B1 ")),
        chunk(delta(0, content="A1 ")),
        chunk(delta(0, content="A2")),
        chunk(delta(1, "length", content="B2")),
        chunk(delta(0, "stop")),
        chunk(usage=USAGE),
        DONE,
    ]
    body = assembled(CHAT, relayed)
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in body["choices"]] == [
        (0, "A1 A2", "stop"),
        (1, "B1 B2", "length"),
    ]
    assert body["usage"] == USAGE


def test_assemble_joins_tool_call_arguments_sent_in_pieces() -> None:
    def call(k: int, **fields: Any) -> dict[str, Any]:
        return {"index": k, **fields}

    relayed = [
        chunk(delta(role="assistant", content=None, refusal=None)),
        chunk(delta(tool_calls=[call(0, id="call_a", type="function", function={"name": "f"})])),
        chunk(delta(tool_calls=[call(0, function={"arguments": '{"city": '})])),
        chunk(delta(tool_calls=[call(0, function={"arguments": '"Oslo"}'})])),
        chunk(
            delta(
                tool_calls=[
                    call(1, id="call_b", type="function", function={"name": "g", "arguments": ""})
                ]
            )
        ),
        chunk(delta(tool_calls=[call(1, function={"arguments": "{}"})])),
        chunk(delta(finish="tool_calls")),
        DONE,
    ]
    body = assembled(CHAT, relayed)
    assert body["choices"][0] == {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"city": "Oslo"}'},
                },
                {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ],
        },
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    assert "usage" not in body


def test_assemble_keeps_reasoning_refusal_fingerprint_and_concatenated_logprobs() -> None:
    def lp(token: str) -> dict[str, Any]:
        return {"content": [{"token": token, "logprob": -0.5, "bytes": None, "top_logprobs": []}]}

    relayed = [
        chunk(delta(role="assistant", content=""), system_fingerprint="fp_1"),
        chunk(delta(reasoning_content="think "), system_fingerprint="fp_1"),
        chunk(delta(reasoning_content="hard"), system_fingerprint="fp_1"),
        chunk({**delta(content="no"), "logprobs": lp("no")}, system_fingerprint="fp_1"),
        chunk({**delta(content="pe"), "logprobs": lp("pe")}, system_fingerprint="fp_1"),
        chunk(delta(refusal="I can't"), system_fingerprint="fp_1"),
        chunk(delta(finish="stop"), system_fingerprint="fp_1"),
        DONE,
    ]
    body = assembled(CHAT, relayed)
    choice = body["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "nope",
        "reasoning_content": "think hard",
        "refusal": "I can't",
    }
    assert [t["token"] for t in choice["logprobs"]["content"]] == ["no", "pe"]
    assert body["system_fingerprint"] == "fp_1"


def test_assemble_reads_crlf_comments_and_other_sse_fields() -> None:
    relayed = [
        b": keep-alive\r\n\r\n",
        b"event: message\r\nid: 1\r\n"
        + chunk(delta(role="assistant", content="")).replace(b"\n", b"\r\n"),
        # One event may spread its data over several lines.
        b'data:{"id":"x",\r\ndata: "choices":[{"index":0,"delta":{"content":"hi"}}]}\r\n\r\n',
        b": ping\n\n" + chunk(delta(finish="stop")),
        b"data: [DONE]\r\n\r\n",
    ]
    body = assembled(CHAT, relayed)
    assert body["id"] == "chatcmpl-1"
    assert body["choices"][0]["message"]["content"] == "hi"


GOOD = [chunk(delta(role="assistant", content="")), chunk(delta(content="hi"))]
STOP = chunk(delta(finish="stop"))


@pytest.mark.parametrize(
    "relayed",
    [
        pytest.param([*GOOD, STOP], id="no-done"),
        pytest.param([*GOOD, STOP, sse({"error": {"message": "boom"}}), DONE], id="error-event"),
        pytest.param(
            [
                *GOOD,
                STOP,
                b"data: " + vllm_wire.error_body("boom", "BadRequestError", 400) + b"\n\n",
                DONE,
            ],
            id="vllm-error",
        ),
        pytest.param([*GOOD, b'data: {"id": "x", "choi\n\n', STOP, DONE], id="truncated-json"),
        pytest.param([*GOOD, DONE], id="no-finish-reason"),
        pytest.param(
            [*GOOD, chunk(delta(1, content="b")), STOP, DONE], id="second-choice-unfinished"
        ),
        pytest.param([chunk(usage=USAGE), DONE], id="no-choices"),
        pytest.param([DONE], id="empty"),
        pytest.param([*GOOD, b"data: \xff\xfe\n\n", STOP, DONE], id="not-utf8"),
    ],
)
def test_assemble_returns_none_unless_the_stream_is_a_complete_success(
    relayed: list[bytes],
) -> None:
    assert assemble(CHAT, relayed) is None


def test_assemble_accepts_the_same_stream_once_it_is_complete() -> None:
    assert assemble(CHAT, [*GOOD, STOP, DONE]) is not None


# --- replay ---------------------------------------------------------------------------------

LONG = " ".join(f"word{i}" for i in range(600)) + "\n\nThe end."
TOOL_CALLS = [
    {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
    {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
]
LOGPROBS = {"content": [{"token": "hi", "logprob": -0.1, "bytes": [104, 105], "top_logprobs": []}]}

BODIES = {
    "short": chat_body(message_choice(content="Hello!")),
    "long": chat_body(message_choice(content=LONG, finish="length")),
    "unicode": chat_body(message_choice(content="日本語のテキスト" * 30 + " 🙂👍🏽 é\u0301")),
    "empty": chat_body(message_choice(content="")),
    "tools": chat_body(message_choice(content=None, tool_calls=TOOL_CALLS, finish="tool_calls")),
    "text-and-tools": chat_body(message_choice(content="Let me check.", tool_calls=TOOL_CALLS)),
    "n2": chat_body(message_choice(0, content="first one"), message_choice(1, content="second")),
    "reasoning": chat_body(message_choice(content="42", reasoning_content="Think. " * 20)),
    "refusal": chat_body(message_choice(content="", refusal="I can't help with that.")),
    "logprobs": chat_body({**message_choice(content="hi"), "logprobs": LOGPROBS}),
    "fingerprint": chat_body(message_choice(content="x"), system_fingerprint="fp_9"),
    "no-usage": chat_body(message_choice(content="x"), usage=False),
}


@pytest.mark.parametrize("include_usage", [True, False])
@pytest.mark.parametrize("name", BODIES)
def test_replay_then_assemble_gives_back_the_stored_body(name: str, include_usage: bool) -> None:
    stored = BODIES[name]

    again = assembled(CHAT, replay(CHAT, json.dumps(stored).encode(), include_usage=include_usage))

    expected = dict(stored)
    if not include_usage:
        expected.pop("usage", None)
    assert again == expected


def sdk_client(events: list[bytes]) -> openai.OpenAI:
    """An OpenAI client whose server answers every request with ``events`` as SSE."""

    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, content=b"".join(events))

    http = httpx.Client(transport=httpx.MockTransport(answer))
    return openai.OpenAI(base_url="http://cache/v1", api_key="k", http_client=http, max_retries=0)


@pytest.mark.parametrize("name", BODIES)
def test_the_openai_sdk_reads_replayed_chunks_back_into_the_stored_answer(name: str) -> None:
    stored = BODIES[name]
    events = replay(CHAT, json.dumps(stored).encode(), include_usage=True)
    for data in data_of(events):
        ChatCompletionChunk.model_validate(data)

    with sdk_client(events) as client:
        chunks = list(client.chat.completions.create(model="m", messages=[], stream=True))
        with client.chat.completions.stream(model="m", messages=[]) as stream:
            for _ in stream:  # the SDK's own accumulator (get_final_completion rejects "length")
                pass
            final = stream.current_completion_snapshot

    texts = ["" for _ in stored["choices"]]
    for c in chunks:
        for choice in c.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == [c["message"]["content"] or "" for c in stored["choices"]]
    with_usage = [c for c in chunks if c.usage is not None]
    if "usage" in stored:
        assert with_usage == [chunks[-1]] and chunks[-1].choices == []
        assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 17
    else:
        assert with_usage == []
    for got, want in zip(final.choices, stored["choices"], strict=True):
        assert (got.message.content or "") == (want["message"]["content"] or "")
        assert got.finish_reason == want["finish_reason"]
        calls = [
            (c.id, c.function.name, c.function.arguments) for c in got.message.tool_calls or []
        ]
        wanted = want["message"].get("tool_calls", [])
        assert calls == [
            (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in wanted
        ]


def test_replay_is_the_wire_format_openai_sends() -> None:
    stored = chat_body(message_choice(content="Hi there"), system_fingerprint="fp_1")
    events = replay(CHAT, json.dumps(stored).encode(), include_usage=True)
    head = (
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,'
        b'"model":"m","system_fingerprint":"fp_1","choices":'
    )

    def event(delta: bytes, finish: bytes = b"null") -> bytes:
        choice = b'[{"index":0,"delta":' + delta + b',"logprobs":null,"finish_reason":' + finish
        return head + choice + b'}],"usage":null}\n\n'

    assert events == [
        event(b'{"role":"assistant","content":""}'),
        event(b'{"content":"Hi there"}'),
        event(b"{}", b'"stop"'),
        head + b'[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}\n\n',
        b"data: [DONE]\n\n",
    ]


def test_replay_without_include_usage_sends_no_usage_at_all() -> None:
    events = replay(CHAT, json.dumps(BODIES["n2"]).encode(), include_usage=False)
    assert all("usage" not in data and data["choices"] for data in data_of(events))


def test_replay_cuts_long_content_into_few_pieces_at_whitespace() -> None:
    events = replay(CHAT, json.dumps(BODIES["long"]).encode(), include_usage=False)
    pieces = [d["choices"][0]["delta"].get("content") for d in data_of(events)][1:-1]
    assert "".join(pieces) == LONG
    assert all(0 < len(p) <= PIECE_CHARS for p in pieces)
    assert all(p[-1].isspace() for p in pieces[:-1])
    assert len(pieces) <= len(LONG) // (PIECE_CHARS - 10) + 1


def test_replay_cuts_text_without_whitespace_at_the_piece_size() -> None:
    text = "日本語" * 50
    events = replay(
        CHAT, json.dumps(chat_body(message_choice(content=text))).encode(), include_usage=False
    )
    pieces = [d["choices"][0]["delta"].get("content") for d in data_of(events)][1:-1]
    assert [len(p) for p in pieces] == [PIECE_CHARS, PIECE_CHARS, 150 - 2 * PIECE_CHARS]


def test_replay_streams_a_vllm_non_stream_body_with_its_extra_fields() -> None:
    stored = vllm_wire.chat_response("chatcmpl-v", 1700000001, "qwen", "Hello world", "stop", 9, 2)

    again = assembled(CHAT, replay(CHAT, stored, include_usage=True))

    assert again["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello world"},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert again["usage"] == json.loads(stored)["usage"]


# --- legacy completions ---------------------------------------------------------------------


def text_body(*texts: str) -> dict[str, Any]:
    choices = [
        {"index": i, "text": t, "logprobs": None, "finish_reason": "length"}
        for i, t in enumerate(texts)
    ]
    return {**HEAD, "object": "text_completion", "choices": choices, "usage": USAGE}


@pytest.mark.parametrize("texts", [("Once upon a time",), (LONG, ""), ("",)])
def test_completions_replay_round_trips_and_the_sdk_reads_it(texts: tuple[str, ...]) -> None:
    stored = text_body(*texts)
    events = replay(TEXT, json.dumps(stored).encode(), include_usage=True)

    assert assembled(TEXT, events) == stored
    datas = data_of(events)
    assert all(d["object"] == "text_completion" for d in datas)
    assert datas[-1]["choices"] == [] and datas[-1]["usage"] == USAGE
    with sdk_client(events) as client:
        chunks: list[Completion] = list(
            client.completions.create(model="m", prompt="p", stream=True)
        )
    got = ["" for _ in texts]
    for c in chunks:
        for choice in c.choices:
            got[choice.index] += choice.text
    assert tuple(got) == texts
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 17


def test_completions_replay_carries_logprobs_on_the_first_piece() -> None:
    logprobs = {
        "tokens": ["a", "b"],
        "token_logprobs": [-1.0, -2.0],
        "top_logprobs": None,
        "text_offset": [0, 1],
    }
    stored = {
        **text_body("ab"),
        "choices": [{"index": 0, "text": "ab", "logprobs": logprobs, "finish_reason": "stop"}],
    }
    assert assembled(TEXT, replay(TEXT, json.dumps(stored).encode(), include_usage=True)) == stored


# --- corrupt entries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"id": "x"}',
        b'{"choices": []}',
        b'{"choices": "abc"}',
        b'{"choices": [1]}',
        b'{"choices": [{"index": 0, "message": "hi"}]}',
    ],
)
def test_replay_raises_value_error_for_a_body_that_is_not_an_answer(body: bytes) -> None:
    with pytest.raises(ValueError, match="cached"):
        replay(CHAT, body, include_usage=False)


def test_an_unknown_endpoint_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="embeddings"):
        replay("embeddings", json.dumps(BODIES["short"]).encode(), include_usage=False)
    with pytest.raises(ValueError, match="embeddings"):
        assemble("embeddings", [DONE])
