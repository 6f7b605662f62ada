"""An alias's specialists: their config, the text a request is classified on, the route taken.

``parse_specialists`` validates an alias's ``specialists`` and ``classifier`` sections (the
config loader passes its field checkers in, as for the cache and discovery settings) into the
topic -> deployment names map and the ``Classifier``. ``request_text`` picks what is
classified: the last user message of a chat (its text parts), or the last prompt of a
completion, cut at the classifier's ``max_chars``. ``SpecialistRoute`` is what the dispatcher
did with it (explain shows it). Imports: stdlib, ``policies``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from policies.specialist import (
    DEFAULT_MAX_CHARS,
    Classification,
    Classifier,
    build_classifier,
)
from policies.specialist_rules import SPECIALIST_TOPICS, Topic

SPECIALIST_KEYS = {"deployments", "min_score"}
CLASSIFIER_KEYS = {"weights", "max_chars"}

Check = Callable[[object, str], Any]


@dataclass(frozen=True, slots=True)
class SpecialistRoute:
    """How one request was classified and which deployments decided it."""

    classification: Classification
    topic: Topic
    """The pool the policy decided among: the classified topic if the alias has that
    specialist and one of its deployments is available, else ``general``."""
    fallback: bool
    """The alias has the classified topic's specialist but none of its deployments was
    available, so the general deployments decided."""


def parse_specialists(
    specialists: object,
    classifier: object,
    at: str,
    deployments: Collection[str],
    *,
    mapping: Check,
    names: Check,
    number: Check,
    integer: Check,
) -> tuple[Mapping[str, tuple[str, ...]], Classifier | None]:
    """The alias's topic -> deployment names and its classifier (None without specialists).

    ``mapping`` and ``number``/``integer`` check a field and raise naming it; ``names`` checks
    a non-empty list of deployment names."""
    spec = mapping(specialists, f"{at}.specialists")
    if not spec:
        if classifier is not None:
            raise ValueError(f"{at}.classifier: only an alias with specialists classifies")
        return {}, None
    routes: dict[str, tuple[str, ...]] = {}
    min_scores: dict[str, float] = {}
    for topic, raw in spec.items():
        where = f"{at}.specialists.{topic}"
        if topic not in SPECIALIST_TOPICS:
            raise ValueError(f"{where}: unknown topic (known: {', '.join(SPECIALIST_TOPICS)})")
        item = mapping(raw, where)
        _only(item, where, SPECIALIST_KEYS)
        routes[topic] = names(item.get("deployments"), f"{where}.deployments")
        for i, name in enumerate(routes[topic]):
            if name not in deployments:
                raise ValueError(f"{where}.deployments[{i}]: unknown deployment {name!r}")
        if "min_score" in item:
            min_scores[topic] = number(item["min_score"], f"{where}.min_score")
    settings = mapping(classifier, f"{at}.classifier")
    _only(settings, f"{at}.classifier", CLASSIFIER_KEYS)
    weights = mapping(settings.get("weights"), f"{at}.classifier.weights")
    max_chars = integer(settings.get("max_chars", DEFAULT_MAX_CHARS), f"{at}.classifier.max_chars")
    try:
        built = build_classifier(weights, min_scores, max_chars)
    except ValueError as exc:
        raise ValueError(f"{at}.classifier: {exc}") from exc
    return routes, built


def _only(spec: Mapping[str, object], at: str, allowed: set[str]) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(
            f"{at}.{unknown[0]}: unknown field (allowed: {', '.join(sorted(allowed))})"
        )


def request_text(parsed: Mapping[str, Any], max_chars: int) -> str:
    """The text to classify: the last user message's text (chat) or the last prompt
    (completions), at most ``max_chars`` characters; "" when there is none."""
    messages = parsed.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _content_text(message.get("content"), max_chars)
        return ""
    prompt = parsed.get("prompt")
    if isinstance(prompt, list) and prompt:
        prompt = prompt[-1]
    return prompt[:max_chars] if isinstance(prompt, str) else ""


def _content_text(content: object, max_chars: int) -> str:
    if isinstance(content, str):
        return content[:max_chars]
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    size = 0
    for part in content:
        text = part.get("text") if isinstance(part, dict) else None
        if isinstance(text, str):
            parts.append(text[: max_chars - size])
            size += len(parts[-1])
            if size >= max_chars:
                break
    return "\n".join(parts)
