"""The content check: does a request's text contain personal data? Then it is ``private``.

Only the text a model would read is scanned (chat message contents and their text parts, a
completion's prompt, an embedding's input), never the rest of the JSON, and only up to
``max_scan_bytes`` characters. Built-in detectors:

- ``email``: ``local@domain.tld``;
- ``phone``: international numbers, ``+`` then 8 to 15 digits (spaces, dots, dashes and
  parentheses between them);
- ``iban``: a country code, two check digits and 11-30 letters or digits (optionally in
  groups of four), valid by ISO 13616 mod-97;
- ``credit_card``: 13-19 digits, in groups of at least four as cards print them (or none),
  starting like a card number (2-6) and valid by the Luhn checksum;

plus the ``national_ids`` patterns the config names. Check digits keep random numbers from
matching. A scan answers the names of the detectors that matched, never what they matched.

Speed: a regular expression costs ~5-10 ns per character, so each built-in one runs only when
a C-speed test says it could match: ``@`` for e-mail, ``+`` and 8 digits for phone numbers,
two capitals then two digits for an IBAN, four digits in a row for a card (the digits and
capitals are found with one ``bytes.translate`` of the text): ordinary prose costs ~2 us
per KB (docs/privacy.md has the measurements).
Imports: stdlib and ``gateway.privacy.settings``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping

from gateway.privacy.settings import DetectorSettings

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w+])\+\d[\d .()-]{6,22}\d(?!\w)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"(?<![\d-])[2-6](?:[ -]?\d){12,18}(?![\d-])")


_SHAPE = bytes(ord("A") if 65 <= c <= 90 else ord("0") if 48 <= c <= 57 else c for c in range(256))
"""Capitals -> ``A``, digits -> ``0``, other bytes as they are."""


def _shape(text: str) -> bytes:
    return text.encode("utf-8", "replace").translate(_SHAPE)


def _email(text: str, shape: bytes) -> bool:
    return "@" in text and _EMAIL.search(text) is not None


def _phone(text: str, shape: bytes) -> bool:
    if "+" not in text or shape.count(b"0") < 8:
        return False
    for match in _PHONE.finditer(text):
        if 8 <= sum(ch.isdigit() for ch in match.group()) <= 15:
            return True
    return False


def iban_valid(candidate: str) -> bool:
    """ISO 13616: the country code and check digits moved to the end, letters as 10-35,
    the number mod 97 is 1."""
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _iban(text: str, shape: bytes) -> bool:
    if b"AA00" not in shape:
        return False
    for match in _IBAN.finditer(text):
        # A run of upper-case words after an IBAN written in groups joins the match: try
        # the groups from the longest prefix down.
        groups = match.group().split(" ")
        for end in range(len(groups), 0, -1):
            if iban_valid("".join(groups[:end])):
                return True
    return False


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of digits is 0 (mod 10)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card(text: str, shape: bytes) -> bool:
    if b"0000" not in shape:
        return False
    for match in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return True
    return False


Check = Callable[[str, bytes], bool]
"""(text, its shape) -> whether the detector matches."""


def _searcher(pattern: re.Pattern[str]) -> Check:
    return lambda text, shape: pattern.search(text) is not None


_BUILTIN: Mapping[str, Check] = {
    "email": _email,
    "phone": _phone,
    "iban": _iban,
    "credit_card": _card,
}


class Detector:
    """The configured checks, run over one request's text."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.settings = settings
        self._checks: list[tuple[str, Check]] = [
            (name, _BUILTIN[name]) for name in settings.detectors
        ]
        for name, pattern in settings.national_ids.items():
            self._checks.append((name, _searcher(pattern)))

    @property
    def names(self) -> tuple[str, ...]:
        """Every detector's name (the metric's label values)."""
        return tuple(name for name, _ in self._checks)

    def scan(self, text: str) -> tuple[str, ...]:
        """The names of the detectors that match ``text`` (cut to ``max_scan_bytes``)."""
        text = text[: self.settings.max_scan_bytes]
        shape = _shape(text)
        return tuple(name for name, check in self._checks if check(text, shape))


def request_text(parsed: Mapping[str, object]) -> str:
    """The text a model reads in a chat, completion or embedding request, joined by
    newlines (the parser has checked the shapes routing needs; the rest is read leniently)."""
    return "\n".join(_texts(parsed))


def _texts(parsed: Mapping[str, object]) -> Iterator[str]:
    messages = parsed.get("messages")
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            yield from _content(content)
    for name in ("prompt", "input"):
        yield from _content(parsed.get(name))


def _content(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for part in value:
            if isinstance(part, str):
                yield part
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]
