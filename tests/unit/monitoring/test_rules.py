"""The Prometheus rules (monitoring/rules/gateway.rules.yaml) and their promtool tests.

promtool checks the rule file and runs the unit tests in monitoring/rules/tests/. In Python:
every alert carries what on-call needs (a severity, a summary, a description and a runbook
section that exists in docs/runbooks.md); every alert has a promtool case where it fires and
one where it stays quiet; every alert expression follows the convention the live monitoring
test relies on (parenthesised comparisons joined by and/or/unless, no offset, no absent);
every metric a rule reads is defined in gateway/metrics.py, or is vLLM's or Prometheus's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from gateway import metrics
from tests.support.promql import NotTheConvention, comparisons

REPO_ROOT = Path(__file__).resolve().parents[3]
RULES = REPO_ROOT / "monitoring" / "rules" / "gateway.rules.yaml"
RULE_TESTS = sorted((REPO_ROOT / "monitoring" / "rules" / "tests").glob("*.yaml"))
RUNBOOKS = REPO_ROOT / "docs" / "runbooks.md"
SEVERITIES = {"page", "ticket"}
# Read from the owned workers (job qwen-workers) and from Prometheus itself.
OTHER_METRICS = {
    "up",
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:time_to_first_token_seconds_bucket",
    "vllm:time_to_first_token_seconds_count",
}

_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset"}


def _groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _groups() for rule in group["rules"]]


ALERTS = {rule["alert"]: rule for rule in _rules() if "alert" in rule}
RECORDED = {rule["record"] for rule in _rules() if "record" in rule}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail(
            "promtool is not installed: `make test` installs it (Debian package prometheus)",
            pytrace=False,
        )
    return subprocess.run(
        ["promtool", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )


def _metric_names(expr: str) -> set[str]:
    """Series names an expression reads: its identifiers that are not calls, keywords, label
    names (in selectors and by/on clauses), durations or strings."""
    text = re.sub(r'"[^"]*"', '""', expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    return {
        name
        for name, call in re.findall(r"(?<![\w:.])([a-zA-Z_:][\w:]*)\s*(\()?", text)
        if not call and name not in _KEYWORDS
    }


def _defined_metrics() -> set[str]:
    defined: set[str] = set()
    for metric in vars(metrics).values():
        if isinstance(metric, Counter | Gauge | Histogram):
            (family,) = metric.describe()
            if family.type == "counter":
                defined.add(f"{family.name}_total")
            elif family.type == "histogram":
                defined |= {f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
            else:
                defined.add(family.name)
    return defined


def _anchors() -> set[str]:
    """GitHub's anchors for the headings of docs/runbooks.md (code blocks skipped)."""
    anchors, fenced = set(), False
    for line in RUNBOOKS.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"#{1,6}\s+(.+?)\s*#*$", line)):
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def _alert_cases() -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Every alert_rule_test case of every promtool test file: (file, alertname, exp_alerts)."""
    cases = []
    for path in RULE_TESTS:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test") or []:
                cases.append((path.name, case["alertname"], case.get("exp_alerts") or []))
    return cases


def test_promtool_accepts_the_rule_file() -> None:
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in done.stdout


def test_there_are_promtool_test_files() -> None:
    assert RULE_TESTS, "no promtool test files in monitoring/rules/tests/"


@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda path: path.name)
def test_promtool_unit_tests_pass(path: Path) -> None:
    done = _promtool("test", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rule_file_has_the_recording_rules_the_dashboards_use() -> None:
    expected = {
        "gateway:requests:rate5m",
        "gateway:errors:ratio_rate5m",
        "gateway:errors:ratio_rate1h",
        "gateway:ttft_seconds:p95_5m",
        *(f"gateway:ttft_slo_misses:ratio_rate{w}" for w in ("5m", "30m", "1h", "6h")),
        "gateway:spend_usd_per_hour:rate1h",
        "gateway:spend_usd_per_hour:rate1d",
        "gateway:local_share:ratio_rate5m",
        "gateway:cache_hit:ratio_rate5m",
        "gateway:cache_hit:ratio_rate1d",
    }
    assert expected <= RECORDED, expected - RECORDED


def test_groups_inherit_the_global_evaluation_interval() -> None:
    for group in _groups():
        assert "interval" not in group, group["name"]


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_an_alert_has_a_severity_a_summary_a_description_and_its_runbook(name: str) -> None:
    alert = ALERTS[name]
    assert alert["labels"]["severity"] in SEVERITIES
    annotations = alert["annotations"]
    assert annotations["summary"].strip()
    assert "{{" in annotations["description"], "the description should say which and how much"
    anchor = name.lower()
    assert annotations["runbook_url"] == f"docs/runbooks.md#{anchor}"
    assert anchor in _anchors(), f"docs/runbooks.md has no heading '{name}'"


def test_the_runbooks_have_a_section_for_each_alert_and_no_other() -> None:
    sections = set(re.findall(r"^## (\w+)$", RUNBOOKS.read_text(), flags=re.MULTILINE))
    assert sections == set(ALERTS)


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_an_alert_is_comparisons_whose_signals_return_data_while_metrics_exist(
    name: str,
) -> None:
    expr = ALERTS[name]["expr"]
    assert not re.search(r"\b(?:offset|absent|absent_over_time)\b", expr), expr
    for signal, threshold in comparisons(expr):
        assert signal and threshold, expr


def test_the_convention_check_rejects_what_the_live_test_cannot_evaluate() -> None:
    assert comparisons('(a{le=~"1(\\\\.0)?"} > 0.1) and on(model) (b < 2 * c)') == [
        ('a{le=~"1(\\\\.0)?"}', "0.1"),
        ("b", "2 * c"),
    ]
    for bad in ("a > 1", "(a > 1) and b > 2", "(a)", "(a > 1 > 2)", "(a > 1) + (b > 2)"):
        with pytest.raises(NotTheConvention):
            comparisons(bad)


def test_every_metric_a_rule_reads_exists() -> None:
    known = _defined_metrics() | OTHER_METRICS | RECORDED
    for rule in _rules():
        names = _metric_names(rule["expr"])
        assert names, rule["expr"]
        assert names <= known, (names - known, rule["expr"])


def test_metric_names_finds_series_and_skips_functions_labels_and_numbers() -> None:
    expr = (
        'sum by (model) (rate(gateway_requests_total{status=~"5.."}[5m])) '
        "/ (x:y:z > 0.5 * up) and on(model) vllm:num_requests_waiting"
    )
    assert _metric_names(expr) == {
        "gateway_requests_total",
        "x:y:z",
        "up",
        "vllm:num_requests_waiting",
    }


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_an_alert_has_a_promtool_case_where_it_fires_and_one_where_it_stays_quiet(
    name: str,
) -> None:
    cases = [expected for _, alertname, expected in _alert_cases() if alertname == name]
    firing = [expected for expected in cases if expected]
    assert firing, f"no promtool case fires {name}"
    assert any(not expected for expected in cases), f"no promtool case keeps {name} quiet"
    for expected in firing:
        for alert in expected:
            assert alert["exp_labels"]["severity"] == ALERTS[name]["labels"]["severity"]
            assert alert["exp_annotations"]["summary"]


def test_every_promtool_case_names_an_alert_that_exists() -> None:
    for file, alertname, _ in _alert_cases():
        assert alertname in ALERTS, f"{file}: no alert {alertname}"
