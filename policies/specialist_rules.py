"""The rules of the specialist classifier: named features, each voting for code or math.

A rule counts its matches in the text and adds ``weight * min(matches, cap)`` to its topic's
score. Two kinds: a words rule counts the text's lower-case words that are in its set (one
``Counter`` of the words, shared by all of them) plus its multi-word phrases as substrings; a
pattern rule counts a regular expression's matches (syntax that is not words: fences,
tracebacks, operators), and runs only when the text contains one of its literal hints. A rule
may require another to match ``also``: ``code_request`` is a request verb (``write``, ``fix``,
``how do``...) with a language name or a code object (its ``also`` rule, not weighted itself).
Config may override any weight by rule name (``classifier.weights``). The patterns have no
nested quantifiers and only bounded gaps, so scanning a capped text is linear in its length.
The default weights were tuned on the dev half of the labelled set (docs/specialists.md).
Imports: stdlib.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal

Topic = Literal["code", "math", "general"]
SPECIALIST_TOPICS: tuple[Topic, ...] = ("code", "math")
"""The topics a specialist can serve (``general`` is the alias's own deployments)."""

WORD = re.compile(r"[a-z0-9_#+]+")
"""A word of the lower-cased text (``c++`` and ``c#`` stay whole)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One named feature voting for ``topic``: a word set or a pattern."""

    name: str
    topic: Topic
    weight: float
    cap: int = 1
    words: frozenset[str] = frozenset()
    """Single words, counted among the text's words."""
    phrases: tuple[str, ...] = ()
    """Several words, counted as substrings of the lower-cased text."""
    pattern: re.Pattern[str] | None = None
    also: Rule | None = None
    """A rule with ``also`` matches only if ``also`` matches too."""
    hints: tuple[str, ...] = ()
    """A ``pattern`` rule runs only if the lower-cased text contains one of these (a
    substring search is much cheaper than the pattern; every match contains a hint; an
    empty hint: always)."""


def _words(name: str, topic: Topic, weight: float, cap: int, words: str) -> Rule:
    entries = [w.strip() for w in words.split(",")]
    single = frozenset(w for w in entries if " " not in w)
    return Rule(name, topic, weight, cap, single, tuple(w for w in entries if " " in w))


def _pattern(
    name: str, topic: Topic, weight: float, cap: int, pattern: str, hints: str = ""
) -> Rule:
    compiled = re.compile(pattern, re.MULTILINE)
    return Rule(name, topic, weight, cap, pattern=compiled, hints=tuple(hints.split("|")))


LANGUAGES = _words(
    "language_name",
    "code",
    2.0,
    1,
    "python, javascript, typescript, java, c++, c#, golang, rust, ruby, php, bash, powershell, "
    "sql, postgres, postgresql, mysql, sqlite, bigquery, regex, kotlin, swift, haskell, scala, "
    "perl, lua, html, css, react, django, flask, express js, nodejs, node js, pandas, numpy, "
    "dockerfile, docker, kubectl, kubernetes, git, gcc, gdb, npm, pytest, sqlalchemy, awk, "
    "sed, grep, cron, systemd, yaml, json, jsx",
)
CODE_THINGS = _words(
    "code_things",
    "code",
    0.5,
    3,
    "function, functions, script, regex, regular expression, query, method, methods, unit test, "
    "endpoint, code, snippet, one liner, decorator, makefile, cron job, stored procedure, "
    "struct, middleware, "
    "variable, array, dictionary, dict, boolean, compiler, runtime, null pointer, recursion, "
    "recursive, mutex, deadlock, async, await, api, debug, refactor, repo, linked list, "
    "hash map, stack trace, type hints, borrow checker, json, yaml, http, sql, localhost, "
    "git, docker, container, build, tests, compile, install",
)
CODE_REQUEST = dataclasses.replace(
    _words(
        "code_request",
        "code",
        2.5,
        1,
        "write, implement, create, fix, debug, refactor, optimize, optimise, explain, convert, "
        "port, translate, review, rewrite, generate, make, add, how do, how can, what does",
    ),
    also=_words(
        "code_object",
        "code",
        1.0,
        1,
        ", ".join(sorted(LANGUAGES.words | set(LANGUAGES.phrases)))
        + ", script, regex, regular expression, sql query, unit test, endpoint, code, snippet, "
        "one liner, decorator, makefile, cron job, stored procedure, api, struct, middleware",
    ),
)

RULES: tuple[Rule, ...] = (
    _pattern("code_fence", "code", 4.0, 1, r"^\s{0,3}```", "```"),
    _pattern(
        "traceback",
        "code",
        4.0,
        1,
        r"Traceback \(most recent call last\)|^\s+at [\w$.]+\(|^goroutine \d|^npm ERR!|"
        r"Exception in thread",
        "traceback|\tat |  at |goroutine|npm err|exception in",
    ),
    _pattern(
        "error_name",
        "code",
        3.0,
        1,
        r"[a-z](?:Error|Exception|Warning)\b|error\[E\d|Segmentation fault|undefined reference|"
        r"cannot find symbol|panic: |fatal: |CrashLoopBackOff",
        "error|exception|warning|segmentation|undefined ref|cannot find|panic:|fatal:|crashloop",
    ),
    _pattern(
        "python_syntax",
        "code",
        3.0,
        1,
        r"^\s*(?:async )?def \w+\(|^\s*class \w+[(:]|^\s*import \w|^\s*from [\w.]+ import |"
        r"^\s*@\w|self\.\w|__[a-z]\w*__|print\(|lambda \w*:",
        "def |class |import |@|self.|__|print(|lambda",
    ),
    _pattern(
        "c_family_syntax",
        "code",
        3.0,
        1,
        r"#include|int main\(|std::|printf\(|System\.out|public (?:static |class )|fn \w+\(|"
        r"let mut |func \w+\(|:=|console\.log|function \w*\(|=>|(?:const|let|var) [\w{]+ =|"
        r"<\?php|</?\w+>|\$_\w+|#\[\w+",
        "#|main(|::|printf(|system.out|public |fn |let |func |:=|console.|function|=>|const |"
        "var |<|$_",
    ),
    _pattern(
        "sql_syntax",
        "code",
        3.0,
        1,
        r"(?i:select (?:\*|[\w.]+(?:, ?[\w.]+)*|count\(\*\)) from |insert into |create table|"
        r"group by |left join |inner join |update \w+ set |delete from |order by \w)",
        "select |insert into|create table|group by|join |update |delete from|order by",
    ),
    _pattern(
        "shell_syntax",
        "code",
        2.5,
        1,
        r"^\s*\$ \w|sudo \w|(?:pip|npm|yarn|apt-get|brew|cargo) (?:install|add|run|ci)\b|"
        r"git (?:commit|push|pull|rebase|merge|checkout|stash|clone|reset)\b|chmod |"
        r"grep -|awk '|sed -|\| ?xargs|docker (?:run|build|compose)|kubectl \w|^#!/",
        "$ |sudo |pip |npm |yarn |apt-get |brew |cargo |git |chmod |grep -|awk '|sed -|xargs|"
        "docker |kubectl |#!/",
    ),
    _pattern("indented_code", "code", 1.0, 3, r"^(?: {4}|\t)+[\w#@$]\S* ?[\w(=:.\[]", "    |\t"),
    _pattern("statement_ends", "code", 0.75, 4, r"[;{}]\s*$", ";|{|}"),
    _pattern(
        "call_syntax",
        "code",
        0.5,
        4,
        r"\w\.\w+\(|\w\(\)|\w\[['\"\w]*\]|[!=]==|&&|\+=|[a-z]_[a-z]|`[^`\n]{1,40}`",
        "(|[|==|&&|+=|_|`",
    ),
    _pattern(
        "file_name",
        "code",
        2.0,
        1,
        r"\.(?:py|js|ts|tsx|jsx|java|cpp|hpp|go|rs|rb|php|sh|sql|ya?ml|json|toml|kt|cs|"
        r"ipynb|csv|txt|html|css|jpe?g|png|log)\b",
        ".",
    ),
    LANGUAGES,
    CODE_THINGS,
    CODE_REQUEST,
    _pattern(
        "latex",
        "math",
        3.0,
        1,
        r"\$[^$\s\d][^$\n]{0,200}\$|\\(?:frac|int|sum|sqrt|lim|cdot|times|alpha|beta|theta|pi|infty|"
        r"partial|mathbb|le|ge|neq|binom|log|sin|cos)\b",
        "$|\\",
    ),
    _pattern(
        "equation",
        "math",
        2.0,
        2,
        r"(?<![\w.])\d*[a-z](?:\^\d|²|³)|\b\d+[a-z]\b ?(?:[-+] ?\d+ ?)?=|\b[a-z] ?[-+*/] ?\d+ ?=|"
        r"\b[fg]\([a-z]\) ?=|\b[a-z] ?[<>≤≥] ?-?\d",
        "^|²|³|=|<|>|≤|≥",
    ),
    _pattern(
        "arithmetic",
        "math",
        0.5,
        2,
        r"\d ?[-+*/\u00d7\u00f7^] ?\(?\d|\d ?%",
        "+|-|*|/|\u00d7|\u00f7|^|%",
    ),
    _words(
        "math_vocabulary",
        "math",
        0.75,
        4,
        "solve, equation, equations, integral, derivative, polynomial, polynomials, matrix, "
        "matrices, eigenvalue, eigenvalues, probability, prime, primes, factor, factors, "
        "theorem, prove, modulo, remainder, sequence, series, logarithm, square root, divisible, "
        "integer, integers, real numbers, ring, rings, group, groups, field, homomorphism, "
        "isomorphic, variance, standard deviation, mean, median, fraction, triangle, circle, "
        "radius, area, perimeter, volume, angle, greatest common, least common, expected value, "
        "permutation, permutations, combinations, digit, digits, sum, product, quotient, ratio, "
        "percent, percentage, decimal, inequality, slope, vertices, sample, distribution, "
        "hypothesis, z score, confidence interval, regression, coefficient, quadratic, linear, "
        "roots, order of, subgroup, cyclic, zero, odd, even, multiply, divided, divides, "
        "dimension, x, y, n, simplest form, estimate, rounded, nearest, expression, "
        "multiplied, subtract, plus, minus, equals, divided by, number line, greater than, "
        "less than, random variable, binomial, normal distribution, p value, null hypothesis, "
        "standard error, outlier, correlation, inches, feet, centimeters, meters",
    ),
    _words(
        "word_problem",
        "math",
        0.25,
        4,
        "in total, altogether, each, per, cost, "
        "costs, twice, half, times as, remaining, left over, earn, earns, spend, spends, "
        "every day, every week, every hour, every month, pays, paid, bought, sold, dollars, "
        "cents, minutes, hours, miles, total",
    ),
    _words(
        "quantity_question",
        "math",
        3.0,
        1,
        "how many, how much, how long, how far, how old, what percentage, what fraction",
    ),
    _pattern("numbers", "math", 0.25, 8, r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])"),
    _words(
        "math_request",
        "math",
        2.0,
        1,
        "compute, calculate, evaluate, simplify, solve for, the value",
    ),
)
"""Every rule, in a fixed order (the order rules are listed in when they fire)."""

RULE_NAMES: frozenset[str] = frozenset(r.name for r in RULES)
