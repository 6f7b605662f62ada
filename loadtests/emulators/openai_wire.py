"""OpenAI's wire format (api.openai.com, 2025): bodies, SSE chunks, errors, rate-limit headers.

Field order is the order api.openai.com emits: ``id, object, created, model, choices, usage,
service_tier, system_fingerprint`` for responses, and ``id, object, created, model,
service_tier, system_fingerprint, choices[, usage]`` for chunks. Used by ``openai_api``.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass

from loadtests.emulators.asgi import Headers, dumps
from loadtests.emulators.openai_request import GenerationRequest

SYSTEM_FINGERPRINT = "fp_560af6e559"
SERVER_ERROR = (
    "The server had an error while processing your request. Sorry about that!",
    "server_error",
)
OVERLOADED = ("The engine is currently overloaded, please try again later.", "server_error")
NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field "
    "(with blank username) if you're accessing the API from your browser and are prompted for "
    "a username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
BAD_KEY = "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."
REQUESTS_PER_MINUTE = 10_000
TOKENS_PER_MINUTE = 30_000_000
_ALPHABET = string.ascii_letters + string.digits
DONE = b"data: [DONE]\n\n"


def new_id(prefix: str) -> str:
    """An id like OpenAI's (``chatcmpl-`` + 29 base62 characters)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(29))


def error_body(
    message: str, err_type: str, param: str | None = None, code: str | None = None
) -> bytes:
    """OpenAI's error envelope."""
    return dumps({"error": {"message": message, "type": err_type, "param": param, "code": code}})


def rate_limit_message(model: str, retry_ms: int) -> str:
    """The text of a requests-per-minute 429."""
    return (
        f"Rate limit reached for {model} in organization org-emulator on requests per min "
        f"(RPM): Limit {REQUESTS_PER_MINUTE}, Used {REQUESTS_PER_MINUTE}, Requested 1. "
        f"Please try again in {retry_ms}ms. Visit https://platform.openai.com/account/"
        "rate-limits to learn more."
    )


class RateWindow:
    """A one-minute window behind the ``x-ratelimit-*`` headers."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.requests = 0
        self.tokens = 0

    def headers(self, tokens: int) -> Headers:
        """Count one request of ``tokens`` and return the six rate-limit headers."""
        now = time.monotonic()
        if now - self.started >= 60.0:
            self.started, self.requests, self.tokens = now, 0, 0
        self.requests += 1
        self.tokens += tokens
        reset_ms = max(1, int((60.0 - (now - self.started)) * 1000 / REQUESTS_PER_MINUTE))
        return [
            (b"x-ratelimit-limit-requests", str(REQUESTS_PER_MINUTE).encode()),
            (b"x-ratelimit-limit-tokens", str(TOKENS_PER_MINUTE).encode()),
            (
                b"x-ratelimit-remaining-requests",
                str(max(0, REQUESTS_PER_MINUTE - self.requests)).encode(),
            ),
            (
                b"x-ratelimit-remaining-tokens",
                str(max(0, TOKENS_PER_MINUTE - self.tokens)).encode(),
            ),
            (b"x-ratelimit-reset-requests", f"{reset_ms}ms".encode()),
            (b"x-ratelimit-reset-tokens", b"0s"),
        ]


def usage(prompt: int, completion: int) -> dict[str, object]:
    """A chat ``usage`` object with the token-detail breakdowns OpenAI sends."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


@dataclass(frozen=True, slots=True)
class Writer:
    """Bodies and SSE events of one chat or legacy completion reply."""

    rid: str
    created: int
    model: str
    chat: bool
    params: GenerationRequest

    def response(self, tokens: list[str], finish: str) -> bytes:
        """The non-stream body."""
        text = "".join(tokens)
        used = usage(self.params.prompt_tokens, len(tokens))
        if not self.chat:
            choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
            return dumps(
                {
                    "id": self.rid,
                    "object": "text_completion",
                    "created": self.created,
                    "model": self.model,
                    "choices": [choice],
                    "usage": used,
                }
            )
        message: dict[str, object] = {
            "role": "assistant",
            "content": text,
            "refusal": None,
            "annotations": [],
        }
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        return dumps(
            {
                "id": self.rid,
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "choices": [choice],
                "usage": used,
                "service_tier": "default",
                "system_fingerprint": SYSTEM_FINGERPRINT,
            }
        )

    def _chunk(self, choices: list[object], usage_value: object = None) -> bytes:
        obj: dict[str, object] = {"id": self.rid}
        if self.chat:
            obj.update(
                object="chat.completion.chunk",
                created=self.created,
                model=self.model,
                service_tier="default",
                system_fingerprint=SYSTEM_FINGERPRINT,
            )
        else:
            obj.update(object="text_completion", created=self.created)
        obj["choices"] = choices
        if not self.chat:
            obj["model"] = self.model
        if self.params.include_usage:
            obj["usage"] = usage_value
        return b"data: " + dumps(obj) + b"\n\n"

    def _choice(self, delta: dict[str, object], text: str, finish: str | None) -> object:
        if self.chat:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}

    def events(self, tokens: list[str], finish: str) -> list[bytes]:
        """Every SSE event of the streamed reply, ``data: [DONE]`` included."""
        events: list[bytes] = []
        if self.chat:
            role: dict[str, object] = {"role": "assistant", "content": "", "refusal": None}
            events.append(self._chunk([self._choice(role, "", None)]))
        events.extend(self._chunk([self._choice({"content": t}, t, None)]) for t in tokens)
        events.append(self._chunk([self._choice({}, "", finish)]))
        if self.params.include_usage:
            events.append(self._chunk([], usage(self.params.prompt_tokens, len(tokens))))
        events.append(DONE)
        return events


def models_body(models: list[str]) -> bytes:
    """``GET /v1/models``."""
    data = [
        {"id": m, "object": "model", "created": 1_715_367_049, "owned_by": "system"} for m in models
    ]
    return dumps({"object": "list", "data": data})


def embeddings_body(model: str, vectors: list[object], prompt: int) -> bytes:
    """An embeddings reply."""
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    return dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
        }
    )
