"""Reading ``usage`` out of an upstream's JSON reply without parsing the whole body.

OpenAI-compatible servers put ``usage`` after ``choices``, so the object is found from the
end and decoded alone; a full parse is the fallback. Imports: stdlib and ``base``.
"""

from __future__ import annotations

import json

from gateway.upstreams.base import Usage

_DECODER = json.JSONDecoder()


def usage_from_json(body: bytes) -> Usage | None:
    """Prompt and completion tokens from a chat/completions/embeddings reply, if present."""
    at = body.rfind(b'"usage"')
    if at >= 0:
        text = body[at + 7 :].decode("utf-8", "replace").lstrip()
        if text.startswith(":"):
            try:
                obj, _ = _DECODER.raw_decode(text[1:].lstrip())
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                return usage_from_dict(obj)
    try:
        whole = json.loads(body)
    except ValueError:
        return None
    usage = whole.get("usage") if isinstance(whole, dict) else None
    return usage_from_dict(usage) if isinstance(usage, dict) else None


def usage_from_dict(usage: dict[str, object]) -> Usage:
    """Usage from an OpenAI ``usage`` object (embeddings have no completion tokens)."""
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    return Usage(
        int(prompt) if isinstance(prompt, int) else 0,
        int(completion) if isinstance(completion, int) else 0,
    )
