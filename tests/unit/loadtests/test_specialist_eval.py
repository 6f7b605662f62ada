"""The specialist eval: the labelled set is assembled as documented, the split is fixed, and
the default classifier's held-out precision and recall stay above the floors measured when it
was tuned (docs/specialists.md): a regression guard that recomputes them."""

from __future__ import annotations

import collections

import pytest

from loadtests.specialist_eval import (
    EXCLUDED_SUBJECTS,
    MATH_SUBJECTS,
    Example,
    confusion,
    labelled_set,
    part,
    scores,
)
from policies.specialist import build_classifier

FLOORS = {
    "code": (0.80, 0.88),
    "math": (0.73, 0.73),
    "general": (0.94, 0.94),
}
"""Held-out (precision, recall) per topic, a little under what was measured (0.83/0.91,
0.76/0.76, 0.95/0.95)."""


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return labelled_set()


def test_the_set_has_its_sources_and_labels(examples: list[Example]) -> None:
    labels = collections.Counter(e.label for e in examples)
    assert labels["code"] == 172
    assert labels["math"] > 1_800 and labels["general"] > 10_000
    subjects = {e.source.removeprefix("mmlu:") for e in examples if e.source.startswith("mmlu:")}
    assert MATH_SUBJECTS <= subjects
    assert not subjects & EXCLUDED_SUBJECTS
    for e in examples:
        if e.source.startswith("mmlu:"):
            assert (e.label == "math") is (e.source[5:] in MATH_SUBJECTS)


def test_the_split_is_fixed_and_disjoint(examples: list[Example]) -> None:
    dev, held_out = part(examples, "dev"), part(examples, "held_out")
    assert len(dev) + len(held_out) == len(examples)
    assert not {e.text for e in dev} & {e.text for e in held_out}
    assert part(list(reversed(examples)), "held_out") == list(reversed(held_out))
    assert 0.45 < len(held_out) / len(examples) < 0.55


def test_held_out_precision_and_recall_stay_above_their_floors(examples: list[Example]) -> None:
    measured = scores(confusion(part(examples, "held_out"), build_classifier()))
    for topic, (precision, recall) in FLOORS.items():
        assert measured[topic].precision >= precision, (topic, measured[topic])
        assert measured[topic].recall >= recall, (topic, measured[topic])


def test_scores_are_computed_from_the_confusion_matrix() -> None:
    counts = {(t, p): 0 for t in ("code", "math", "general") for p in ("code", "math", "general")}
    counts |= {("code", "code"): 3, ("code", "general"): 1, ("general", "code"): 1}
    counts |= {("general", "general"): 5}
    found = scores(counts)
    assert (found["code"].precision, found["code"].recall, found["code"].n) == (0.75, 0.75, 4)
    assert found["code"].f1 == pytest.approx(0.75)
    assert (found["math"].precision, found["math"].f1, found["math"].n) == (0.0, 0.0, 0)
