"""Deterministic text, token counts, output lengths and embeddings for the emulators.

Pure functions (stdlib only, no I/O except loading the trace). The emulated tokenizer is
deliberately simple so that usage numbers can be checked exactly:

- Output: one word = one token. Words come from a small fixed vocabulary, drawn by a PRNG
  seeded with a hash of the prompt, so the same prompt always yields the same text. The first
  token is the bare word, every later token is ``" " + word`` (as BPE tokenizers emit leading
  spaces), so the text is the words joined by single spaces.
- Prompt tokens: the number of whitespace-separated words in every message's text, plus
  ``MESSAGE_OVERHEAD_TOKENS`` per message (role and chat-template markers). A bare text prompt
  (``/v1/completions``, embeddings input) counts its words only, at least one.
- Output length, when not forced: drawn, seeded by the prompt hash, from the real
  ``GeneratedTokens`` column of the Azure LLM inference trace 2023, conversation service
  (``shared/data/traces/azure_llm_2023_conv.csv``, see PROVENANCE.md §1a; mean 211, p50 129).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import math
import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MESSAGE_OVERHEAD_TOKENS = 4
"""Tokens a chat message costs besides its words (role and template markers)."""

VOCABULARY: tuple[str, ...] = (
    "the",
    "model",
    "token",
    "gateway",
    "request",
    "answer",
    "latency",
    "cache",
    "route",
    "budget",
    "worker",
    "stream",
    "prompt",
    "reply",
    "cost",
    "queue",
    "batch",
    "policy",
    "metric",
    "system",
    "fast",
    "local",
    "paid",
    "simple",
    "clear",
    "value",
    "result",
    "data",
    "time",
    "first",
    "next",
    "last",
    "small",
    "large",
    "good",
    "well",
    "more",
    "less",
    "often",
    "again",
    "here",
    "there",
    "and",
    "or",
    "but",
    "so",
    "then",
    "with",
    "from",
    "into",
    "over",
    "under",
    "about",
    "every",
    "each",
    "some",
    "many",
    "few",
    "will",
    "can",
    "may",
    "should",
    "does",
    "is",
)

DEFAULT_TRACE = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "traces"
    / "azure_llm_2023_conv.csv"
)
"""The conversation trace, found next to the repository (``../shared``)."""

_GENERATION_SALT = 0x5EED_0F_70_6B


def prompt_seed(text: str) -> int:
    """A stable 64-bit seed for ``text`` (not Python's salted ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def count_words(text: str) -> int:
    """Whitespace-separated words in ``text``: the emulators' token count for text."""
    return len(text.split())


def message_text(content: object) -> str:
    """The text of one chat message's ``content`` (a string or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def chat_prompt(messages: Sequence[object]) -> tuple[str, int]:
    """The prompt text (for seeding) and its token count, for a list of chat messages."""
    texts = [message_text(m.get("content")) if isinstance(m, dict) else "" for m in messages]
    tokens = sum(count_words(t) for t in texts) + MESSAGE_OVERHEAD_TOKENS * len(messages)
    return "\n".join(texts), tokens


def text_prompt_tokens(text: str) -> int:
    """Tokens of a bare text prompt: its words, at least one."""
    return max(1, count_words(text))


def generate_tokens(seed: int, count: int) -> list[str]:
    """``count`` token strings for ``seed``: ``["word", " word", " word", ...]``."""
    if count <= 0:
        return []
    words = random.Random(seed ^ _GENERATION_SALT).choices(VOCABULARY, k=count)
    return [words[0], *(" " + w for w in words[1:])]


@dataclass(frozen=True, slots=True)
class OutputLengths:
    """An empirical distribution of output lengths (tokens), sampled by a seed."""

    lengths: tuple[int, ...]

    def draw(self, seed: int) -> int:
        """The natural (end-of-sequence) length for the prompt with ``seed``."""
        return self.lengths[seed % len(self.lengths)]


def load_output_lengths(path: Path) -> OutputLengths:
    """Read the ``GeneratedTokens`` column of an Azure LLM trace CSV (lengths < 1 dropped)."""
    with path.open(newline="", encoding="utf-8") as handle:
        lengths = tuple(
            int(row["GeneratedTokens"])
            for row in csv.DictReader(handle)
            if int(row["GeneratedTokens"]) >= 1
        )
    if not lengths:
        raise ValueError(f"no GeneratedTokens rows in {path}")
    return OutputLengths(lengths)


def choose_length(natural: int, max_tokens: int | None, *, ignore_eos: bool) -> tuple[int, str]:
    """Output tokens and finish reason from the natural length and the request's limits.

    With ``ignore_eos`` and a ``max_tokens`` (vLLM's benchmarking extension) exactly
    ``max_tokens`` are generated; otherwise the natural length, capped by ``max_tokens``.
    """
    if max_tokens is not None and (ignore_eos or natural >= max_tokens):
        return max_tokens, "length"
    return natural, "stop"


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit-length vector for ``text`` (same text, same vector)."""
    rng = random.Random(prompt_seed(text))
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def encode_base64_floats(values: Sequence[float]) -> str:
    """Little-endian float32 bytes in base64, as OpenAI's ``encoding_format="base64"``."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
