"""openai SDK clients calling one alias back to back (streamed and not) until stopped.

Each answer's serving deployment comes from the ``x-gateway-deployment`` header; every
failure is kept. Used by the end-to-end tests that change the gateway under load.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openai

from tests.support.clients import sync_client


@dataclass
class Traffic:
    """``clients`` threads sending chat completions for ``model`` to ``url``."""

    url: str
    model: str
    clients: int = 4
    max_tokens: int = 8
    failures: list[str] = field(default_factory=list)
    served_by: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def answered(self) -> int:
        """Requests answered so far."""
        with self._lock:
            return sum(self.served_by.values())

    def reached(self, count: int) -> bool:
        """Whether ``count`` requests have been answered."""
        return self.answered >= count

    @contextlib.contextmanager
    def flowing(self) -> Iterator[Traffic]:
        """Send until the block ends, then wait for the requests in flight."""
        threads = [threading.Thread(target=self._send, args=(i,)) for i in range(self.clients)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=30)

    def _send(self, index: int) -> None:
        with sync_client(self.url) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                try:
                    deployment = self._one(client, stream=(index + n) % 2 == 0)
                except openai.OpenAIError as exc:
                    with self._lock:
                        self.failures.append(repr(exc))
                    continue
                with self._lock:
                    self.served_by[deployment] = self.served_by.get(deployment, 0) + 1

    def _one(self, client: openai.OpenAI, *, stream: bool) -> str:
        messages: Any = [{"role": "user", "content": "Say hi."}]
        if not stream:
            raw = client.chat.completions.with_raw_response.create(
                model=self.model, messages=messages, max_tokens=self.max_tokens
            )
            raw.parse()
            return raw.headers["x-gateway-deployment"]
        with client.chat.completions.with_streaming_response.create(
            model=self.model, messages=messages, max_tokens=self.max_tokens, stream=True
        ) as response:
            lines = [line for line in response.iter_lines() if line]
            if lines[-1] != "data: [DONE]":
                raise openai.APIError(
                    f"stream ended with {lines[-1]!r}", response.http_request, body=None
                )
            return response.headers["x-gateway-deployment"]
