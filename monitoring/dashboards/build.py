"""``python -m monitoring.dashboards.build``: writes the Grafana dashboards beside this module.

``--check`` exits 1, naming the file, when a committed file differs from what it would write.
The JSON is generated: edit ``boards.py`` (panels), ``panels.py`` or ``promql.py``, then run
this. ``panel_queries`` lists every query, for the test that runs them against a live
Prometheus. Imports: the standard library and the sibling modules.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitoring.dashboards.boards import budgets, fleet, overview

HERE = Path(__file__).resolve().parent


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard: file name -> Grafana JSON model."""
    return {"overview.json": overview(), "fleet.json": fleet(), "budgets.json": budgets()}


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, PromQL expr) for every target of every panel."""
    return [
        (board["uid"], panel["title"], target["expr"])
        for board in dashboards().values()
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def render(board: dict[str, Any]) -> str:
    """The file text of a dashboard (stable: key order as built, two-space indent)."""
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Writes the dashboards, or with ``--check`` reports the files that differ (exit 1)."""
    parser = argparse.ArgumentParser(prog="python -m monitoring.dashboards.build")
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--dir", type=Path, default=HERE, help="where the JSON files live")
    args = parser.parse_args(argv)
    folder: Path = args.dir
    drifted = 0
    for name, board in dashboards().items():
        path, text = folder / name, render(board)
        if not args.check:
            path.write_text(text, encoding="utf-8")
            continue
        if not path.is_file():
            problem = "is missing"
        elif path.read_text(encoding="utf-8") != text:
            problem = "differs from what build.py writes (edited by hand, or not regenerated)"
        else:
            continue
        drifted += 1
        print(f"{path} {problem}: run {parser.prog}", file=sys.stderr)
    return 1 if drifted else 0


if __name__ == "__main__":
    sys.exit(main())
