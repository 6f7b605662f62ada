"""Parsing of OpenAI-style request bodies (chat, completions, embeddings) for the emulators.

Shared by the vLLM worker and the OpenAI API emulators: both accept the OpenAI request format
(vLLM adds ``ignore_eos`` and ``stream_options.continuous_usage_stats``). Only the fields the
emulators act on are read; a malformed field raises ``BadRequest`` (a 400 in each API's
error shape). Token counts follow ``textgen``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from loadtests.emulators import textgen


class BadRequest(Exception):
    """A request the API would answer with 400 (``invalid_request_error``)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class UnknownModel(BadRequest):
    """A request for a model the emulator does not serve (404)."""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What a chat or text completion request asks for, as the emulators need it."""

    model: str
    prompt_text: str
    prompt_tokens: int
    max_tokens: int | None
    ignore_eos: bool
    stream: bool
    include_usage: bool
    continuous_usage: bool


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """An embeddings request: the model, the input texts and the encoding."""

    model: str
    inputs: tuple[str, ...]
    encoding_format: str
    dimensions: int | None


def parse_object(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Invalid JSON body: {exc}") from exc
    if not isinstance(value, dict):
        raise BadRequest("The request body must be a JSON object.")
    return value


def _model(obj: dict[str, Any]) -> str:
    model = obj.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "model")
    return model


def _max_tokens(obj: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = obj.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadRequest(f"{name} must be a positive integer, got {value!r}.", name)
        return value
    return None


def _generation(obj: dict[str, Any], prompt_text: str, prompt_tokens: int) -> GenerationRequest:
    stream = obj.get("stream") is True
    options = obj.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise BadRequest("stream_options must be an object.", "stream_options")
    options = options or {}
    if options and not stream:
        raise BadRequest("Stream options can only be defined when `stream=True`.", "stream_options")
    return GenerationRequest(
        model=_model(obj),
        prompt_text=prompt_text,
        prompt_tokens=prompt_tokens,
        max_tokens=_max_tokens(obj),
        ignore_eos=obj.get("ignore_eos") is True,
        stream=stream,
        include_usage=options.get("include_usage") is True,
        continuous_usage=options.get("continuous_usage_stats") is True,
    )


def parse_chat(body: bytes) -> GenerationRequest:
    """A ``/v1/chat/completions`` body."""
    obj = parse_object(body)
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array.", "messages")
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest("Each message must be an object with a role.", "messages")
    text, tokens = textgen.chat_prompt(messages)
    return _generation(obj, text, tokens)


def _texts(value: object, param: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return (" ".join(str(v) for v in value),)  # token ids: one token each
    raise BadRequest(f"{param} must be a string, an array of strings or of token ids.", param)


def parse_completion(body: bytes) -> GenerationRequest:
    """A legacy ``/v1/completions`` body (a single prompt)."""
    obj = parse_object(body)
    texts = _texts(obj.get("prompt"), "prompt")
    if len(texts) != 1:
        raise BadRequest("Only a single prompt per request is supported.", "prompt")
    return _generation(obj, texts[0], textgen.text_prompt_tokens(texts[0]))


def parse_embedding(body: bytes) -> EmbeddingRequest:
    """A ``/v1/embeddings`` body."""
    obj = parse_object(body)
    encoding = obj.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise BadRequest("encoding_format must be 'float' or 'base64'.", "encoding_format")
    dimensions = obj.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or dimensions < 1):
        raise BadRequest("dimensions must be a positive integer.", "dimensions")
    return EmbeddingRequest(_model(obj), _texts(obj.get("input"), "input"), encoding, dimensions)
