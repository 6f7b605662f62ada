"""Specialist routing: classify a request's text as code, math or general, and route on it.

``classify(text, classifier)`` scores the first ``max_chars`` characters of ``text`` with the
rules of ``policies.specialist_rules`` (each adds ``weight * min(matches, cap)`` to its topic)
and picks the topic with the higher score if it reaches that topic's ``min_score``; a tie or a
low score is ``general``. ``routed_topic`` then says whose candidates a policy decides among:
the topic's specialist deployments, or the alias's general ones when the topic is general, the
alias has no specialist for it, or none of its deployments is available (circuit open or at
capacity). ``tagged`` puts that into the decision's detail (``specialist=code; ...``).
Imports: stdlib and ``policies``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from policies.model import Candidate, DataClass, Decision
from policies.reason import bounded
from policies.specialist_rules import RULE_NAMES, RULES, SPECIALIST_TOPICS, WORD, Rule, Topic

DEFAULT_MIN_SCORES: Mapping[str, float] = {"code": 3.0, "math": 3.5}
"""A topic's score must reach this to win: one strong rule, or a few weak ones (math needs a
little more: numbers and everyday quantity words are common in other questions too)."""
DEFAULT_MAX_CHARS = 4000
"""How much of the text is scanned: the cost is linear in it."""


@dataclass(frozen=True, slots=True)
class Classifier:
    """The rules with their weights, the per-topic thresholds and the scan cap."""

    rules: tuple[Rule, ...] = RULES
    min_scores: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIN_SCORES))
    max_chars: int = DEFAULT_MAX_CHARS


@dataclass(frozen=True, slots=True)
class Classification:
    """A topic, the score of each specialist topic and the rules that fired (for explain)."""

    topic: Topic
    scores: Mapping[str, float]
    fired: tuple[str, ...]


def build_classifier(
    weights: Mapping[str, object] | None = None,
    min_scores: Mapping[str, float] | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> Classifier:
    """A classifier with ``weights`` overriding the rules' defaults by rule name (ValueError
    naming an unknown rule or a bad weight); ``min_scores`` per topic override the default."""
    checked: dict[str, float] = {}
    for name, weight in (weights or {}).items():
        if name not in RULE_NAMES:
            raise ValueError(f"unknown rule {name!r} (known: {', '.join(sorted(RULE_NAMES))})")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise ValueError(f"{name}: weight must be a non-negative number")
        checked[name] = float(weight)
    if max_chars < 1:
        raise ValueError("max_chars: must be a positive integer")
    rules = tuple(
        dataclasses.replace(r, weight=checked[r.name]) if r.name in checked else r for r in RULES
    )
    thresholds = dict(DEFAULT_MIN_SCORES)
    thresholds.update(min_scores or {})
    return Classifier(rules, thresholds, max_chars)


def classify(text: str, classifier: Classifier) -> Classification:
    """The topic of ``text`` (its first ``classifier.max_chars`` characters)."""
    text = text[: classifier.max_chars]
    lower = text.lower()
    words = Counter(WORD.findall(lower))
    scores: dict[str, float] = dict.fromkeys(SPECIALIST_TOPICS, 0.0)
    fired: list[str] = []
    for rule in classifier.rules:
        matches = 0 if rule.weight == 0.0 else _matches(rule, text, lower, words)
        if matches:
            scores[rule.topic] += rule.weight * matches
            fired.append(rule.name)
    code, math = scores["code"], scores["math"]
    topic: Topic = "general"
    if code > math and code >= classifier.min_scores["code"]:
        topic = "code"
    elif math > code and math >= classifier.min_scores["math"]:
        topic = "math"
    return Classification(topic, scores, tuple(fired))


def _matches(rule: Rule, text: str, lower: str, words: Counter[str]) -> int:
    """How many times ``rule`` matches, up to its cap."""
    if rule.pattern is not None:
        if not any(hint in lower for hint in rule.hints):
            return 0
        matches = 0
        for _ in rule.pattern.finditer(text):
            matches += 1
            if matches == rule.cap:
                break
        return matches
    if rule.also is not None and not _matches(rule.also, text, lower, words):
        return 0
    found = sum(words[w] for w in rule.words.intersection(words.keys()))
    found += sum(lower.count(phrase) for phrase in rule.phrases)
    return min(rule.cap, found)


def routed_topic(
    topic: Topic, specialists: Sequence[Candidate], data_class: DataClass = "public"
) -> tuple[Topic, bool]:
    """Whose deployments decide: ``topic``'s specialists (``specialists``, empty when the
    alias has none for it) if one of them can take the request (circuit not open, not at
    capacity, and it may receive ``data_class``), else ``general``; and whether that was a
    fallback from specialists that could not take it."""
    if topic == "general" or not specialists:
        return "general", False
    if any(c.available and data_class in c.data_classes for c in specialists):
        return topic, False
    return "general", True


def tagged(decision: Decision, topic: Topic, unavailable: Topic | None = None) -> Decision:
    """``decision`` with the routed topic in front of its detail, and the specialist that was
    unavailable if any: ``specialist=code; ...``, ``specialist=general (math unavailable); ...``."""
    tag = f"specialist={topic}" + (f" ({unavailable} unavailable)" if unavailable else "")
    return dataclasses.replace(decision, detail=bounded(f"{tag}; {decision.detail}"))
