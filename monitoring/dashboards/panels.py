"""Grafana panels and dashboards as plain dicts: time series, stat and gauge panels with their
units, rows, a layout that assigns grid positions, and the template variables every dashboard
has (``datasource``, ``model``, ``deployment``, ``team``). Imports: the standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GENERATED = "by monitoring/dashboards/build.py; edit its modules, then run it"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24

# Grafana unit ids beyond the short ones ("reqps", "ops", "s", "short", "none").
USD = "currencyUSD"
RATIO = "percentunit"  # 0..1 shown as %
TOKENS_PS = "count:tok/s"  # a custom unit: 1.2K tok/s

Panel = dict[str, Any]


# -- panels ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """One query of a panel and its legend (``{{label}}`` templates); without a legend, the
    labels of the query's first ``by (...)`` make it, or else the panel's title."""

    expr: str
    legend: str = ""


Query = str | Target
Steps = Sequence[tuple[float | None, str]]


def _legend(target: Target, title: str) -> str:
    if target.legend:
        return target.legend
    found = re.search(r"\bby \(([^)]*)\)", target.expr)
    labels = [] if found is None else [x.strip() for x in found.group(1).split(",")]
    return " ".join(f"{{{{{label}}}}}" for label in labels if label != "le") or title


def _thresholds(steps: Steps) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def _panel(
    kind: str,
    title: str,
    unit: str,
    queries: Sequence[Query],
    w: int,
    h: int,
    defaults: dict[str, Any],
    options: dict[str, Any],
) -> Panel:
    targets = [q if isinstance(q, Target) else Target(q) for q in queries]
    return {
        "id": 0,  # layout() numbers the panels and places them
        "type": kind,
        "title": title,
        "description": "",  # dashboard() fills it in from its notes
        "datasource": DATASOURCE,
        "gridPos": {"h": h, "w": w, "x": 0, "y": 0},
        "fieldConfig": {"defaults": {"unit": unit, **defaults}, "overrides": []},
        "options": options,
        "targets": [
            {
                "refId": chr(ord("A") + n),
                "datasource": DATASOURCE,
                "editorMode": "code",
                "expr": target.expr,
                "legendFormat": _legend(target, title),
                "range": kind == "timeseries",
                "instant": kind != "timeseries",
            }
            for n, target in enumerate(targets)
        ],
    }


def timeseries(
    title: str,
    unit: str,
    *queries: Query,
    stack: bool = False,
    w: int = 12,
    h: int = 8,
    thresholds: Steps = (),
) -> Panel:
    """A graph over time; ``stack`` for the parts of a whole (spend by team, lookups by result),
    ``thresholds`` drawn as dashed lines."""
    custom: dict[str, Any] = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }
    defaults: dict[str, Any] = {"color": {"mode": "palette-classic"}, "custom": custom}
    if thresholds:
        custom["thresholdsStyle"] = {"mode": "dashed"}
        defaults["thresholds"] = _thresholds(thresholds)
    options = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return _panel("timeseries", title, unit, queries, w, h, defaults, options)


def stat(
    title: str,
    unit: str,
    *queries: Query,
    w: int = 4,
    h: int = 4,
    thresholds: Steps = ((None, "green"),),
    mappings: dict[str, tuple[str, str]] | None = None,
) -> Panel:
    """The latest value of each series; ``mappings`` names values (``{"1": ("open", "red")}``)."""
    defaults: dict[str, Any] = {
        "color": {"mode": "thresholds"},
        "thresholds": _thresholds(thresholds),
    }
    if mappings:
        named = {value: {"text": text, "color": color} for value, (text, color) in mappings.items()}
        defaults["mappings"] = [{"type": "value", "options": named}]
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background" if mappings else "value",
        "graphMode": "none" if mappings else "area",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "auto",
    }
    return _panel("stat", title, unit, queries, w, h, defaults, options)


def gauge(
    title: str,
    unit: str,
    *queries: Query,
    low: float,
    high: float,
    thresholds: Steps,
    w: int = 12,
    h: int = 8,
) -> Panel:
    """A dial per series from ``low`` to ``high``, coloured by ``thresholds``."""
    defaults = {
        "color": {"mode": "thresholds"},
        "min": low,
        "max": high,
        "thresholds": _thresholds(thresholds),
    }
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "auto",
        "showThresholdLabels": False,
        "showThresholdMarkers": True,
    }
    return _panel("gauge", title, unit, queries, w, h, defaults, options)


def row(title: str) -> Panel:
    """A full-width heading; the panels after it, up to the next row, belong to it."""
    return {
        "id": 0,
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": 0},
        "panels": [],
    }


def layout(panels: Sequence[Panel]) -> list[Panel]:
    """Numbers the panels and places them left to right, wrapping at the grid's width; a row
    always starts a new line of its own."""
    placed: list[Panel] = []
    x = y = line_height = 0
    for n, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if panel["type"] == "row" or x + w > GRID_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        placed.append(dict(panel, id=n, gridPos={"h": h, "w": w, "x": x, "y": y}))
        x, line_height = x + w, max(line_height, h)
        if panel["type"] == "row":
            x = GRID_WIDTH  # nothing beside a row
    return placed


# -- dashboards --------------------------------------------------------------------------------


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,  # on time range change
        "regex": "",
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
    }


TEMPLATING = {
    "list": [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "regex": "",
            "refresh": 1,
            "hide": 0,
            "options": [],
        },
        _variable("model", "Model", "label_values(gateway_requests_total, model)"),
        _variable("deployment", "Deployment", "label_values(gateway_requests_total, deployment)"),
        _variable("team", "Team", "label_values(gateway_spend_usd_total, team)"),
    ]
}


def dashboard(
    uid: str, title: str, purpose: str, panels: Sequence[Panel], notes: Mapping[str, str]
) -> dict[str, Any]:
    """A whole dashboard: the shared variables, time range and links around ``panels``, whose
    descriptions (the (i) beside a title) come from ``notes``, by title."""
    for panel in panels:
        if "description" in panel:
            panel["description"] = notes.get(panel["title"], "")
    return {
        "__generated__": GENERATED,
        "uid": uid,
        "title": title,
        "description": f"{purpose} Generated {GENERATED}.",
        "tags": ["token-gateway"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,  # shared crosshair
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "fiscalYearStartMonth": 0,
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "type": "dashboards",
                "title": "token-gateway",
                "tags": ["token-gateway"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": TEMPLATING,
        "panels": layout(panels),
    }
