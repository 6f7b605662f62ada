"""The decision microbenchmark runs end to end (smoke: one call per policy, not timed)."""

from __future__ import annotations

import pytest

from loadtests.bench.__main__ import main
from loadtests.bench.decision import GATEWAY_CPU_US_PER_REQUEST, fleet, measure, report
from policies.compose import known_policies


def test_the_benchmark_fleet_has_ten_candidates_and_spills_part_of_it() -> None:
    _features, candidates = fleet()
    assert len(candidates) == 10
    assert {c.local for c in candidates} == {True, False}


def test_the_decision_benchmark_times_every_built_in_policy() -> None:
    timings = measure(number=1, repeat=1)
    labels = [t.label for t in timings]
    assert set(known_policies()) <= set(labels)
    assert all(t.us_per_decision > 0 for t in timings)
    text = report(timings)
    assert f"{GATEWAY_CPU_US_PER_REQUEST:g} us" in text
    assert all(label in text for label in labels)


def test_the_decision_subcommand_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decision", "--number", "1", "--repeat", "1"]) == 0
    assert "spillover" in capsys.readouterr().out
