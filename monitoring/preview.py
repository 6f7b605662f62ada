"""``python -m monitoring.preview``: each dashboard's panels drawn from a live Prometheus, as PNG.

For every dashboard in ``monitoring/dashboards/``, every panel's queries are run over the last
``--minutes`` through Prometheus's HTTP API (template variables set to "All") and drawn in a
grid, one picture per dashboard: what ops will see in Grafana, for the README. Time series
are lines; stat and gauge panels show their latest value. Imports: stdlib and matplotlib.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DASHBOARDS = Path(__file__).resolve().parent / "dashboards"
COLUMNS = 3
RATE_INTERVAL = "1m"
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_UNITS = {"percentunit": ("%", 100.0), "s": ("s", 1.0), "currencyUSD": ("$", 1.0)}


def substitute(expr: str) -> str:
    """``expr`` with the dashboards' variables set as Grafana sets them for "All"."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in ("__rate_interval", "__interval"):
            return RATE_INTERVAL
        return ".*"

    return _VARIABLE.sub(value, expr)


def query_range(prometheus: str, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    """The series of a range query (``values``: [[ts, "value"], ...]); [] on an error."""
    step = max(1.0, (end - start) / 240)
    params = {"query": substitute(expr), "start": start, "end": end, "step": step}
    url = f"{prometheus}/api/v1/query_range?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=15.0) as response:
            reply = json.load(response)
    except OSError:
        return []
    result: list[dict[str, Any]] = reply.get("data", {}).get("result", [])
    return result


def render(dashboard: dict[str, Any], prometheus: str, minutes: float, out: Path) -> Path:
    """Draw ``dashboard``'s panels into ``out``/<uid>.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in dashboard.get("panels", []) if p.get("targets")]
    rows = max(1, math.ceil(len(panels) / COLUMNS))
    figure, axes = plt.subplots(rows, COLUMNS, figsize=(6 * COLUMNS, 3.2 * rows), squeeze=False)
    end = time.time()
    start = end - minutes * 60
    for ax, panel in zip(axes.flat, panels, strict=False):
        _draw(ax, panel, prometheus, start, end)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    figure.suptitle(dashboard.get("title", ""), fontsize=16, fontweight="bold")
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{dashboard.get('uid', 'dashboard')}.png"
    figure.savefig(path, dpi=60)
    plt.close(figure)
    return path


def _draw(ax: Any, panel: dict[str, Any], prometheus: str, start: float, end: float) -> None:
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
    suffix, scale = _UNITS.get(unit, ("", 1.0))
    ax.set_title(panel.get("title", ""), fontsize=10)
    lines = 0
    latest: list[float] = []
    for target in panel["targets"]:
        for series in query_range(prometheus, target.get("expr", ""), start, end):
            points = [(float(t), float(v) * scale) for t, v in series["values"]]
            points = [(t, v) for t, v in points if math.isfinite(v)]
            if not points:
                continue
            latest.append(points[-1][1])
            if panel.get("type") == "timeseries":
                xs = [(t - end) / 60 for t, _ in points]
                ax.plot(xs, [v for _, v in points], linewidth=1.2, label=_legend(target, series))
                lines += 1
    if panel.get("type") != "timeseries":
        text = f"{sum(latest):.3g}{suffix}" if latest else "no data"
        ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=28, transform=ax.transAxes)
        ax.axis("off")
        return
    ax.set_xlabel("minutes ago", fontsize=8)
    ax.tick_params(labelsize=8)
    if suffix:
        ax.set_ylabel(suffix, fontsize=8)
    if 0 < lines <= 6:
        ax.legend(fontsize=7, loc="upper left")
    elif lines == 0:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)


def _legend(target: dict[str, Any], series: dict[str, Any]) -> str:
    labels: dict[str, str] = series.get("metric", {})
    legend = str(target.get("legendFormat") or "")
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), legend)
    fallback = ",".join(f"{k}={v}" for k, v in labels.items() if k != "__name__")[:40]
    return text.strip() or fallback or "value"


def main(argv: Sequence[str] | None = None) -> int:
    """Render every dashboard; non-zero if Prometheus is unreachable."""
    parser = argparse.ArgumentParser(prog="python -m monitoring.preview", description=__doc__)
    parser.add_argument("--prometheus", required=True, help="e.g. http://127.0.0.1:9090")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    parser.add_argument("--minutes", type=float, default=15.0, help="time range (default 15)")
    parser.add_argument("--dashboards", type=Path, default=DASHBOARDS)
    args = parser.parse_args(argv)
    try:
        urllib.request.urlopen(f"{args.prometheus}/-/ready", timeout=5.0).close()
    except OSError as exc:
        print(f"cannot reach Prometheus at {args.prometheus}: {exc}", file=sys.stderr)
        return 2
    for path in sorted(args.dashboards.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        print(render(dashboard, args.prometheus, args.minutes, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
