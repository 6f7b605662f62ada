"""Token counts for an answer whose upstream reported none (a stream cut off before its usage
chunk: the client left, or the upstream broke).

The prompt is counted from the request's messages (or prompt) and the completion from the
content the gateway relayed, with litellm's token counter (the model's own tokenizer where
litellm has it, else its default). It is slow (and litellm is imported on first use), so
callers run it in a worker thread; the ledger marks the record ``estimated``.
Imports: stdlib, ``gateway.upstreams.base``; litellm lazily.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from gateway.upstreams.base import Usage


def estimate_usage(model: str, request: dict[str, Any], relayed: Sequence[bytes]) -> Usage:
    """Prompt tokens of ``request`` and completion tokens of the relayed SSE events."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the price map
    import litellm

    messages = request.get("messages")
    if isinstance(messages, list):
        prompt = litellm.token_counter(model=model, messages=messages)
    else:
        prompt = litellm.token_counter(model=model, text=_prompt_text(request.get("prompt")))
    text = completion_text(relayed)
    completion = litellm.token_counter(model=model, text=text) if text else 0
    return Usage(int(prompt), int(completion))


def completion_text(relayed: Sequence[bytes]) -> str:
    """The generated text in OpenAI SSE events (chat deltas or completion text)."""
    parts: list[str] = []
    for line in b"".join(relayed).split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        try:
            chunk = json.loads(line[5:])
        except ValueError:
            continue  # [DONE], or an event cut in half by the disconnect
        for choice in chunk.get("choices") or () if isinstance(chunk, dict) else ():
            delta = choice.get("delta") or {}
            piece = delta.get("content") if isinstance(delta, dict) else None
            if piece is None:
                piece = choice.get("text")
            if isinstance(piece, str):
                parts.append(piece)
    return "".join(parts)


def _prompt_text(prompt: object) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return "\n".join(p for p in prompt if isinstance(p, str))
    return ""
