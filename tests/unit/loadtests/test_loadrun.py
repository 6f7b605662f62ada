"""The load-test runner's pure parts (loadtests/loadrun): the scenario file, Locust's output
files, the gateway's counters, the SLO verdict and the capacity steps."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from loadtests.fleet import REPO_ROOT
from loadtests.loadrun.capacity import Capacity, Sample, measure_steps, saturation
from loadtests.loadrun.counters import GatewayCounters, WorkerCounters, histogram_quantile
from loadtests.loadrun.locust_process import ResultFiles, locust_command
from loadtests.loadrun.locust_stats import (
    Entry,
    HistoryRow,
    StatsError,
    percentile,
    read_entries,
    read_history,
)
from loadtests.loadrun.probe import parse_proc_stat
from loadtests.loadrun.report import capacity_verdict, render_summary, render_verdict
from loadtests.loadrun.scenario import (
    DemoTarget,
    ScenarioError,
    Thresholds,
    UrlTarget,
    load_scenario,
    parse_scenario,
)
from loadtests.loadrun.target import TeamKeys
from loadtests.loadrun.verdict import Measured, Miss, check, summarize
from loadtests.run import locust_env
from loadtests.shapes.schedule import StepPlan

SCENARIOS = REPO_ROOT / "loadtests" / "scenarios"


# -- the scenario file --------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A repository root holding the locustfiles the scenarios below name."""
    (tmp_path / "lf").mkdir()
    (tmp_path / "lf" / "chat.py").write_text("# a user class\n")
    (tmp_path / "lf" / "steady.py").write_text("# a shape\n")
    return tmp_path


def _raw(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "unit",
        "locustfiles": ["lf/chat.py", "lf/steady.py"],
        "env": {"TG_USERS": 4, "TG_STREAM_SHARE": 0.5},
        "run_time_s": 30,
        "target": "demo",
        "thresholds": {"max_error_ratio": 0.01, "max_ttft_p95_ms": 800},
    }
    raw.update(changes)
    return raw


def test_a_valid_scenario_becomes_a_frozen_scenario_with_string_settings(root: Path) -> None:
    scenario = parse_scenario(
        _raw(
            target={"demo": {"time_scale": 0.5, "max_num_seqs": 16}},
            teams={"search": {"budget_usd": {"day": 1}}, "research": {"rpm": 5}},
            budget_team="research",
            user_classes=["ChatUser"],
        ),
        root,
    )
    assert scenario.locustfiles == ("lf/chat.py", "lf/steady.py")
    assert scenario.user_classes == ("ChatUser",)
    assert scenario.env == {"TG_USERS": "4", "TG_STREAM_SHARE": "0.5"}
    assert scenario.target == DemoTarget(time_scale=0.5, max_num_seqs=16)
    assert scenario.teams["search"] == {"budget_usd": {"day": 1}}
    assert scenario.thresholds == Thresholds(max_error_ratio=0.01, max_ttft_p95_ms=800.0)
    assert not scenario.capacity


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"thresholdz": {}}, "thresholdz: unknown field"),
        ({"thresholds": {"max_ttft_p99_ms": 5}}, "thresholds.max_ttft_p99_ms: unknown field"),
        ({"target": {"demo": {"timescale": 1}}}, "target.demo.timescale: unknown field"),
        ({"thresholds": {"max_error_ratio": 2}}, "thresholds.max_error_ratio: a ratio"),
        ({"thresholds": {"min_rps": "10"}}, "thresholds.min_rps: must be a number"),
        ({"locustfiles": []}, "locustfiles: at least one file"),
        ({"locustfiles": ["lf/missing.py"]}, "locustfiles[0]: no Python file"),
        ({"locustfiles": ["/etc/passwd"]}, "locustfiles[0]: a path relative"),
        ({"locustfiles": ["../lf/chat.py"]}, "locustfiles[0]: a path relative"),
        ({"user_classes": ["Chat User"]}, "user_classes[0]: 'Chat User' is not a class name"),
        ({"env": {"users": 3}}, "env.users: settings are TG_* names"),
        ({"env": {"TG_TEAM_KEYS": "{}"}}, "env.TG_TEAM_KEYS: set by the runner"),
        ({"env": {"TG_SEED": True}}, "env.TG_SEED: must be a string or a number"),
        ({"run_time_s": 0}, "run_time_s: must be a positive"),
        ({"run_time_s": 7200}, "run_time_s: at most"),
        ({"budget_team": "nobody"}, "budget_team: 'nobody' is not one of the scenario's teams"),
        ({"teams": {"t": {"team_id": "u"}}}, "teams.t.team_id: the team id is the mapping's key"),
        ({"capacity": "yes"}, "capacity: must be true or false"),
        ({"target": "prod"}, "target: must be a mapping"),
        (
            {"target": {"url": "http://10.0.0.7:8080"}},
            "target.url: load tests run against loopback",
        ),
        ({"target": {"url": "http://example.com:80"}}, "loopback only"),
        ({"target": {"url": "https://127.0.0.1:8443"}}, "target.url: must be http://"),
        ({"target": {"url": "http://127.0.0.1"}}, "target.url: needs an explicit port"),
        ({"target": {"url": "http://127.0.0.1:8080/v1"}}, "without a path"),
        ({"target": {"url": "http://u:p@127.0.0.1:8080"}}, "without a path"),
        ({"target": {"demo": {}, "url": "http://127.0.0.1:1"}}, "target: must be 'demo'"),
    ],
)
def test_a_bad_scenario_is_refused_naming_the_field(
    root: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("*", r"\*")):
        parse_scenario(_raw(**changes), root)


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://localhost:9000", "http://localhost:9000"),
        ("http://127.0.0.2:9000", "http://127.0.0.2:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_a_running_gateway_on_loopback_is_a_url_target(root: Path, url: str, kept: str) -> None:
    assert parse_scenario(_raw(target={"url": url}), root).target == UrlTarget(kept)


def test_a_missing_or_broken_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nope.yaml", tmp_path)
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(tmp_path / "bad.yaml", tmp_path)


def test_the_step_plan_is_what_the_step_shape_reads_scenario_over_environment(
    root: Path,
) -> None:
    env = {"TG_STEP_USERS": 8, "TG_STEPS": 3}
    scenario = parse_scenario(_raw(env=env, run_time_s=100), root)
    plan = scenario.step_plan({"TG_STEP_S": "30", "TG_STEPS": "9", "HOME": "/root"})
    assert (plan.step_users, plan.step_s, plan.steps) == (8, 30.0, 3)
    assert scenario.step_plan({}).step_s == 20.0  # the shape's default


@pytest.mark.parametrize(
    ("env", "run_time_s", "message"),
    [
        ({"TG_STEP_S": 5}, 100, "env.TG_STEP_S: a capacity step must last at least 10 s"),
        ({"TG_STEP_S": 20, "TG_STEPS": 5}, 60, "run_time_s: 60 s ends before the last step"),
        ({"TG_STEPS": "many"}, 100, "env.TG_STEPS: want an integer"),
    ],
)
def test_a_step_plan_the_capacity_report_cannot_split_is_refused(
    root: Path, env: dict[str, Any], run_time_s: float, message: str
) -> None:
    scenario = parse_scenario(_raw(env=env, run_time_s=run_time_s), root)
    with pytest.raises(ScenarioError, match=message):
        scenario.step_plan({})


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_scenario_is_valid(path: Path) -> None:
    scenario = load_scenario(path, REPO_ROOT)
    if scenario.capacity:
        scenario.step_plan({})


def test_the_shipped_scenarios_are_the_ones_the_docs_and_make_name() -> None:
    names = {p.stem for p in SCENARIOS.glob("*.yaml")}
    assert {"default", "capacity", "smoke", "impossible"} <= names
    assert load_scenario(SCENARIOS / "capacity.yaml", REPO_ROOT).capacity
    assert load_scenario(SCENARIOS / "smoke.yaml", REPO_ROOT).run_time_s <= 20


# -- Locust's output files ----------------------------------------------------------------


def _entry_json(
    method: str, name: str, times: dict[int, int], *, failures: int = 0, second: int = 1000
) -> dict[str, Any]:
    count = sum(times.values())
    return {
        "name": name,
        "method": method,
        "last_request_timestamp": second + 9.5,
        "start_time": second + 0.25,
        "num_requests": count,
        "num_none_requests": 0,
        "num_failures": failures,
        "total_response_time": sum(k * v for k, v in times.items()),
        "max_response_time": max(times),
        "min_response_time": min(times),
        "total_content_length": 0,
        "response_times": {str(k): v for k, v in times.items()},
        "num_reqs_per_sec": {str(second): count},
        "num_fail_per_sec": {str(second): failures} if failures else {},
    }


RUN = [
    _entry_json("POST", "chat stream [qwen]", {900: 8, 1500: 2}),
    _entry_json("POST", "chat [gpt-4o-mini]", {400: 9, 5000: 1}, failures=1),
    _entry_json("POST", "chat [budget refused]", {3: 5}),
    _entry_json("LLM", "TTFT [qwen]", {40: 9, 60: 1}),
    _entry_json("LLM", "TTFT [gpt-4o-mini]", {600: 4, 900: 1}),
    _entry_json("LLM", "tokens/s [qwen]", {80: 6, 120: 4}),
    _entry_json("LLM", "output tokens [qwen]", {200: 10}),
]


@pytest.fixture
def entries(tmp_path: Path) -> list[Entry]:
    path = tmp_path / "locust.json"
    path.write_text(json.dumps(RUN))
    return read_entries(path)


def test_entries_are_read_from_locusts_json_with_their_kind_and_alias(
    entries: list[Entry],
) -> None:
    stream, paid, refused, ttft = entries[0], entries[1], entries[2], entries[3]
    assert (stream.type, stream.kind, stream.label, stream.is_event) == (
        "POST",
        "chat stream",
        "qwen",
        False,
    )
    assert paid.failures == 1 and paid.failures_per_second == {1000: 1}
    assert refused.label == "budget refused" and refused.requests == 5
    assert (ttft.kind, ttft.label, ttft.is_event) == ("TTFT", "qwen", True)
    assert ttft.response_times == {40: 9, 60: 1}
    assert stream.per_second == {1000: 10}


def test_a_missing_or_foreign_stats_file_is_a_stats_error(tmp_path: Path) -> None:
    with pytest.raises(StatsError, match="cannot read"):
        read_entries(tmp_path / "locust.json")
    (tmp_path / "other.json").write_text('{"stats": []}')
    with pytest.raises(StatsError, match="expected a list"):
        read_entries(tmp_path / "other.json")
    (tmp_path / "odd.json").write_text('[{"name": "x"}]')
    with pytest.raises(StatsError, match="not a Locust stats entry"):
        read_entries(tmp_path / "odd.json")


@pytest.mark.parametrize(
    ("histogram", "fraction", "expected"),
    [
        ({10: 51, 20: 49}, 0.5, 10.0),
        ({10: 50, 20: 50}, 0.5, 20.0),
        ({10: 50, 20: 45, 30: 5}, 0.9, 20.0),
        ({10: 50, 20: 45, 30: 5}, 0.95, 30.0),
        ({10: 1}, 0.99, 10.0),
        ({}, 0.5, None),
    ],
)
def test_percentiles_are_computed_as_locust_computes_them(
    histogram: dict[int, int], fraction: float, expected: float | None
) -> None:
    assert percentile(histogram, fraction) == expected


HISTORY_COLUMNS = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,"
    "Total Request Count,Total Failure Count,Total Median Response Time,"
    "Total Average Response Time,Total Min Response Time,Total Max Response Time,"
    "Total Average Content Size"
)
HISTORY_CSV = f"""\
{HISTORY_COLUMNS}
1000,0,,Aggregated,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0,0,0.0,0,0,0
1012,4,LLM,TTFT [qwen],2.0,0.0,40,41,42,43,50,55,60,61,61,61,61,20,0,40,41.5,30,61,0.0
1012,4,POST,chat stream [qwen],2.0,0.0,900,910,920,930,950,990,1000,1100,1100,1100,1100,\
20,0,900,901.0,800,1100,4000.0
1012,4,,Aggregated,4.0,0.0,40,900,900,900,950,990,1000,1100,1100,1100,1100,\
40,0,40,470.0,30,1100,2000.0
"""


def test_the_history_csv_gives_each_entrys_window_percentiles(tmp_path: Path) -> None:
    path = tmp_path / "locust_stats_history.csv"
    path.write_text(HISTORY_CSV)
    rows = read_history(path)
    assert [r.at for r in rows] == [1000, 1012, 1012, 1012]
    start, ttft, stream, total = rows
    assert start.percentiles["95%"] is None and not start.is_http
    assert ttft.is_event and ttft.kind == "TTFT" and ttft.percentiles["95%"] == 55.0
    assert stream.is_http and stream.percentiles["99%"] == 1100.0 and stream.users == 4
    assert not total.is_http and total.total_requests == 40


# -- the gateway's counters ---------------------------------------------------------------

EXPOSITION = """\
# TYPE gateway_requests_total counter
gateway_requests_total{route="chat",model="qwen",deployment="qwen-a",status="200"} 30.0
gateway_requests_total{route="chat",model="gpt",deployment="gpt",status="429"} 5.0
# TYPE gateway_tokens_total counter
gateway_tokens_total{model="qwen",deployment="qwen-a",provider="local",direction="input"} 600.0
gateway_tokens_total{model="qwen",deployment="qwen-a",provider="local",direction="output"} 300.0
gateway_tokens_total{model="gpt",deployment="gpt",provider="openai",direction="input"} 50.0
gateway_tokens_total{model="gpt",deployment="gpt",provider="openai",direction="output"} 50.0
# TYPE gateway_spend_usd_total counter
gateway_spend_usd_total{model="gpt",deployment="gpt",provider="openai",team="default"} 0.25
# TYPE gateway_savings_usd_total counter
gateway_savings_usd_total{source="local",model="qwen",team="default"} 1.5
gateway_savings_usd_total{source="cache",model="qwen",team="default"} 0.5
# TYPE gateway_cache_requests_total counter
gateway_cache_requests_total{model="qwen",result="hit"} 4.0
gateway_cache_requests_total{model="qwen",result="miss"} 6.0
gateway_cache_requests_total{model="qwen",result="bypass"} 20.0
# TYPE gateway_upstream_errors_total counter
gateway_upstream_errors_total{deployment="gpt",kind="rate_limited"} 2.0
gateway_upstream_errors_total{deployment="gpt",kind="timeout"} 1.0
"""


def test_counters_are_read_from_the_gateways_exposition_and_subtracted() -> None:
    after = GatewayCounters.parse(EXPOSITION)
    assert after.requests == 35
    assert (after.input_tokens, after.output_tokens, after.local_tokens) == (650, 350, 900)
    assert after.local_share == pytest.approx(0.9)
    assert (after.spend_usd, after.savings_usd) == (0.25, 2.0)
    assert (after.cache_hits, after.cache_misses, after.rate_limited) == (4, 6, 2)
    delta = after.minus(GatewayCounters(requests=5, output_tokens=50, spend_usd=0.05))
    assert (delta.requests, delta.output_tokens) == (30, 300)
    assert delta.spend_usd == pytest.approx(0.2)
    assert GatewayCounters().local_share is None


WORKER = """\
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="Qwen/Qwen2.5-7B-Instruct",engine="0"} 3.0
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="Qwen/Qwen2.5-7B-Instruct",engine="0"} 16.0
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="Qwen"} 10.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="1.0",model_name="Qwen"} 18.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="Qwen"} 20.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="Qwen"} 20.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="Qwen"} 9.0
"""


def test_the_workers_queues_batches_and_ttft_histograms_are_summed() -> None:
    workers = WorkerCounters.parse([WORKER, WORKER])
    assert (workers.waiting, workers.running) == (6, 32)
    assert workers.ttft_buckets == {0.1: 20, 1.0: 36, float("inf"): 40}
    assert (workers.ttft_sum_s, workers.ttft_count) == (18, 40)


@pytest.mark.parametrize(
    ("q", "before", "expected"),
    [
        (0.5, {}, 0.1),  # rank 10 of 20: the top of the first bucket
        (0.25, {}, 0.05),  # rank 5: halfway into the first bucket
        (0.7, {}, 0.55),  # rank 14: half of the second bucket's 8, between 0.1 and 1.0
        (0.95, {}, 1.0),  # in +Inf: the highest finite bound
        (0.5, {0.1: 10.0, 1.0: 10.0, float("inf"): 10.0}, 0.6625),  # the 10 since: 5 of 8
        (0.5, {0.1: 10.0, 1.0: 18.0, float("inf"): 20.0}, None),  # nothing since then
    ],
)
def test_a_histogram_quantile_is_interpolated_as_prometheus_does(
    q: float, before: dict[float, float], expected: float | None
) -> None:
    buckets = WorkerCounters.parse([WORKER]).ttft_buckets
    result = histogram_quantile(q, buckets, before)
    assert result == (None if expected is None else pytest.approx(expected))


# -- the run's summary and the verdict ----------------------------------------------------


def test_the_summary_counts_http_requests_only_and_pools_every_aliass_ttft(
    entries: list[Entry],
) -> None:
    summary = summarize(entries, GatewayCounters(requests=25, output_tokens=1850))
    assert (summary.requests, summary.failures) == (25, 1)
    assert summary.duration_s == pytest.approx(9.25)
    assert summary.rps == pytest.approx(25 / 9.25)
    assert summary.error_ratio == pytest.approx(0.04)
    assert summary.latency_p50_ms == 400 and summary.latency_p95_ms == 1500
    assert summary.latency_p99_ms == 5000
    assert summary.ttft_samples == 15
    assert summary.ttft_p50_ms == 40 and summary.ttft_p95_ms == 900
    assert [(a.alias, a.samples, a.p95_ms) for a in summary.ttft_by_alias] == [
        ("gpt-4o-mini", 5, 900.0),
        ("qwen", 10, 60.0),
    ]
    assert summary.stream_tokens_per_s_p50 == 80
    assert summary.output_tokens_per_s == pytest.approx(200.0)
    text = render_summary("unit", summary)
    assert "25 requests, 1 failures (4.00%)" in text and "p95 900 ms" in text


def test_every_threshold_missed_is_named_with_measured_and_limit() -> None:
    thresholds = Thresholds(
        max_error_ratio=0.01, max_ttft_p95_ms=500, max_latency_p99_ms=2000, min_rps=10
    )
    misses = check(Measured(0.04, 900.0, 1500.0, 2.7), thresholds)
    assert [m.threshold for m in misses] == ["max_error_ratio", "max_ttft_p95_ms", "min_rps"]
    assert misses[1].describe() == "max_ttft_p95_ms: measured 900, limit 500"
    text = render_verdict(thresholds, misses)
    assert text.startswith("verdict: FAIL, 3 threshold(s) missed")
    assert "missed min_rps: measured 2.7, limit 10" in text


def test_a_run_that_meets_every_threshold_passes() -> None:
    thresholds = Thresholds(max_error_ratio=0.0, max_ttft_p95_ms=1000, min_rps=1)
    assert check(Measured(0.0, 999.0, 5000.0, 1.0), thresholds) == []
    assert render_verdict(thresholds, []).startswith("verdict: PASS (max_error_ratio 0")
    assert check(Measured(None, None, None, 0.0), Thresholds()) == []


def test_a_threshold_on_something_never_measured_is_missed() -> None:
    misses = check(Measured(None, None, 10.0, 5.0), Thresholds(max_ttft_p95_ms=0.001))
    assert misses == [Miss("max_ttft_p95_ms", None, 0.001)]
    assert misses[0].describe() == "max_ttft_p95_ms: nothing measured, limit 0.001"


def test_a_capacity_step_is_not_judged_on_its_request_rate() -> None:
    assert check(Measured(0.0, 1.0, 1.0, 0.5), Thresholds(min_rps=10), rps=False) == []


# -- the capacity steps -------------------------------------------------------------------

T0 = 10_000
PLAN = StepPlan(step_users=10, step_s=20.0, steps=3, spawn_rate=10.0)
THRESHOLDS = Thresholds(max_error_ratio=0.01, max_ttft_p95_ms=500)


def _requests(rates: list[int], failures: dict[int, int]) -> Entry:
    """An HTTP entry finishing ``rates[k]`` requests a second during step k."""
    per_second = {T0 + s: rates[s // 20] for s in range(60)}
    return Entry(
        type="POST",
        name="chat stream [qwen]",
        requests=sum(per_second.values()),
        failures=sum(failures.values()),
        response_times={900: 1},
        per_second=per_second,
        failures_per_second={T0 + s: n for s, n in failures.items()},
        started_at=T0,
        last_at=T0 + 60,
    )


def _row(at: int, users: int, name: str, p95: float, kind: str = "LLM") -> HistoryRow:
    return HistoryRow(at, users, kind, name, {"95%": p95, "99%": p95 * 1.5}, 0, 0)


def _samples(
    gateway_cores: list[float],
    waiting: list[float],
    rate_limited_after: int = 99,
    worker_ttft_s: list[float] | None = None,
) -> list[Sample]:
    """One sample a second: 100 output tokens/s per 10 users, CPU at the given core rates,
    the workers' queue as given and 10 first tokens a second, all in the bucket at or
    above ``worker_ttft_s`` of the step."""
    samples = []
    tokens = cpu = 0.0
    buckets = dict.fromkeys((0.1, 1.0, 2.5, float("inf")), 0.0)
    ttft_sum = 0.0
    for s in range(61):
        step = min(s // 20, 2)
        samples.append(
            Sample(
                at=T0 + s,
                counters=GatewayCounters(
                    output_tokens=tokens, rate_limited=float(max(0, s - rate_limited_after))
                ),
                gateway_cpu_s=cpu,
                client_cpu_s=0.2 * s,
                machine_busy_s=0.5 * s,
                machine_cores=2,
                workers=WorkerCounters(
                    waiting[step], 10.0 * (step + 1), dict(buckets), ttft_sum, 10.0 * s
                ),
            )
        )
        tokens += 100.0 * (step + 1)
        cpu += gateway_cores[step]
        ttft = (worker_ttft_s or [0.05] * 3)[step]
        ttft_sum += 10.0 * ttft
        for bound in buckets:
            buckets[bound] += 10.0 if ttft <= bound else 0.0
    return samples


def _history(ttft_p95: list[float]) -> list[HistoryRow]:
    rows = []
    for step, p95 in enumerate(ttft_p95):
        end = T0 + 20 * (step + 1)
        rows.append(_row(end - 1, 10 * (step + 1), "TTFT [qwen]", p95 / 3))
        rows.append(_row(end, 10 * (step + 1), "TTFT [qwen]", p95))
        rows.append(_row(end, 10 * (step + 1), "TTFT [gpt]", p95 / 2))
        rows.append(_row(end, 10 * (step + 1), "chat [qwen]", 400, kind="POST"))
    return rows


def _capacity(
    ttft_p95: list[float],
    *,
    failures: dict[int, int] | None = None,
    gateway_cores: list[float] | None = None,
    waiting: list[float] | None = None,
    rate_limited_after: int = 99,
    worker_ttft_s: list[float] | None = None,
) -> Capacity:
    samples = _samples(
        gateway_cores or [0.2, 0.4, 0.5], waiting or [0, 0, 0], rate_limited_after, worker_ttft_s
    )
    return measure_steps(
        PLAN, T0, [_requests([5, 10, 12], failures or {})], _history(ttft_p95), samples, THRESHOLDS
    )


def test_each_step_is_measured_over_its_last_three_quarters() -> None:
    capacity = _capacity([100, 200, 300])
    first, second, third = capacity.steps
    assert [s.users for s in capacity.steps] == [10, 20, 30]
    assert (first.rps, second.rps, third.rps) == (5.0, 10.0, 12.0)
    assert first.output_tokens_per_s == pytest.approx(100.0)
    assert third.output_tokens_per_s == pytest.approx(300.0)
    assert second.ttft_p95_ms == 200  # the worst alias at the step's last row
    assert second.latency_p99_ms == 600
    assert second.gateway_cores == pytest.approx(0.4)
    assert second.client_cores == pytest.approx(0.2)
    assert second.machine_busy == pytest.approx(0.25)
    assert second.error_ratio == 0.0 and second.seen_users == 20
    assert (second.max_waiting, second.max_running) == (0, 20)
    assert second.workers_ttft_p95_ms == pytest.approx(95.0)  # in (0, 100 ms]
    assert second.workers_ttft_mean_ms == pytest.approx(50.0)
    assert capacity.sustained is third and capacity.broke is None
    assert "the SLO held up to the last step" in capacity_verdict(capacity)


def test_the_capacity_is_the_last_step_before_the_first_that_breaks() -> None:
    capacity = _capacity([100, 900, 300], waiting=[0, 7, 0])
    assert [s.passed for s in capacity.steps] == [True, False, True]
    assert capacity.sustained is capacity.steps[0]
    assert capacity.broke is capacity.steps[1]
    assert capacity_verdict(capacity) == (
        "capacity: sustained 5.0 req/s and 100 output tokens/s at 10 users; broke at 20 users: "
        "workers' queue (up to 7 requests waiting) (max_ttft_p95_ms: measured 900, limit 500)"
    )


def test_workers_slower_than_the_slo_without_a_queue_are_where_it_broke() -> None:
    capacity = _capacity([100, 900, 300], worker_ttft_s=[0.05, 2.0, 0.05])
    assert capacity.broke is capacity.steps[1]
    assert saturation(capacity.steps[1]) == [
        "the local workers (their own TTFT p95 ~2,425 ms, mean 2,000 ms, with up to 20 "
        "requests running and none waiting)"
    ]
    fast_workers = _capacity([100, 900, 300])
    assert saturation(fast_workers.steps[1]) == []
    assert "broke at 20 users: no saturation measured (max_ttft" in capacity_verdict(fast_workers)


def test_errors_in_a_step_break_it() -> None:
    capacity = _capacity([100, 200, 300], failures={30: 5})
    second = capacity.steps[1]
    assert second.error_ratio == pytest.approx(5 / 150)
    assert [m.threshold for m in second.misses] == ["max_error_ratio"]
    assert capacity.broke is second


def test_errors_in_a_steps_unmeasured_first_quarter_do_not_count() -> None:
    assert _capacity([100, 200, 300], failures={21: 5}).broke is None


def test_when_the_first_step_breaks_no_capacity_is_sustained() -> None:
    capacity = _capacity([800, 900, 900], gateway_cores=[0.95, 1.0, 1.0])
    assert capacity.sustained is None and capacity.broke is capacity.steps[0]
    assert capacity_verdict(capacity).startswith(
        "capacity: no step met the SLO; broke at 10 users: gateway CPU (0.95 cores)"
    )


def test_saturation_names_the_gateway_cpu_the_client_the_queues_and_rate_limits() -> None:
    capacity = _capacity(
        [100, 900, 900], gateway_cores=[0.3, 0.9, 0.9], waiting=[0, 2, 3], rate_limited_after=30
    )
    where = saturation(capacity.steps[1])
    assert where == [
        "gateway CPU (0.90 cores)",
        "workers' queue (up to 2 requests waiting)",
        "paid API rate limits (10 calls refused with 429)",
    ]


def test_a_saturated_client_and_machine_are_named_and_unmeasured_signals_are_said() -> None:
    step = _capacity([900, 900, 900]).steps[0]
    busy = replace(step, client_cores=0.97, machine_busy=0.96, gateway_cores=None)
    assert saturation(busy) == [
        "client (Locust at 0.97 cores)",
        "the machine's CPUs (96% busy: Locust 0.97 cores)",
    ]
    shared = replace(step, machine_busy=0.99, gateway_cores=0.4, emulators_cores=1.1)
    assert saturation(shared) == [
        "the machine's CPUs (99% busy: gateway 0.40, Locust 0.20, emulators 1.10 cores)"
    ]
    blind = Capacity((busy,), None, replace(busy, client_cores=None, machine_busy=None))
    assert "measured for target demo only" in capacity_verdict(blind)


# -- the processes' command lines and /proc -----------------------------------------------


def test_locust_runs_headless_bounded_with_every_output_file(root: Path, tmp_path: Path) -> None:
    scenario = parse_scenario(_raw(user_classes=["ChatUser", "BudgetUser"]), root)
    files = ResultFiles(tmp_path / "out")
    command = locust_command(scenario, "http://127.0.0.1:9", files)
    assert command[1:5] == ["-m", "locust", "-f", "lf/chat.py,lf/steady.py"]
    joined = " ".join(command)
    for part in (
        "--headless --host http://127.0.0.1:9",
        f"--csv {tmp_path}/out/locust --csv-full-history",
        f"--html {tmp_path}/out/report.html",
        f"--json-file {tmp_path}/out/locust",
        "--run-time 30s --stop-timeout 10",
    ):
        assert part in joined
    assert command[-2:] == ["ChatUser", "BudgetUser"]
    assert files.stats_json == tmp_path / "out" / "locust.json"


def test_locust_gets_the_team_keys_but_the_budget_team_key_only_as_tg_budget_key(
    root: Path,
) -> None:
    scenario = parse_scenario(
        _raw(teams={"search": {}, "ops": {}, "broke": {}}, budget_team="broke"), root
    )
    keys = TeamKeys({"search": "sk-gw-s", "ops": "sk-gw-o", "broke": "sk-gw-b"}, ("1", "2", "3"))
    env = locust_env(scenario, keys)
    assert json.loads(env["TG_TEAM_KEYS"]) == {"search": "sk-gw-s", "ops": "sk-gw-o"}
    assert env["TG_BUDGET_KEY"] == "sk-gw-b"
    assert env["TG_USERS"] == "4"
    assert "TG_TEAM_KEYS" not in locust_env(parse_scenario(_raw(), root), TeamKeys())


def test_the_machines_busy_time_leaves_out_idle_and_iowait() -> None:
    stat = (
        "cpu  100 5 50 1000 40 3 2 1 0 0\n"
        "cpu0 50 2 25 500 20 1 1 0 0 0\n"
        "cpu1 50 3 25 500 20 2 1 1 0 0\n"
        "intr 12345 0 0\n"
    )
    assert parse_proc_stat(stat) == (161, 2)
