"""An alert expression's comparisons: ``(SIGNAL OP THRESHOLD)``, joined by and/or/unless.

The rules' convention (monitoring/rules/): every alert is one or more parenthesised
comparisons joined by ``and``, ``or`` or ``unless``. An alert that does not fire returns
nothing, but its signals must return data wherever the metrics exist: the monitoring proof
test evaluates them against a live Prometheus, and the rules' unit test checks that every
alert follows the convention. A small scanner, not a PromQL parser: it tracks bracket depth,
skips quoted strings and splits at the top level only.
"""

from __future__ import annotations

import re

_SET_OPERATOR = re.compile(r"\s(?:and|or|unless)\s+(?:(?:on|ignoring)\s*\([^)]*\)\s*)?")
_COMPARISON = re.compile(r"\s(?:==|!=|>=|<=|>|<)\s+(?:bool\s+)?")
_QUOTES = "\"'`"


class NotTheConvention(ValueError):
    """The expression is not parenthesised comparisons joined by and/or/unless."""


def comparisons(expr: str) -> list[tuple[str, str]]:
    """Each comparison of an alert expression as (signal, threshold)."""
    found = []
    for part in _top_level_split(" ".join(expr.split()), _SET_OPERATOR):
        if not _encloses(part):
            raise NotTheConvention(f"not one parenthesised comparison: {part!r}")
        sides = _top_level_split(part[1:-1].strip(), _COMPARISON)
        if len(sides) != 2:
            raise NotTheConvention(f"not a single comparison: {part!r}")
        found.append((sides[0], sides[1]))
    return found


def signals(expr: str) -> list[str]:
    """The left-hand side of each comparison."""
    return [signal for signal, _ in comparisons(expr)]


def _top_level_split(expr: str, separator: re.Pattern[str]) -> list[str]:
    """``expr`` cut where ``separator`` matches outside brackets and quoted strings."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(expr):
        char = expr[i]
        if char in _QUOTES:
            i = expr.index(char, i + 1) + 1
            continue
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
    return parts


def _encloses(part: str) -> bool:
    """Whether ``part`` is one parenthesised expression, ``( ... )``."""
    if not part.startswith("("):
        return False
    depth, i = 0, 0
    while i < len(part):
        char = part[i]
        if char in _QUOTES:
            i = part.index(char, i + 1) + 1
            continue
        depth += 1 if char == "(" else -1 if char == ")" else 0
        if depth == 0:
            return i == len(part) - 1
        i += 1
    return False
