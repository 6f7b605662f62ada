"""The generated Grafana dashboards: up to date, well formed, and querying only what exists.

The queries are parsed with a few regular expressions (selectors, function calls, windows), not
a PromQL parser; ``promtool`` parses them for real when it is installed. That every query
returns data from a live gateway is ``tests/e2e/test_monitoring.py``'s job.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Counter, Gauge, Histogram

from gateway import metrics
from monitoring.dashboards import boards, build, panels

REPO_ROOT = Path(__file__).resolve().parents[3]
BOARDS = build.dashboards()
FILES = {"overview.json": "tg-overview", "fleet.json": "tg-fleet", "budgets.json": "tg-budgets"}
VARIABLE_LABELS = ("model", "deployment", "team")

# Every series the dashboards may query and its labels: the gateway's (gateway/metrics.py),
# vLLM's as the qwen-workers scrape job stores them, and Prometheus' own ``up``.
VLLM = {"model_name", "engine", "deployment"}
METRICS: dict[str, set[str]] = {
    "gateway_requests_total": {"route", "model", "deployment", "status"},
    "gateway_client_disconnects_total": {"route"},
    "gateway_upstream_inflight": {"deployment"},
    "gateway_upstream_errors_total": {"deployment", "kind"},
    "gateway_tokens_total": {"model", "deployment", "provider", "direction"},
    "gateway_route_decisions_total": {"policy", "deployment", "reason"},
    "gateway_deployment_circuit_open": {"deployment"},
    "gateway_deployment_ttft_seconds": {"deployment"},
    "gateway_alias_healthy_deployments": {"model"},
    "gateway_worker_scrape_failures_total": {"deployment"},
    "gateway_spend_usd_total": {"model", "deployment", "provider", "team"},
    "gateway_savings_usd_total": {"source", "model", "team"},
    "gateway_shadow_cost_usd_total": {"deployment"},
    "gateway_budget_remaining_usd": {"team"},
    "gateway_budget_used_ratio": {"team"},
    "gateway_accounting_refusals_total": {"team", "reason"},
    "gateway_accounting_store_errors_total": {"operation"},
    "gateway_ledger_backlog": set(),
    "gateway_ledger_dropped_total": set(),
    "gateway_ledger_duplicates_total": set(),
    "gateway_cache_requests_total": {"model", "result"},
    "gateway_cache_writes_total": {"outcome"},
    "gateway_cache_errors_total": {"operation"},
    "gateway_cache_corrupt_entries_total": set(),
    "gateway_privacy_decisions_total": {"reason"},
    "gateway_privacy_upgrades_total": {"detector"},
    "gateway_specialist_routes_total": {"model", "topic"},
    "gateway_deployment_state": {"deployment", "state"},
    "gateway_control_changes_total": {"action"},
    "gateway_control_store_errors_total": set(),
    "gateway_config_reloads_total": {"result"},
    "gateway_config_last_reload_success_timestamp_seconds": set(),
    "gateway_discovery_members": {"group"},
    "gateway_discovery_errors_total": {"group"},
    "gateway_discovery_changes_total": {"group", "change"},
    "vllm:num_requests_running": VLLM,
    "vllm:num_requests_waiting": VLLM,
    "vllm:kv_cache_usage_perc": VLLM,
    "vllm:prompt_tokens_total": VLLM,
    "vllm:generation_tokens_total": VLLM,
    "vllm:request_success_total": VLLM | {"finished_reason"},
    "up": {"job", "instance", "deployment"},
}
HISTOGRAMS: dict[str, set[str]] = {
    "gateway_request_duration_seconds": {"route", "model"},
    "gateway_time_to_first_token_seconds": {"model", "deployment"},
    "gateway_upstream_duration_seconds": {"deployment", "provider", "outcome"},
    "gateway_cache_lookup_seconds": {"result"},
    "vllm:time_to_first_token_seconds": VLLM,
    "vllm:time_per_output_token_seconds": VLLM,
    "vllm:e2e_request_latency_seconds": VLLM,
}
for _name, _labels in HISTOGRAMS.items():
    METRICS[f"{_name}_bucket"] = _labels | {"le"}
    METRICS[f"{_name}_sum"] = METRICS[f"{_name}_count"] = _labels
RECORDING_RULES: dict[str, set[str]] = {
    "gateway:requests:rate5m": {"model", "deployment", "status"},
    "gateway:errors:ratio_rate5m": {"model"},
    "gateway:ttft_seconds:p95_5m": {"model"},
    "gateway:spend_usd_per_hour:rate1h": {"team", "model", "deployment"},
    "gateway:local_share:ratio_rate5m": set(),
    "gateway:cache_hit:ratio_rate5m": {"model"},
}
FUNCTIONS = {
    *("sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile"),
    *("rate", "irate", "increase", "histogram_quantile", "vector", "scalar"),
    *("clamp_min", "clamp_max", "label_replace", "max_over_time", "avg_over_time"),
}
KEYWORDS = {"and", "or", "unless", "bool"}
UNITS = {"reqps", "ops", "s", "short", "none", "percentunit", "currencyUSD", "dateTimeFromNow"}
WINDOWS = {"$__rate_interval", "5m", "1h", "1d"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\()?")


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in board["panels"] if panel["type"] != "row"]


def _exprs() -> list[str]:
    return [expr for _, _, expr in build.panel_queries()]


def _names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, function names) in ``expr``."""
    bare = _GROUPING.sub("", re.sub(r"\[[^\]]*\]", "", re.sub(r"\{[^}]*\}", "", expr)))
    found = _IDENTIFIER.findall(_STRING.sub('""', bare))
    functions = {name for name, call in found if call}
    return {name for name, call in found if not call} - KEYWORDS, functions


def test_names_finds_metrics_and_functions_in_an_expression() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, model) (rate(a_bucket{model=~"$model"}'
        "[$__rate_interval]))) / ignoring(x) b_total * 1e3 or on() vector(0) and vllm:c"
    )
    assert _names(expr) == (
        {"a_bucket", "b_total", "vllm:c"},
        {"histogram_quantile", "sum"}
        | {
            "rate",
            "vector",
        },
    )


# -- generated, and up to date -----------------------------------------------------------------


def test_check_passes_on_the_committed_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--check"]) == 0, capsys.readouterr().err


def test_check_fails_and_names_the_file_that_drifted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build.main(["--dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
    assert build.main(["--check", "--dir", str(tmp_path)]) == 0
    fleet = tmp_path / "fleet.json"
    fleet.write_text(fleet.read_text().replace('"30s"', '"5s"'))
    capsys.readouterr()

    assert build.main(["--check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "fleet.json" in err
    assert "overview.json" not in err and "budgets.json" not in err


def test_check_fails_when_a_file_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build.main(["--dir", str(tmp_path)])
    (tmp_path / "budgets.json").unlink()
    assert build.main(["--check", "--dir", str(tmp_path)]) == 1
    assert "budgets.json" in capsys.readouterr().err


def test_the_module_runs_with_python_dash_m() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "monitoring.dashboards.build", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_committed_files_are_the_dashboards() -> None:
    assert set(BOARDS) == set(FILES)
    for name, uid in FILES.items():
        committed = json.loads((build.HERE / name).read_text())
        assert committed == BOARDS[name]
        assert committed["uid"] == uid


# -- dashboards --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_a_dashboard_says_it_is_generated_and_has_the_fixed_settings(name: str) -> None:
    board = BOARDS[name]
    assert next(iter(board)) == "__generated__"
    assert "monitoring/dashboards/build.py" in board["__generated__"]
    assert "monitoring/dashboards/build.py" in board["description"]
    assert board["uid"] == FILES[name]
    assert board["schemaVersion"] == 39
    assert board["tags"] == ["token-gateway"]
    assert board["refresh"] == "30s"
    assert board["time"] == {"from": "now-1h", "to": "now"}


@pytest.mark.parametrize("name", FILES)
def test_a_dashboard_has_the_template_variables(name: str) -> None:
    variables = {v["name"]: v for v in BOARDS[name]["templating"]["list"]}
    assert set(variables) == {"datasource", "model", "deployment", "team"}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    sources = {"model": "gateway_requests_total", "deployment": "gateway_requests_total"}
    sources["team"] = "gateway_spend_usd_total"
    for label, metric in sources.items():
        variable = variables[label]
        query = f"label_values({metric}, {label})"
        assert variable["type"] == "query"
        assert variable["definition"] == query
        assert variable["query"]["query"] == query
        assert variable["datasource"] == panels.DATASOURCE
        assert variable["multi"] is True and variable["includeAll"] is True
        assert variable["allValue"] == ".*"


@pytest.mark.parametrize("name", FILES)
def test_every_panel_has_a_unit_the_datasource_variable_and_a_query(name: str) -> None:
    for panel in _panels(BOARDS[name]):
        unit = panel["fieldConfig"]["defaults"]["unit"]
        assert unit in UNITS or unit.startswith("count:"), (panel["title"], unit)
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"] == panel["datasource"]
            assert target["legendFormat"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]


@pytest.mark.parametrize("name", FILES)
def test_panel_ids_are_unique_within_a_dashboard(name: str) -> None:
    ids = [panel["id"] for panel in BOARDS[name]["panels"]]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("name", FILES)
def test_panels_fit_the_grid_without_overlapping(name: str) -> None:
    boxes = [panel["gridPos"] for panel in BOARDS[name]["panels"]]
    for box in boxes:
        assert box["x"] >= 0 and box["y"] >= 0 and box["w"] > 0 and box["h"] > 0
        assert box["x"] + box["w"] <= panels.GRID_WIDTH
    for a, b in itertools.combinations(boxes, 2):
        apart = (
            a["x"] + a["w"] <= b["x"]
            or b["x"] + b["w"] <= a["x"]
            or a["y"] + a["h"] <= b["y"]
            or b["y"] + b["h"] <= a["y"]
        )
        assert apart, (a, b)


def test_layout_wraps_at_the_grid_width_and_gives_rows_a_line_of_their_own() -> None:
    stacked = [
        panels.stat("a", "short", "up", w=12, h=4),
        panels.stat("b", "short", "up", w=8, h=6),
        panels.stat("c", "short", "up", w=8, h=4),
        panels.row("r"),
        panels.stat("d", "short", "up", w=4, h=4),
    ]
    placed = [(p["id"], p["gridPos"]) for p in panels.layout(stacked)]
    assert placed == [
        (1, {"h": 4, "w": 12, "x": 0, "y": 0}),
        (2, {"h": 6, "w": 8, "x": 12, "y": 0}),
        (3, {"h": 4, "w": 8, "x": 0, "y": 6}),
        (4, {"h": 1, "w": 24, "x": 0, "y": 10}),
        (5, {"h": 4, "w": 4, "x": 0, "y": 11}),
    ]


def test_budget_used_turns_orange_at_80_percent_and_red_when_spent() -> None:
    (gauge,) = [p for p in _panels(BOARDS["budgets.json"]) if p["title"] == "Budget used"]
    steps = gauge["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["value"], s["color"]) for s in steps] == [
        (None, "green"),
        (0.8, "orange"),
        (1, "red"),
    ]
    assert gauge["fieldConfig"]["defaults"]["max"] == 1


def test_every_note_describes_a_panel() -> None:
    titles = {panel["title"] for board in BOARDS.values() for panel in _panels(board)}
    assert set(boards.NOTES) <= titles


# -- queries -----------------------------------------------------------------------------------


def test_panel_queries_lists_every_target_of_every_panel() -> None:
    queries = build.panel_queries()
    targets = [
        (board["uid"], panel["title"], target["expr"])
        for board in BOARDS.values()
        for panel in _panels(board)
        for target in panel["targets"]
    ]
    assert queries == targets
    assert {uid for uid, _, _ in queries} == set(FILES.values())


def test_every_metric_queried_exists() -> None:
    known = set(METRICS) | set(RECORDING_RULES)
    for expr in _exprs():
        metric_names, functions = _names(expr)
        assert metric_names, expr
        assert metric_names <= known, (metric_names - known, expr)
        assert functions <= FUNCTIONS, (functions - FUNCTIONS, expr)


def test_the_gateway_metrics_listed_here_are_those_gateway_metrics_defines() -> None:
    defined: dict[str, set[str]] = {}
    for metric in vars(metrics).values():
        if isinstance(metric, Counter | Gauge | Histogram):
            (family,) = metric.describe()
            labels = set(metric._labelnames)
            if family.type == "counter":
                defined[f"{family.name}_total"] = labels
            elif family.type == "histogram":
                for suffix in ("_sum", "_count"):
                    defined[family.name + suffix] = labels
                defined[f"{family.name}_bucket"] = labels | {"le"}
            else:
                defined[family.name] = labels
    listed = {name: labels for name, labels in METRICS.items() if name.startswith("gateway_")}
    assert listed.items() <= defined.items()


def test_queries_filter_by_model_deployment_and_team_only_through_the_variables() -> None:
    for expr in _exprs():
        selectors = _SELECTOR.findall(expr)
        for metric, matchers in selectors:
            found = {label: (op, value) for label, op, value in _MATCHER.findall(matchers)}
            labels = (METRICS | RECORDING_RULES).get(metric, set())
            for label in VARIABLE_LABELS:
                if label in found:
                    assert found[label] == ("=~", f"${label}"), (label, expr)
                else:  # every variable that can filter the metric does
                    assert label not in labels, (label, expr)
        for metric in _names(expr)[0]:  # and a metric without braces has nothing to filter
            uses = re.findall(rf"(?<![\w:]){re.escape(metric)}(?![\w:])", expr)
            if len(uses) > sum(name == metric for name, _ in selectors):
                assert not (METRICS | RECORDING_RULES)[metric] & set(VARIABLE_LABELS), expr


def test_queries_use_only_the_rate_interval_and_fixed_windows() -> None:
    for expr in _exprs():
        assert set(re.findall(r"\[([^\]]+)\]", expr)) <= WINDOWS, expr
        assert not re.search(r"\b(offset|absent|absent_over_time)\b", expr), expr
        variables = set(re.findall(r"\$\{?(\w+)", _STRING.sub("", expr)))
        assert variables <= {"__rate_interval"}, expr
        quoted = set(re.findall(r"\$\{?(\w+)", " ".join(_STRING.findall(expr))))
        assert quoted <= set(VARIABLE_LABELS), expr


def test_rate_and_increase_apply_to_counters_and_bucket_series_only() -> None:
    for expr in _exprs():
        for metric in re.findall(r"\b(?:rate|increase)\(([a-zA-Z_:][\w:]*)", expr):
            assert metric.endswith(("_total", "_bucket")), expr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_parses_every_query(tmp_path: Path) -> None:
    values = {"__rate_interval": "1m", "model": ".*", "deployment": ".*", "team": ".*"}
    rules = []
    for n, expr in enumerate(_exprs()):
        concrete = re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], expr)
        rules.append({"record": f"dashboard:query_{n}", "expr": concrete})
    path = tmp_path / "queries.rules.json"  # promtool reads YAML, and JSON is YAML
    path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run(
        ["promtool", "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
