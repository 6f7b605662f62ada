"""Server-sent events: relaying an upstream's stream while reading its usage.

The gateway always asks OpenAI-compatible upstreams for a usage chunk so token counts are
exact; ``UsageTap`` reads it as the events go by and removes it again when the client did not
ask for it. Events are relayed as soon as they are complete; bytes that hold no usage are
passed through without being parsed. Imports: stdlib and ``gateway.upstreams.base``.
"""

from __future__ import annotations

import json
import re

from gateway.upstreams.base import Usage
from gateway.upstreams.usage import usage_from_dict

_USAGE_OBJECT = re.compile(rb'"usage"[ \t]*:[ \t]*\{')
DONE = b"data: [DONE]\n\n"


class UsageTap:
    """Feed it upstream bytes; it returns the bytes to send on and keeps ``usage``."""

    def __init__(self, client_wants_usage: bool) -> None:
        self.client_wants_usage = client_wants_usage
        self.usage: Usage | None = None
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        """Complete events from ``data`` (plus what was pending), ready for the client."""
        buf = self._pending + data if self._pending else data
        cut = _last_boundary(buf)
        if cut < 0:
            self._pending = buf
            return b""
        ready, self._pending = buf[:cut], buf[cut:]
        if _USAGE_OBJECT.search(ready) is None:
            return ready
        return b"".join(self._event(e) for e in _split_events(ready))

    def flush(self) -> bytes:
        """Whatever remains when the upstream closes (an unterminated last event)."""
        rest, self._pending = self._pending, b""
        if not rest.strip():
            return b""
        return self._event(rest.rstrip(b"\r\n") + b"\n\n")

    def _event(self, event: bytes) -> bytes:
        if _USAGE_OBJECT.search(event) is None:
            return event
        line = event.strip()
        if not line.startswith(b"data:"):
            return event
        try:
            chunk = json.loads(line[5:])
        except ValueError:
            return event
        usage = chunk.get("usage") if isinstance(chunk, dict) else None
        if not isinstance(usage, dict):
            return event
        self.usage = usage_from_dict(usage)
        if self.client_wants_usage:
            return event
        if not chunk.get("choices"):
            return b""  # the extra usage-only chunk the gateway asked for
        chunk["usage"] = None
        return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"


def _last_boundary(buf: bytes) -> int:
    """Index just past the last event terminator in ``buf``, or -1."""
    lf = buf.rfind(b"\n\n")
    crlf = buf.rfind(b"\r\n\r\n")
    if crlf >= 0 and crlf + 4 > lf + 2:
        return crlf + 4
    return lf + 2 if lf >= 0 else -1


def _split_events(ready: bytes) -> list[bytes]:
    parts = re.split(rb"(?<=\n\n)|(?<=\r\n\r\n)", ready)
    return [p for p in parts if p]


def error_event(body: bytes) -> bytes:
    """The one event that ends a stream that failed after it started."""
    return b"data: " + body + b"\n\n"
