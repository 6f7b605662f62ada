"""UsageTap relays SSE events unchanged (however the bytes are split), reads the usage
chunk, and removes it again when the client did not ask for usage."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest

from gateway.upstreams.base import Usage
from gateway.upstreams.sse import DONE, UsageTap, error_event

Splitter = Callable[[bytes], list[bytes]]

ROLE = b'data: {"id":"c1","choices":[{"index":0,"delta":{"role":"assistant"}}],"usage":null}'
TEXT = (
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":'
    b'"h\\u00e9 \\"usage\\": {\\"prompt_tokens\\": 99} \xe2\x9c\x93"}}]}'
)
PING = b": keep-alive"
STOP = b'data:{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
USAGE = (
    b'data: {"id":"c1","choices":[],'
    b'"usage": {"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}'
)
DONE_LINE = b"data: [DONE]"


def stream(*events: bytes, sep: bytes = b"\n\n") -> bytes:
    return b"".join(e + sep for e in events)


def _whole(data: bytes) -> list[bytes]:
    return [data]


def _bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def _random(seed: int) -> Splitter:
    def split(data: bytes) -> list[bytes]:
        rng, parts, at = random.Random(seed), [], 0
        while at < len(data):
            size = rng.randint(1, 40)
            parts.append(data[at : at + size])
            at += size
        return parts

    return split


SPLITTERS = [
    pytest.param(_whole, id="whole"),
    pytest.param(_bytewise, id="byte-by-byte"),
    *(pytest.param(_random(seed), id=f"random-seed-{seed}") for seed in (1, 2, 3, 4)),
]
SEPARATORS = [pytest.param(b"\n\n", id="lf"), pytest.param(b"\r\n\r\n", id="crlf")]


def relay(tap: UsageTap, data: bytes, split: Splitter = _whole) -> bytes:
    out = b"".join(tap.feed(part) for part in split(data))
    return out + tap.flush()


@pytest.mark.parametrize("sep", SEPARATORS)
@pytest.mark.parametrize("split", SPLITTERS)
def test_stream_is_relayed_byte_for_byte_when_the_client_wants_usage(
    split: Splitter, sep: bytes
) -> None:
    data = stream(ROLE, TEXT, PING, STOP, USAGE, DONE_LINE, sep=sep)
    tap = UsageTap(client_wants_usage=True)
    assert relay(tap, data, split) == data
    assert tap.usage == Usage(prompt_tokens=12, completion_tokens=3)


@pytest.mark.parametrize("sep", SEPARATORS)
@pytest.mark.parametrize("split", SPLITTERS)
def test_usage_only_chunk_is_removed_when_the_client_did_not_ask(
    split: Splitter, sep: bytes
) -> None:
    tap = UsageTap(client_wants_usage=False)
    out = relay(tap, stream(ROLE, TEXT, PING, STOP, USAGE, DONE_LINE, sep=sep), split)
    assert out == stream(ROLE, TEXT, PING, STOP, DONE_LINE, sep=sep)
    assert tap.usage == Usage(prompt_tokens=12, completion_tokens=3)


def test_complete_events_are_released_before_the_next_one_finishes() -> None:
    tap = UsageTap(client_wants_usage=False)
    assert tap.feed(ROLE + b"\n\n" + TEXT[:20]) == ROLE + b"\n\n"
    assert tap.feed(TEXT[20:]) == b""
    assert tap.feed(b"\n\n") == TEXT + b"\n\n"


def test_usage_in_a_chunk_with_choices_is_nulled_not_dropped() -> None:
    chunk = {
        "id": "c1",
        "choices": [{"index": 0, "delta": {"content": "ü"}}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
    }
    event = b"data: " + json.dumps(chunk).encode() + b"\n\n"
    tap = UsageTap(client_wants_usage=False)
    out = relay(tap, event)
    assert out.startswith(b"data: ")
    assert out.endswith(b"\n\n")
    assert json.loads(out[6:]) == {**chunk, "usage": None}
    assert tap.usage == Usage(prompt_tokens=7, completion_tokens=1)


def test_usage_in_a_chunk_with_choices_is_kept_when_the_client_wants_it() -> None:
    event = b'data: {"choices":[{"index":0}],"usage":{"prompt_tokens":7,"completion_tokens":1}}'
    tap = UsageTap(client_wants_usage=True)
    assert relay(tap, event + b"\n\n") == event + b"\n\n"
    assert tap.usage == Usage(7, 1)


def test_later_usage_replaces_earlier_usage() -> None:
    first = b'data: {"choices":[{"index":0}],"usage":{"prompt_tokens":5,"completion_tokens":1}}'
    tap = UsageTap(client_wants_usage=True)
    relay(tap, stream(first, USAGE))
    assert tap.usage == Usage(12, 3)


@pytest.mark.parametrize("wants", [True, False], ids=["wants-usage", "no-usage"])
def test_stream_without_usage_leaves_usage_unknown(wants: bool) -> None:
    tap = UsageTap(client_wants_usage=wants)
    data = stream(ROLE, TEXT, DONE_LINE)
    assert relay(tap, data, _bytewise) == data
    assert tap.usage is None


@pytest.mark.parametrize(
    ("wants", "expected"),
    [
        pytest.param(True, USAGE + b"\n\n", id="wants-usage-gets-it-terminated"),
        pytest.param(False, b"", id="no-usage-dropped"),
    ],
)
def test_flush_handles_an_unterminated_last_usage_event(wants: bool, expected: bytes) -> None:
    tap = UsageTap(client_wants_usage=wants)
    assert tap.feed(USAGE + b"\n") == b""
    assert tap.flush() == expected
    assert tap.usage == Usage(12, 3)


def test_flush_terminates_an_unterminated_ordinary_event() -> None:
    tap = UsageTap(client_wants_usage=False)
    assert tap.feed(STOP) == b""
    assert tap.flush() == STOP + b"\n\n"
    assert tap.flush() == b""


@pytest.mark.parametrize("pending", [b"", b"\n", b"\r\n", b"  "], ids=repr)
def test_flush_of_nothing_or_blank_is_empty(pending: bytes) -> None:
    tap = UsageTap(client_wants_usage=False)
    tap.feed(pending)
    assert tap.flush() == b""


@pytest.mark.parametrize("wants", [True, False], ids=["wants-usage", "no-usage"])
def test_done_passes_through(wants: bool) -> None:
    assert DONE == b"data: [DONE]\n\n"
    tap = UsageTap(client_wants_usage=wants)
    assert tap.feed(DONE) == DONE
    assert tap.flush() == b""


def test_error_event_is_one_data_event() -> None:
    body = b'{"error":{"message":"boom"}}'
    assert error_event(body) == b"data: " + body + b"\n\n"
