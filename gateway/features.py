"""Parse only what routing needs from a request body, and reject what is malformed.

The body is decoded once (``json.loads``); the fields read here are checked for type so a
bad request gets a 400 naming the parameter, never a 500 later. Everything else is left for
the upstream, which receives the body as the client sent it. Imports: stdlib, ``errors``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidRequest
from gateway.upstreams.base import Endpoint


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """What the dispatcher needs to know about one request."""

    endpoint: Endpoint
    model: str
    stream: bool
    client_wants_usage: bool
    parsed: dict[str, Any]


def parse_request(endpoint: Endpoint, body: bytes) -> ParsedRequest:
    """Decode and check ``body`` for ``endpoint``; raise InvalidRequest when it is bad."""
    if not body:
        raise InvalidRequest("the request body is empty; expected a JSON object")
    try:
        # RFC 8259: JSON between systems is UTF-8; json.loads(bytes) would also take UTF-16,
        # which the byte splices in upstreams/body.py cannot handle.
        parsed = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the request body is not UTF-8: {exc}") from exc
    except ValueError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidRequest("the request body is nested too deeply") from exc
    if not isinstance(parsed, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = parsed.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string", param="model")
    _CHECKS[endpoint](parsed)
    stream = _optional_bool(parsed, "stream")
    if stream and endpoint == "embeddings":
        raise InvalidRequest("embeddings cannot be streamed", param="stream")
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = parsed.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise InvalidRequest(f"'{name}' must be a positive integer", param=name)
    return ParsedRequest(endpoint, model, stream, _wants_usage(parsed, stream), parsed)


def _check_chat(parsed: dict[str, Any]) -> None:
    messages = parsed.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest(
            "'messages' is required and must be a non-empty array", param="messages"
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(
                f"messages[{i}] must be an object with a string 'role'", param=f"messages[{i}]"
            )


def _check_completion(parsed: dict[str, Any]) -> None:
    prompt = parsed.get("prompt")
    if not isinstance(prompt, str | list) or (isinstance(prompt, list) and not prompt):
        raise InvalidRequest("'prompt' is required: a string or a non-empty array", param="prompt")


def _check_embedding(parsed: dict[str, Any]) -> None:
    value = parsed.get("input")
    if not isinstance(value, str | list) or (isinstance(value, list) and not value):
        raise InvalidRequest("'input' is required: a string or a non-empty array", param="input")


_CHECKS = {
    "chat/completions": _check_chat,
    "completions": _check_completion,
    "embeddings": _check_embedding,
}


def _optional_bool(parsed: dict[str, Any], name: str) -> bool:
    value = parsed.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{name}' must be a boolean", param=name)
    return value


def _wants_usage(parsed: dict[str, Any], stream: bool) -> bool:
    options = parsed.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    if not stream:
        raise InvalidRequest(
            "'stream_options' is only allowed with stream: true", param="stream_options"
        )
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise InvalidRequest(
            "'stream_options.include_usage' must be a boolean", param="stream_options"
        )
    return include
