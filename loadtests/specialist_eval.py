"""Accuracy and cost of the specialist classifier on a labelled set of public prompts.

``python -m loadtests.specialist_eval [--data-dir DIR] [--part dev|held_out]`` assembles the
labelled set, splits it in a fixed way, classifies one part with the default classifier and
prints per-topic precision, recall and F1, the confusion matrix, n per class and the cost per
prompt beside the cost of a policy decision (docs/specialists.md has the numbers).

The set (``DIR`` defaults to ``../shared/data/quality`` next to the repository):

- math: every GSM8K prompt, and the MMLU questions of ``MATH_SUBJECTS``;
- general: the MMLU questions of every other subject except ``EXCLUDED_SUBJECTS`` (computer
  science, whose questions are about code without always containing any), and
  ``loadtests/data/general_prompts.jsonl`` (chat and prose about programming, written here);
- code: ``loadtests/data/code_prompts.jsonl`` (requests, fenced snippets, tracebacks, SQL,
  regex, shell, "explain this code", written here).

A prompt is in the held-out part when the first byte of its SHA-256 (after ``SEED``) is odd:
fixed, independent of file order. Imports: stdlib, ``policies``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from policies.builtin import REGISTRY
from policies.model import Candidate, RequestFeatures
from policies.specialist import Classifier, build_classifier, classify

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO.parent / "shared" / "data" / "quality"
OWN_DATA = Path(__file__).resolve().parent / "data"
SEED = "specialist-eval-1"
LABELS = ("code", "math", "general")
MATH_SUBJECTS = frozenset(
    {
        "abstract_algebra",
        "college_mathematics",
        "elementary_mathematics",
        "high_school_mathematics",
        "high_school_statistics",
    }
)
EXCLUDED_SUBJECTS = frozenset(
    {
        "college_computer_science",
        "high_school_computer_science",
        "machine_learning",
        "computer_security",
    }
)


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled prompt and where it came from."""

    text: str
    label: str
    source: str


@dataclass(frozen=True, slots=True)
class Scores:
    """Precision, recall and F1 of one topic, and its number of examples."""

    precision: float
    recall: float
    f1: float
    n: int


def labelled_set(data_dir: Path = DATA_DIR) -> list[Example]:
    """Every labelled prompt (see the module docstring for the sources and labels)."""
    examples: list[Example] = []
    with (data_dir / "routellm_gsm8k_responses.csv").open(encoding="utf-8", newline="") as f:
        examples += [Example(row["prompt"], "math", "gsm8k") for row in csv.DictReader(f)]
    mmlu = data_dir / "routellm_mmlu_correctness.csv.gz"
    with gzip.open(mmlu, "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            subject = row["subject"]
            if subject not in EXCLUDED_SUBJECTS:
                label = "math" if subject in MATH_SUBJECTS else "general"
                examples.append(Example(row["prompt"], label, f"mmlu:{subject}"))
    examples += _jsonl(OWN_DATA / "code_prompts.jsonl", "code")
    examples += _jsonl(OWN_DATA / "general_prompts.jsonl", "general")
    return examples


def _jsonl(path: Path, label: str) -> list[Example]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [Example(row["prompt"], label, f"{path.stem}:{row['kind']}") for row in rows]


def part(examples: Iterable[Example], name: str) -> list[Example]:
    """The ``dev`` or ``held_out`` part (a fixed split by hash, about half each)."""
    odd = name == "held_out"
    return [e for e in examples if (_digest(e.text) & 1 == 1) is odd]


def _digest(text: str) -> int:
    return hashlib.sha256(f"{SEED}:{text}".encode()).digest()[0]


def confusion(examples: Sequence[Example], classifier: Classifier) -> dict[tuple[str, str], int]:
    """Counts of (true label, predicted topic)."""
    counts = {(t, p): 0 for t in LABELS for p in LABELS}
    for example in examples:
        counts[(example.label, classify(example.text, classifier).topic)] += 1
    return counts


def scores(counts: dict[tuple[str, str], int]) -> dict[str, Scores]:
    """Per-topic precision, recall and F1 from a confusion matrix."""
    result = {}
    for topic in LABELS:
        hit = counts[(topic, topic)]
        predicted = sum(counts[(t, topic)] for t in LABELS)
        actual = sum(counts[(topic, p)] for p in LABELS)
        precision = hit / predicted if predicted else 0.0
        recall = hit / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if hit else 0.0
        result[topic] = Scores(precision, recall, f1, actual)
    return result


def classify_cost_us(examples: Sequence[Example], classifier: Classifier) -> float:
    """Mean microseconds to classify one of ``examples``."""
    started = time.perf_counter()
    for example in examples:
        classify(example.text, classifier)
    return (time.perf_counter() - started) / len(examples) * 1e6


def decide_cost_us(rounds: int = 20000) -> float:
    """Mean microseconds of one spillover decision among three candidates (the gateway's
    per-request policy call, without the candidate snapshots it builds first)."""
    policy = REGISTRY["spillover"]({"slo_ttft_s": 1.0})
    features = RequestFeatures(alias="auto", prompt_tokens=300, expected_output_tokens=200)
    candidates = [
        Candidate("qwen-a", local=True, predicted_ttft_s=0.4, tpot_s=0.02),
        Candidate("qwen-b", local=True, predicted_ttft_s=1.4, tpot_s=0.02),
        Candidate("paid", local=False, input_usd_per_token=1e-6, output_usd_per_token=4e-6),
    ]
    started = time.perf_counter()
    for _ in range(rounds):
        policy.decide(features, candidates)
    return (time.perf_counter() - started) / rounds * 1e6


def report(examples: Sequence[Example], classifier: Classifier) -> str:
    """The printed report for ``examples``: scores, confusion matrix, cost."""
    counts = confusion(examples, classifier)
    lines = [f"{'topic':<8} {'n':>6} {'precision':>9} {'recall':>7} {'F1':>6}"]
    for topic, s in scores(counts).items():
        lines.append(f"{topic:<8} {s.n:>6} {s.precision:>9.3f} {s.recall:>7.3f} {s.f1:>6.3f}")
    lines += ["", "confusion (rows: true, columns: predicted)"]
    lines.append(f"{'':<8}" + "".join(f"{p:>9}" for p in LABELS))
    for t in LABELS:
        lines.append(f"{t:<8}" + "".join(f"{counts[(t, p)]:>9}" for p in LABELS))
    classify_us, decide_us = classify_cost_us(examples, classifier), decide_cost_us()
    mean_chars = sum(min(len(e.text), classifier.max_chars) for e in examples) / len(examples)
    lines += [
        "",
        f"classify: {classify_us:.1f} us per prompt (mean {mean_chars:.0f} chars scanned); "
        f"spillover decide: {decide_us:.1f} us; ratio {classify_us / decide_us:.1f}x",
    ]
    return "\n".join(lines)


def main() -> None:
    """Print the report for one part of the labelled set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--part", choices=("dev", "held_out"), default="held_out")
    args = parser.parse_args()
    examples = part(labelled_set(args.data_dir), args.part)
    print(f"part: {args.part}, {len(examples)} prompts")
    print(report(examples, build_classifier()))


if __name__ == "__main__":
    main()
