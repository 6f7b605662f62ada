"""Splitting an alert's PromQL into its signals: the left-hand side of each comparison.

The rules' convention (monitoring/rules/): an alert is ``(SIGNAL OP THRESHOLD)``, or several
such comparisons joined by ``and``/``or``/``unless``. An alert that does not fire returns
nothing, but its signals must return data wherever the metrics exist; the monitoring proof
test evaluates them. A small scanner, not a PromQL parser: it tracks bracket depth and splits
at the top level only.
"""

from __future__ import annotations

import re

_SET_OPERATOR = re.compile(r"\s(and|or|unless)\s+(?:(?:on|ignoring)\s*\([^)]*\)\s*)?")
_COMPARISON = re.compile(r"\s(?:==|!=|>=|<=|>|<)\s")


def signals(expr: str) -> list[str]:
    """The left-hand side of each comparison in ``expr`` (a part without one: all of it)."""
    parts = _top_level_split(expr.strip(), _SET_OPERATOR)
    if len(parts) > 1:
        return [signal for part in parts for signal in signals(part)]
    inner = _unwrap(parts[0])
    if inner != parts[0]:
        return signals(inner)
    return _top_level_split(inner, _COMPARISON)[:1]


def _top_level_split(expr: str, separator: re.Pattern[str]) -> list[str]:
    """``expr`` cut wherever ``separator`` matches outside (), {} and []."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(expr):
        char = expr[i]
        if char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
        elif depth == 0 and (match := separator.match(expr, i)) is not None:
            parts.append(expr[start:i].strip())
            start = i = match.end()
            continue
        i += 1
    parts.append(expr[start:].strip())
    return [part for part in parts if part]


def _unwrap(part: str) -> str:
    """``part`` without parentheses that enclose all of it."""
    while part.startswith("(") and _closing(part) == len(part) - 1:
        part = part[1:-1].strip()
    return part


def _closing(part: str) -> int:
    """The index of the parenthesis that closes the one at index 0."""
    depth = 0
    for i, char in enumerate(part):
        depth += 1 if char == "(" else -1 if char == ")" else 0
        if depth == 0:
            return i
    return -1
