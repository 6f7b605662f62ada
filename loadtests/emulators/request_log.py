"""``--request-log FILE``: one JSON line per request an emulator answered or started answering.

A line holds the caller's ``X-Request-Id`` (the gateway sends its own request id there; null
when absent), the requested ``model``, ``stream``, the ``prompt_tokens`` and
``completion_tokens`` the emulator reported (a stream the client cut off: the tokens it had
sent; a reply never sent: 0), the HTTP ``status`` it sent (499 when the client left before
any reply) and ``aborted`` (the client left before the reply was complete). Tests join these
lines to the gateway's ledger by request id and recompute the spend from them.

Lines are appended line-buffered, so they are on disk as soon as the request ends. Imports:
the standard library and ``asgi``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from loadtests.emulators.asgi import Request, dumps

CLIENT_CLOSED = 499
"""nginx's "client closed request": the client left before any reply was sent."""


@dataclass(slots=True)
class Progress:
    """How far one generation's reply got (updated by the handler as it sends)."""

    status: int = CLIENT_CLOSED
    """The HTTP status once the reply has started."""
    completion_tokens: int = 0
    """Tokens sent so far (a non-stream reply: all of them, once sent)."""
    done: bool = False
    """The whole reply was sent."""


class RequestLog:
    """Appends one line per request to a file; does nothing without a path."""

    def __init__(self, path: Path | None) -> None:
        self._file: TextIO | None = None
        if path is not None:
            self._file = path.open("a", encoding="utf-8", buffering=1)

    @property
    def enabled(self) -> bool:
        """Whether lines are written."""
        return self._file is not None

    def write(
        self,
        request: Request,
        status: int,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        aborted: bool = False,
    ) -> None:
        """Append the line for ``request`` (model and stream are read from its body)."""
        if self._file is None:
            return
        request_id = request.header(b"x-request-id")
        model, stream = _model_and_stream(request.body)
        entry = {
            "request_id": None if request_id is None else request_id.decode("latin-1"),
            "model": model,
            "stream": stream,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "status": status,
            "aborted": aborted,
        }
        self._file.write(dumps(entry).decode() + "\n")

    def finish(self, request: Request, progress: Progress, prompt_tokens: int) -> None:
        """Append the line for a generation, however far its reply got."""
        self.write(
            request,
            progress.status,
            prompt_tokens=prompt_tokens,
            completion_tokens=progress.completion_tokens,
            aborted=not progress.done,
        )

    def close(self) -> None:
        """Close the file (the process's exit closes it too)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _model_and_stream(body: bytes) -> tuple[str | None, bool]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, False
    if not isinstance(value, dict):
        return None, False
    model = value.get("model")
    return (model if isinstance(model, str) else None), value.get("stream") is True
