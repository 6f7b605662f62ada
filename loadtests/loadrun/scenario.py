"""A load-test scenario: one YAML file -> a frozen, validated ``Scenario``.

Unknown keys are rejected with the dotted path of the bad field, as ``gateway/config.py``
does for the gateway's config. A scenario names the Locust files (user classes and one
shape), the ``TG_*`` settings they read, a hard bound on the run, the target (the demo fleet
the runner starts, or a running gateway on loopback), optional teams with budgets and
limits, and the SLO thresholds of the verdict. See ``docs/loadtests.md``. Imports: stdlib,
``yaml``, ``loadtests.shapes.schedule`` (the step shape's plan, without locust).
"""

from __future__ import annotations

import ipaddress
import math
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loadtests.shapes.schedule import StepPlan, step_from_env

RUNNER_ENV = frozenset({"TG_TEAM_KEYS", "TG_BUDGET_KEY"})
"""Settings the runner fills in from ``teams`` and ``budget_team`` (a scenario may not)."""
MIN_STEP_S = 10.0
"""Locust's "current" percentiles cover the last 10 s: a shorter step would mix two steps."""
MAX_RUN_TIME_S = 3600.0
_ENV_NAME = re.compile(r"^TG_[A-Z0-9_]+$")
_CLASS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOP = {
    "name",
    "locustfiles",
    "user_classes",
    "env",
    "run_time_s",
    "target",
    "teams",
    "budget_team",
    "thresholds",
    "capacity",
}


class ScenarioError(ValueError):
    """The scenario file is invalid; the message names the bad field's path."""


@dataclass(frozen=True, slots=True)
class DemoTarget:
    """The runner starts the demo fleet (two vLLM Qwen emulators, the paid-API emulators)
    and a gateway on configs/demo.yaml, and stops them after the run."""

    time_scale: float = 1.0
    """Emulator delays x this (1.0 = the calibrated real-world latency)."""
    max_num_seqs: int | None = None
    """Each Qwen worker's running-sequence cap (None: the emulator's default, 1024)."""


@dataclass(frozen=True, slots=True)
class UrlTarget:
    """A gateway that is already running, on a loopback address."""

    url: str


Target = DemoTarget | UrlTarget


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The SLO of the verdict; None = not checked."""

    max_error_ratio: float | None = None
    max_ttft_p95_ms: float | None = None
    max_latency_p99_ms: float | None = None
    min_rps: float | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """One validated scenario file."""

    name: str
    locustfiles: tuple[str, ...]
    """Paths relative to the repository: user classes and (at most) one shape."""
    user_classes: tuple[str, ...]
    env: Mapping[str, str]
    run_time_s: float
    target: Target
    teams: Mapping[str, Mapping[str, Any]]
    """Team id -> the body of ``POST /admin/teams`` (budget_usd, rpm, tpm, ...)."""
    budget_team: str | None
    thresholds: Thresholds
    capacity: bool = False

    def step_plan(self, environ: Mapping[str, str]) -> StepPlan:
        """The step shape's schedule as it will read it: the scenario's ``env`` over the
        ``TG_*`` variables of ``environ`` (Locust inherits both); ScenarioError when a
        capacity report cannot split it into steps."""
        inherited = {k: v for k, v in environ.items() if k.startswith("TG_")}
        try:
            plan = step_from_env({**inherited, **self.env})
        except ValueError as exc:
            raise ScenarioError(f"env.{exc}") from None
        if plan.step_s < MIN_STEP_S:
            raise ScenarioError(
                f"env.TG_STEP_S: a capacity step must last at least {MIN_STEP_S:g} s "
                "(the window of Locust's current percentiles)"
            )
        if plan.duration_s > self.run_time_s:
            raise ScenarioError(
                f"run_time_s: {self.run_time_s:g} s ends before the last step "
                f"({plan.steps} x {plan.step_s:g} s)"
            )
        return plan


def load_scenario(path: str | Path, root: Path) -> Scenario:
    """Read and validate the YAML file at ``path``; locustfiles are relative to ``root``."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    return parse_scenario(raw, root)


def parse_scenario(raw: object, root: Path) -> Scenario:
    """Validate an already-loaded mapping."""
    top = _mapping(raw, "")
    _only(top, "", _TOP)
    name = _str(top.get("name"), "name")
    locustfiles = tuple(
        _locustfile(item, f"locustfiles[{i}]", root)
        for i, item in enumerate(_list(top.get("locustfiles"), "locustfiles"))
    )
    if not locustfiles:
        raise ScenarioError("locustfiles: at least one file is required")
    user_classes = tuple(
        _class_name(item, f"user_classes[{i}]")
        for i, item in enumerate(_list(top.get("user_classes", []), "user_classes"))
    )
    teams = _teams(top.get("teams"))
    budget_team = top.get("budget_team")
    if budget_team is not None and budget_team not in teams:
        raise ScenarioError(f"budget_team: {budget_team!r} is not one of the scenario's teams")
    run_time_s = _number(top.get("run_time_s"), "run_time_s")
    if run_time_s > MAX_RUN_TIME_S:
        raise ScenarioError(f"run_time_s: at most {MAX_RUN_TIME_S:g} s")
    return Scenario(
        name=name,
        locustfiles=locustfiles,
        user_classes=user_classes,
        env=_env(top.get("env")),
        run_time_s=run_time_s,
        target=_target(top.get("target")),
        teams=teams,
        budget_team=budget_team,
        thresholds=_thresholds(top.get("thresholds")),
        capacity=_bool(top.get("capacity", False), "capacity"),
    )


def loopback_url(value: object, at: str) -> str:
    """``http://127.0.0.1:PORT`` (or localhost, ::1, 127.x) without a trailing slash;
    ScenarioError for anything that is not plain HTTP on a loopback address."""
    text = _str(value, at)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme != "http" or not parts.hostname or parts.query or parts.fragment:
        raise ScenarioError(f"{at}: must be http://127.0.0.1:PORT, got {text!r}")
    if parts.path not in ("", "/") or parts.username or parts.password:
        raise ScenarioError(f"{at}: must be the gateway's base URL, without a path, got {text!r}")
    if not _is_loopback(parts.hostname):
        raise ScenarioError(f"{at}: load tests run against loopback only, got {parts.hostname!r}")
    try:
        port = parts.port
    except ValueError:
        raise ScenarioError(f"{at}: bad port in {text!r}") from None
    if port is None:
        raise ScenarioError(f"{at}: needs an explicit port, got {text!r}")
    return f"http://{parts.netloc}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _target(raw: object) -> Target:
    if raw == "demo":
        return DemoTarget()
    spec = _mapping(raw, "target")
    if len(spec) != 1 or not set(spec) <= {"demo", "url"}:
        raise ScenarioError("target: must be 'demo', {demo: {...}} or {url: http://127.0.0.1:PORT}")
    if "url" in spec:
        return UrlTarget(loopback_url(spec["url"], "target.url"))
    demo = _mapping(spec["demo"], "target.demo")
    _only(demo, "target.demo", {"time_scale", "max_num_seqs"})
    time_scale = _number(demo.get("time_scale", 1.0), "target.demo.time_scale")
    seqs = demo.get("max_num_seqs")
    return DemoTarget(
        time_scale=time_scale,
        max_num_seqs=None if seqs is None else _positive_int(seqs, "target.demo.max_num_seqs"),
    )


def _thresholds(raw: object) -> Thresholds:
    spec = _mapping(raw, "thresholds")
    _only(
        spec, "thresholds", {"max_error_ratio", "max_ttft_p95_ms", "max_latency_p99_ms", "min_rps"}
    )

    def number(key: str) -> float | None:
        value = spec.get(key)
        return None if value is None else _number(value, f"thresholds.{key}", zero_ok=True)

    ratio = number("max_error_ratio")
    if ratio is not None and ratio > 1:
        raise ScenarioError("thresholds.max_error_ratio: a ratio, within 0..1")
    return Thresholds(
        max_error_ratio=ratio,
        max_ttft_p95_ms=number("max_ttft_p95_ms"),
        max_latency_p99_ms=number("max_latency_p99_ms"),
        min_rps=number("min_rps"),
    )


def _teams(raw: object) -> dict[str, Mapping[str, Any]]:
    teams: dict[str, Mapping[str, Any]] = {}
    for team_id, settings in _mapping(raw, "teams").items():
        at = f"teams.{team_id}"
        if not team_id.strip():
            raise ScenarioError(f"{at}: a team id must not be blank")
        body = _mapping(settings, at)
        if "team_id" in body:
            raise ScenarioError(f"{at}.team_id: the team id is the mapping's key")
        teams[team_id] = dict(body)
    return teams


def _env(raw: object) -> dict[str, str]:
    env: dict[str, str] = {}
    for key, value in _mapping(raw, "env").items():
        at = f"env.{key}"
        if not _ENV_NAME.match(key):
            raise ScenarioError(f"{at}: settings are TG_* names (upper case)")
        if key in RUNNER_ENV:
            raise ScenarioError(f"{at}: set by the runner from teams and budget_team")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ScenarioError(f"{at}: must be a string or a number")
        env[key] = str(value)
    return env


def _locustfile(value: object, at: str, root: Path) -> str:
    text = _str(value, at)
    path = Path(text)
    if path.is_absolute() or ".." in path.parts:
        raise ScenarioError(f"{at}: a path relative to the repository, got {text!r}")
    if path.suffix != ".py" or not (root / path).is_file():
        raise ScenarioError(f"{at}: no Python file {text!r} in the repository")
    return text


def _class_name(value: object, at: str) -> str:
    text = _str(value, at)
    if not _CLASS_NAME.match(text):
        raise ScenarioError(f"{at}: {text!r} is not a class name")
    return text


def _only(spec: Mapping[str, Any], at: str, allowed: set[str]) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        where = f"{at}.{unknown[0]}" if at else unknown[0]
        raise ScenarioError(f"{where}: unknown field (allowed: {', '.join(sorted(allowed))})")


def _mapping(value: object, at: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ScenarioError(f"{at or '<root>'}: must be a mapping")
    return value


def _list(value: object, at: str) -> list[object]:
    if not isinstance(value, list):
        raise ScenarioError(f"{at}: must be a list")
    return value


def _str(value: object, at: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(f"{at}: must be a non-empty string")
    return value


def _bool(value: object, at: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"{at}: must be true or false")
    return value


def _number(value: object, at: str, *, zero_ok: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{at}: must be a number")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        kind = "non-negative" if zero_ok else "positive"
        raise ScenarioError(f"{at}: must be a {kind}, finite number")
    return float(value)


def _positive_int(value: object, at: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ScenarioError(f"{at}: must be a positive integer")
    return value
