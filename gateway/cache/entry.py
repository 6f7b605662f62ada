"""A cached answer and its bytes in the store.

An entry is the complete non-streaming response body exactly as the upstream sent it (or as
assembled from a stream), plus the token counts the ledger needs and when it was written.
On the wire: a 4-byte magic (``tg1`` and ``r`` raw or ``z`` zlib), then a one-line JSON
header and the body. Bodies from ``compress_min_bytes`` on are compressed (LLM JSON shrinks
3-5x). Anything that does not decode raises ``CorruptEntry``: the caller deletes it and goes
upstream. Imports: stdlib and ``gateway.upstreams.base``.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

from gateway.upstreams.base import Usage

_RAW, _ZLIB = b"tg1r", b"tg1z"


class CorruptEntry(ValueError):
    """Stored bytes that are not an entry this gateway wrote."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One cached answer."""

    body: bytes
    prompt_tokens: int
    completion_tokens: int
    created_at: float
    deployment: str
    """Who answered originally (for the logs; a hit is billed to nobody)."""

    @property
    def usage(self) -> Usage:
        """The original answer's token counts."""
        return Usage(self.prompt_tokens, self.completion_tokens)

    def encode(self, compress_min_bytes: int) -> bytes:
        """The stored form."""
        header = json.dumps(
            [self.prompt_tokens, self.completion_tokens, self.created_at, self.deployment],
            separators=(",", ":"),
        ).encode()
        payload = header + b"\n" + self.body
        if len(payload) >= compress_min_bytes:
            return _ZLIB + zlib.compress(payload, 6)
        return _RAW + payload

    @classmethod
    def decode(cls, data: bytes) -> Entry:
        """The entry in ``data``; ``CorruptEntry`` if it is not one."""
        magic, rest = data[:4], data[4:]
        if magic == _ZLIB:
            try:
                rest = zlib.decompress(rest)
            except zlib.error as exc:
                raise CorruptEntry(f"bad compressed entry: {exc}") from None
        elif magic != _RAW:
            raise CorruptEntry(f"unknown entry format {magic!r}")
        header, sep, body = rest.partition(b"\n")
        try:
            prompt, completion, created, deployment = json.loads(header)
        except (ValueError, TypeError) as exc:
            raise CorruptEntry(f"bad entry header: {exc}") from None
        if not (sep and body and _count(prompt) and _count(completion)):
            raise CorruptEntry("entry without a body or with bad token counts")
        if not isinstance(created, (int, float)) or not isinstance(deployment, str):
            raise CorruptEntry("entry with a bad timestamp or deployment")
        return cls(body, prompt, completion, float(created), deployment)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
