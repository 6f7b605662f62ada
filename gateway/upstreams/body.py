"""Rewriting a request body for an upstream without re-serialising it.

The client's JSON is forwarded as received; only the top-level ``model`` changes (the alias
becomes the deployment's model name) and, on streams, ``stream_options.include_usage`` is
switched on so token counts are exact. Both are byte splices on the raw body. When a splice
cannot be proven safe (the model pair occurs twice, sits in a nested object, or is written
with escapes) the body is re-encoded from the parsed object instead: correct, just slower.
Imports: stdlib only.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

_WS = (b" ", b"\t", b"\r", b"\n")
_STRING_OR_BRACKET = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def rewrite_body(raw: bytes, parsed: dict[str, Any], model: str, want_usage: bool) -> bytes:
    """The body to send upstream: ``model`` replaced, usage requested when ``want_usage``."""
    body = _with_model(raw, parsed, model)
    if want_usage and not _usage_already_requested(parsed):
        body = _with_usage_requested(body, parsed, model)
    return body


def _with_model(raw: bytes, parsed: dict[str, Any], model: str) -> bytes:
    current = parsed["model"]
    if current == model:
        return raw
    # Inside a JSON string a quote is escaped, so a literal "model" is a key (or the string
    # value "model"). Exactly one, not escaped, directly inside the outer object and followed
    # by the parsed value is the pair parsed above; anything else (two of them, a nested one,
    # a key or value written with escapes) takes the slow, always-correct path.
    at = raw.find(b'"model"')
    if at < 0 or raw.find(b'"model"', at + 7) >= 0 or (at and raw[at - 1] == 0x5C):
        return _reencode(parsed, model=model)
    value = _encoded(current)
    colon = _skip_ws(raw, at + 7)
    start = _skip_ws(raw, colon + 1)
    end = start + len(value)
    if raw[colon : colon + 1] != b":" or raw[start:end] != value or _depth_at(raw, at) != 1:
        return _reencode(parsed, model=model)
    return raw[:start] + _encoded(model) + raw[end:]


@lru_cache(maxsize=1024)
def _encoded(model: str) -> bytes:
    """``model`` as a JSON string (cached: it is a configured alias or deployment model)."""
    return json.dumps(model).encode()


def _skip_ws(raw: bytes, at: int) -> int:
    while raw[at : at + 1] in _WS:
        at += 1
    return at


def _depth_at(raw: bytes, position: int) -> int:
    """How many objects/arrays enclose ``position`` (strings skipped, in C via ``re``)."""
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(raw, 0, position):
        first = token.group()[:1]
        if first in b"{[":
            depth += 1
        elif first in b"}]":
            depth -= 1
    return depth


def _usage_already_requested(parsed: dict[str, Any]) -> bool:
    options = parsed.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _with_usage_requested(body: bytes, parsed: dict[str, Any], model: str) -> bytes:
    if "stream_options" in parsed:
        options = dict(parsed["stream_options"] or {})
        options["include_usage"] = True
        return _reencode(parsed, model=model, stream_options=options)
    start = body.index(b"{") + 1
    rest = body[start:].lstrip()
    sep = b"" if rest.startswith(b"}") else b","
    return body[:start] + b'"stream_options":{"include_usage":true}' + sep + rest


def _reencode(parsed: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps({**parsed, **changes}, ensure_ascii=False).encode()
