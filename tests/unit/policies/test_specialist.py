"""The specialist classifier: clear cases each way, hard negatives, thresholds, weights, the
scan cap; and the routing helpers (which pool decides, the tag in the detail)."""

from __future__ import annotations

import time

import pytest

from policies.model import Candidate, Decision
from policies.reason import MAX_DETAIL
from policies.specialist import (
    DEFAULT_MAX_CHARS,
    build_classifier,
    classify,
    routed_topic,
    tagged,
)
from policies.specialist_rules import RULE_NAMES

DEFAULT = build_classifier()
FENCE = "```"

CASES = [
    ("code", f"Why does this fail?\n\n{FENCE}python\nprint(1 +)\n{FENCE}"),
    ("code", "Write a Python function that merges two sorted lists."),
    ("code", "Write a shell script that waits until a TCP port is open."),
    ("code", "SELECT name, total FROM orders WHERE total > 10; why is it slow?"),
    (
        "code",
        "Traceback (most recent call last):\n  File \"a.py\", line 3, in <module>\nKeyError: 'id'",
    ),
    ("code", "Write a regular expression that validates an IPv4 address."),
    ("code", "Explain this:\n\n    def f(xs):\n        return [x * 2 for x in xs]\n"),
    ("code", "for (let i = 0; i < n; i++) {\n  total += a[i];\n}\nwhy is total NaN?"),
    ("math", "Solve for x: $3x^2 - 12 = 0$."),
    ("math", "Compute \\int_0^1 x^2 \\, dx and simplify the result."),
    (
        "math",
        "A baker sells 12 muffins each day at $3 each. How many dollars does she earn in 5 days?",
    ),
    ("math", "If 2x + 3 = 11, what is the value of x?"),
    ("math", "What is the probability that the sum of 2 fair dice is 7? Compute it."),
    ("general", "What are good names for a coffee shop near a university?"),
    ("general", "Summarize the causes of the First World War."),
    ("general", "hi"),
    ("general", ""),
]
"""Each row: the expected topic and a prompt."""

HARD_NEGATIVES = [
    "What's the history of the Python programming language?",
    "How do I become a software engineer without a degree?",
    "Who was Ada Lovelace and why is she important?",
    "The company sold 3 factories in 1998 and moved its headquarters to Oslo.",
    "The __________ theory describes stages of moral development.",
]
"""Prose that mentions programming, numbers or blanks: general."""


@pytest.mark.parametrize(("topic", "text"), CASES)
def test_clear_cases_get_their_topic(topic: str, text: str) -> None:
    assert classify(text, DEFAULT).topic == topic


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_prose_about_programming_or_with_numbers_stays_general(text: str) -> None:
    assert classify(text, DEFAULT).topic == "general"


def test_the_classification_lists_its_scores_and_the_rules_that_fired() -> None:
    found = classify(f"Fix this:\n{FENCE}python\nimport os\n{FENCE}", DEFAULT)
    assert found.topic == "code"
    assert found.fired[:2] == ("code_fence", "python_syntax")
    assert found.scores["code"] >= 7.0
    assert found.scores["math"] == 0.0


def test_a_tie_or_a_score_under_the_threshold_is_general() -> None:
    strict = build_classifier(min_scores={"code": 100.0})
    assert classify("Write a Python function that merges two lists.", strict).topic == "general"
    even = build_classifier(min_scores={"math": 3.0})
    found = classify("import os\n$a$", even)  # python_syntax 3 against latex 3
    assert found.scores == {"code": 3.0, "math": 3.0}
    assert found.topic == "general"


def test_weights_override_rules_by_name_and_zero_turns_a_rule_off() -> None:
    text = f"{FENCE}\nhello\n{FENCE}"
    assert classify(text, DEFAULT).topic == "code"
    off = build_classifier({"code_fence": 0})
    assert classify(text, off).topic == "general"
    assert "code_fence" not in classify(text, off).fired


def test_unknown_rules_and_bad_weights_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown rule 'fences'"):
        build_classifier({"fences": 1.0})
    with pytest.raises(ValueError, match="code_fence: weight must be a non-negative number"):
        build_classifier({"code_fence": -1})
    with pytest.raises(ValueError, match="max_chars"):
        build_classifier(max_chars=0)
    assert {"code_fence", "latex", "code_request"} <= RULE_NAMES


def test_only_the_first_max_chars_are_scanned() -> None:
    text = "Tell me a story about a lighthouse. " * 20 + f"\n{FENCE}python\nimport os\n{FENCE}"
    assert classify(text, DEFAULT).topic == "code"
    assert classify(text, build_classifier(max_chars=200)).topic == "general"


def test_a_huge_adversarial_text_is_classified_in_bounded_time() -> None:
    # Repeated near-matches of every pattern: no catastrophic backtracking, and the cap holds.
    nasty = ("select a, b, c, d from " * 50 + "$" + "1 + " * 200 + "    x" * 100) * 100
    started = time.perf_counter()
    found = classify(nasty, DEFAULT)
    assert time.perf_counter() - started < 0.05
    assert len(nasty) > 50 * DEFAULT_MAX_CHARS
    assert found.topic in ("code", "math", "general")


def _candidate(name: str, circuit: str = "closed") -> Candidate:
    return Candidate(name, local=True, circuit=circuit)  # type: ignore[arg-type]


def test_the_specialist_decides_while_one_of_its_deployments_is_available() -> None:
    up, down = _candidate("coder-a"), _candidate("coder-b", "open")
    assert routed_topic("code", [down, up]) == ("code", False)
    assert routed_topic("code", [down]) == ("general", True)
    assert routed_topic("code", []) == ("general", False)
    assert routed_topic("general", [up]) == ("general", False)


def test_the_tag_leads_the_detail_and_names_an_unavailable_specialist() -> None:
    decision = Decision("ordered", ("a",), "configured_order", "a first available")
    assert tagged(decision, "code").detail == "specialist=code; a first available"
    fell = tagged(decision, "general", "math").detail
    assert fell == "specialist=general (math unavailable); a first available"
    long = Decision("ordered", ("a",), "configured_order", "x" * MAX_DETAIL)
    assert len(tagged(long, "math").detail) == MAX_DETAIL
