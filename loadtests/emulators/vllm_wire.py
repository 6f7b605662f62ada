"""vLLM's OpenAI-server wire format: response bodies and SSE chunks, byte for byte.

Field names and order are those of vLLM v0.10's pydantic models in
``vllm/entrypoints/openai/protocol.py`` as ``serving_chat.py`` and ``serving_completion.py``
dump them: non-stream responses with ``model_dump()`` (every field, nulls included); chat
chunks with ``model_dump_json(exclude_unset=True)`` (only the fields the server set: no
``usage`` key unless continuous usage is on, ``stop_reason`` only on the finishing chunk);
completion chunks with ``exclude_unset=False`` (``"usage":null`` on every chunk); the final
usage chunk with ``exclude_none=True`` (``choices: []``, no ``prompt_tokens_details``).
Errors use vLLM's ``ErrorResponse`` of that release: ``{"object":"error", ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtests.emulators.asgi import dumps


def usage(prompt: int, completion: int, *, details: bool = True) -> dict[str, object]:
    """vLLM's ``UsageInfo`` (order: prompt, total, completion, details)."""
    body: dict[str, object] = {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
    }
    if details:
        body["prompt_tokens_details"] = None
    return body


def error_body(message: str, err_type: str, status: int, param: str | None = None) -> bytes:
    """vLLM's ``ErrorResponse``."""
    return dumps(
        {"object": "error", "message": message, "type": err_type, "param": param, "code": status}
    )


def chat_response(
    rid: str, created: int, model: str, text: str, finish: str, prompt: int, completion: int
) -> bytes:
    """A non-stream ``chat.completion`` body."""
    message: dict[str, object] = {
        "role": "assistant",
        "content": text,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "tool_calls": [],
        "reasoning_content": None,
    }
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": finish,
        "stop_reason": None,
    }
    return dumps(
        {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [choice],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": usage(prompt, completion),
            "prompt_logprobs": None,
            "kv_transfer_params": None,
        }
    )


def completion_response(
    rid: str, created: int, model: str, text: str, finish: str, prompt: int, completion: int
) -> bytes:
    """A non-stream ``text_completion`` body."""
    choice = {
        "index": 0,
        "text": text,
        "logprobs": None,
        "finish_reason": finish,
        "stop_reason": None,
        "prompt_logprobs": None,
    }
    return dumps(
        {
            "id": rid,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [choice],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": usage(prompt, completion),
            "kv_transfer_params": None,
        }
    )


@dataclass(frozen=True, slots=True)
class ChunkWriter:
    """SSE events of one streamed response (chat or legacy completion)."""

    rid: str
    created: int
    model: str
    chat: bool

    def _event(self, choices: list[object], usage_value: object, usage_set: bool) -> bytes:
        obj: dict[str, object] = {
            "id": self.rid,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if usage_set or not self.chat:
            obj["usage"] = usage_value
        return b"data: " + dumps(obj) + b"\n\n"

    def role(self, running_usage: dict[str, object] | None) -> bytes:
        """Chat only: the first chunk, ``delta: {role: assistant, content: ""}``."""
        delta = {"role": "assistant", "content": ""}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        return self._event([choice], running_usage, running_usage is not None)

    def token(
        self, text: str, finish: str | None, running_usage: dict[str, object] | None
    ) -> bytes:
        """One token; with ``finish`` set, the finishing chunk."""
        choice: dict[str, object] = {"index": 0}
        if self.chat:
            choice["delta"] = {"content": text}
        else:
            choice["text"] = text
        choice["logprobs"] = None
        choice["finish_reason"] = finish
        if finish is not None or not self.chat:
            choice["stop_reason"] = None
        return self._event([choice], running_usage, running_usage is not None)

    def final_usage(self, prompt: int, completion: int) -> bytes:
        """The extra last chunk when ``stream_options.include_usage`` is true."""
        return self._event([], usage(prompt, completion, details=False), True)


DONE = b"data: [DONE]\n\n"


def models_body(model: str, created: int, max_model_len: int, perm_id: str) -> bytes:
    """``GET /v1/models`` as vLLM answers it (one served model)."""
    permission = {
        "id": perm_id,
        "object": "model_permission",
        "created": created,
        "allow_create_engine": False,
        "allow_sampling": True,
        "allow_logprobs": True,
        "allow_search_indices": False,
        "allow_view": True,
        "allow_fine_tuning": False,
        "organization": "*",
        "group": None,
        "is_blocking": False,
    }
    card = {
        "id": model,
        "object": "model",
        "created": created,
        "owned_by": "vllm",
        "root": model,
        "parent": None,
        "max_model_len": max_model_len,
        "permission": [permission],
    }
    return dumps({"object": "list", "data": [card]})


def embeddings_body(
    rid: str, created: int, model: str, vectors: list[object], prompt: int
) -> bytes:
    """vLLM's ``EmbeddingResponse``."""
    data = [{"index": i, "object": "embedding", "embedding": v} for i, v in enumerate(vectors)]
    return dumps(
        {
            "id": rid,
            "object": "list",
            "created": created,
            "model": model,
            "data": data,
            "usage": usage(prompt, 0),
        }
    )
