"""Streams and stored bodies: the two directions between SSE and one cached JSON answer.

The cache keeps every answer as the complete non-streaming OpenAI body. ``assemble`` folds
the SSE events relayed for a streamed answer into that body (``None`` unless the stream was
a complete success); ``replay`` turns a stored body back into the events an OpenAI or vLLM
server would have sent. Pure functions; imports: stdlib only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

DONE = b"data: [DONE]\n\n"
PIECE_CHARS = 64
"""Replayed text is cut into pieces of at most this many characters, at whitespace if any."""
_CHAT_TEXT = ("content", "reasoning_content", "refusal")


class _NotCacheable(ValueError):
    """The stream did not end in a complete, successful answer."""


@dataclass(slots=True)
class _Choice:
    """What the chunks of one choice said: text per field, tool calls by index, logprobs."""

    text: dict[str, list[str]] = field(default_factory=dict)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    logprobs: dict[str, Any] | None = None
    finish: str | None = None


def assemble(
    endpoint: str, relayed: Sequence[bytes], usage: tuple[int, int] | None = None
) -> bytes | None:
    """The non-stream body equivalent to the SSE chunks ``relayed`` for ``endpoint``.

    ``None`` when the stream is not a complete success: no ``[DONE]``, an error event,
    unparsable JSON, no choices, or a choice without a ``finish_reason``. ``usage`` (prompt,
    completion tokens) fills in the body's usage when the client did not ask for the usage
    chunk (the gateway read it, and removed it from what was relayed).
    """
    chat = _is_chat(endpoint)
    try:
        events = _json_events(relayed)
        choices: dict[int, _Choice] = {}
        for event in events:
            for choice in event.get("choices") or []:
                _feed(choices.setdefault(choice["index"], _Choice()), choice, chat)
        if not choices or any(c.finish is None for c in choices.values()):
            raise _NotCacheable("no choices, or a choice without a finish_reason")
        first = events[0]
        body: dict[str, Any] = {
            "id": first.get("id"),
            "object": "chat.completion" if chat else "text_completion",
            "created": first.get("created"),
            "model": first.get("model"),
            "choices": [_choice_body(i, choices[i], chat) for i in sorted(choices)],
        }
        reported = [e["usage"] for e in events if e.get("usage") is not None]
        if reported:
            body["usage"] = reported[-1]
        elif usage is not None:
            body["usage"] = {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": usage[0] + usage[1],
            }
        fingerprint = [e["system_fingerprint"] for e in events if e.get("system_fingerprint")]
        if fingerprint:
            body["system_fingerprint"] = fingerprint[0]
        return _dumps(body)
    except (ValueError, TypeError, KeyError, AttributeError):
        # Not cacheable, or a shape we do not know: either way the answer is not stored.
        return None


def replay(endpoint: str, body: bytes, *, include_usage: bool) -> list[bytes]:
    """The SSE events, ``[DONE]`` last, that stream the stored non-stream ``body``.

    Raises ``ValueError`` when ``body`` is not a JSON object with a list of choices.
    """
    chat = _is_chat(endpoint)
    answer = _load(body)
    head: dict[str, Any] = {
        "id": answer.get("id"),
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": answer.get("created"),
        "model": answer.get("model"),
    }
    if answer.get("system_fingerprint") is not None:
        head["system_fingerprint"] = answer["system_fingerprint"]
    # With include_usage, OpenAI puts "usage": null on every chunk but the usage chunk.
    tail: dict[str, Any] = {"usage": None} if include_usage else {}
    steps = _chat_steps if chat else _text_steps
    events = [
        _sse({**head, "choices": [step], **tail})
        for position, choice in enumerate(answer["choices"])
        for step in steps(choice.get("index", position), choice)
    ]
    if include_usage and answer.get("usage") is not None:
        events.append(_sse({**head, "choices": [], "usage": answer["usage"]}))
    events.append(DONE)
    return events


def _is_chat(endpoint: str) -> bool:
    if endpoint not in ("chat/completions", "completions"):
        raise ValueError(f"no streams for endpoint {endpoint!r}")
    return endpoint == "chat/completions"


def _json_events(relayed: Sequence[bytes]) -> list[dict[str, Any]]:
    """The JSON object of each SSE event before ``data: [DONE]``."""
    text = b"".join(relayed).decode().replace("\r\n", "\n").replace("\r", "\n")
    events: list[dict[str, Any]] = []
    for block in text.split("\n\n"):
        lines = [line[5:].removeprefix(" ") for line in block.split("\n") if line[:5] == "data:"]
        if not lines:
            continue  # comments, keep-alives, event:/id: only
        data = "\n".join(lines)
        if data == "[DONE]":
            return events
        event = json.loads(data)
        if not isinstance(event, dict) or "error" in event or event.get("object") == "error":
            raise _NotCacheable("the stream carried an error")
        events.append(event)
    raise _NotCacheable("the stream has no [DONE]")


def _feed(state: _Choice, choice: dict[str, Any], chat: bool) -> None:
    source = (choice.get("delta") or {}) if chat else choice
    for key in _CHAT_TEXT if chat else ("text",):
        if source.get(key) is not None:
            state.text.setdefault(key, []).append(source[key])
    for piece in source.get("tool_calls") or []:
        empty = {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        call = state.calls.setdefault(piece["index"], empty)
        function = piece.get("function") or {}
        call["id"] = call["id"] or piece.get("id")
        call["type"] = piece.get("type") or call["type"]
        call["function"]["name"] = call["function"]["name"] or function.get("name") or ""
        call["function"]["arguments"] += function.get("arguments") or ""
    state.logprobs = _merge_logprobs(state.logprobs, choice.get("logprobs"))
    if choice.get("finish_reason") is not None:
        state.finish = choice["finish_reason"]


def _merge_logprobs(merged: dict[str, Any] | None, new: Any) -> dict[str, Any] | None:
    """Chunk logprobs are lists per field (``content``, ``tokens``, ...): extend them."""
    if not isinstance(new, dict):
        return merged
    result = dict(merged or {})
    for key, value in new.items():
        before = result.get(key)
        if isinstance(before, list) and isinstance(value, list):
            result[key] = before + value
        elif before is None:
            result[key] = value
    return result


def _choice_body(index: int, state: _Choice, chat: bool) -> dict[str, Any]:
    text = {key: "".join(parts) for key, parts in state.text.items()}
    ending = {"logprobs": state.logprobs, "finish_reason": state.finish}
    if not chat:
        return {"index": index, "text": text.get("text", ""), **ending}
    calls = [call for _, call in sorted(state.calls.items())]
    content = text.pop("content", "") or (None if calls else "")
    message: dict[str, Any] = {"role": "assistant", "content": content, **text}
    if calls:
        message["tool_calls"] = calls
    return {"index": index, "message": message, **ending}


def _load(body: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(body)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError alike
        raise ValueError(f"cached body is not JSON: {exc}") from exc
    choices: Any = answer.get("choices") if isinstance(answer, dict) else None
    if not (isinstance(choices, list) and choices and all(isinstance(c, dict) for c in choices)):
        raise ValueError("cached body is not a JSON object with a non-empty list of choices")
    return dict(answer)


def _chat_steps(index: int, choice: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One chunk's choice per step: role, reasoning, content, refusal, tool calls, finish."""
    message = choice.get("message") or {}
    if not isinstance(message, dict):
        raise ValueError("cached choice has a message that is not an object")

    def step(delta: dict[str, Any], logprobs: Any = None, finish: Any = None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}

    yield step({"role": "assistant", "content": ""})
    for piece in _pieces(message.get("reasoning_content") or ""):
        yield step({"reasoning_content": piece})
    for piece, logprobs in _with_logprobs(message.get("content") or "", choice.get("logprobs")):
        yield step({"content": piece}, logprobs)
    for piece in _pieces(message.get("refusal") or ""):
        yield step({"refusal": piece})
    for k, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        function = {"name": function.get("name"), "arguments": function.get("arguments", "")}
        kind = call.get("type") or "function"
        delta = {"index": k, "id": call.get("id"), "type": kind, "function": function}
        yield step({"tool_calls": [delta]})
    yield step({}, finish=choice.get("finish_reason"))


def _text_steps(index: int, choice: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for piece, logprobs in _with_logprobs(choice.get("text") or "", choice.get("logprobs")):
        yield {"index": index, "text": piece, "logprobs": logprobs, "finish_reason": None}
    finish = choice.get("finish_reason")
    yield {"index": index, "text": "", "logprobs": None, "finish_reason": finish}


def _with_logprobs(text: str, logprobs: Any) -> list[tuple[str, Any]]:
    """``text`` in pieces, the first (even of empty text) carrying the whole ``logprobs``."""
    pieces = _pieces(text) or ([""] if logprobs is not None else [])
    return [(piece, logprobs if n == 0 else None) for n, piece in enumerate(pieces)]


def _pieces(text: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    while len(text) - start > PIECE_CHARS:
        end = start + PIECE_CHARS
        space = max(text.rfind(c, start + 1, end) for c in " \n\t")
        cut = space + 1 if space > start else end
        pieces.append(text[start:cut])
        start = cut
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + _dumps(obj) + b"\n\n"


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
