"""Locust's output files -> typed entries: the final stats and the per-second history.

The final numbers come from ``--json-file`` (``locust.json``), written once at shutdown with
every request counted and each entry's response-time histogram, so percentiles over several
entries (all aliases' TTFT, all HTTP rows) are exact merges. ``locust_stats.csv`` is not used
for them: Locust rewrites it every second and not at exit, so it misses the last second's
requests. ``locust_stats_history.csv`` (``--csv-full-history``) gives, per entry and second,
the percentiles of the last 10 s, which the capacity report reads at each step's end.

Entries of type ``LLM`` are the user classes' custom events: ``TTFT [alias]`` (ms),
``tokens/s [alias]`` (the response-time field carries tokens/s) and ``output tokens
[alias]`` (it carries a token count); every other type is an HTTP request. Pure: reads
files, no processes. Imports: stdlib.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

EVENT_TYPE = "LLM"
TTFT = "TTFT"
TOKENS_PER_S = "tokens/s"
OUTPUT_TOKENS = "output tokens"
_LABELLED = re.compile(r"^(?P<what>.*?) \[(?P<label>[^\]]*)\]$")


class StatsError(ValueError):
    """A Locust output file is missing or not what Locust writes."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One Locust stats entry (request type + name) over the whole run."""

    type: str
    name: str
    requests: int
    failures: int
    response_times: Mapping[int, int]
    """Rounded response time (ms, or the event's value) -> how many."""
    per_second: Mapping[int, int]
    """Epoch second -> requests that finished in it."""
    failures_per_second: Mapping[int, int]
    started_at: float
    last_at: float | None

    @property
    def is_event(self) -> bool:
        """A custom LLM event, not an HTTP request."""
        return self.type == EVENT_TYPE

    @property
    def kind(self) -> str:
        """``TTFT`` of ``TTFT [qwen]``; the whole name when it has no ``[label]``."""
        return _kind(self.name)

    @property
    def label(self) -> str | None:
        """``qwen`` of ``TTFT [qwen]`` (the alias), or None."""
        match = _LABELLED.match(self.name)
        return match["label"] if match else None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One row of ``locust_stats_history.csv``: an entry's last-10-s view at one second."""

    at: int
    users: int
    type: str
    name: str
    percentiles: Mapping[str, float | None]
    """``"95%"`` -> the value, None while the window is empty (Locust writes N/A)."""
    total_requests: int
    total_failures: int

    @property
    def is_event(self) -> bool:
        """A custom LLM event row (see Entry.is_event)."""
        return self.type == EVENT_TYPE

    @property
    def is_http(self) -> bool:
        """An HTTP request entry's row (not an event, not Locust's ``Aggregated`` row, which
        mixes requests and events)."""
        return not self.is_event and not (self.name == "Aggregated" and not self.type)

    @property
    def kind(self) -> str:
        """``TTFT`` of ``TTFT [qwen]`` (see Entry.kind)."""
        return _kind(self.name)


def _kind(name: str) -> str:
    match = _LABELLED.match(name)
    return match["what"] if match else name


def read_entries(path: Path) -> list[Entry]:
    """The entries of a ``--json-file`` output (``locust.json``)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StatsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise StatsError(f"{path}: not JSON: {exc}") from None
    if not isinstance(raw, list):
        raise StatsError(f"{path}: expected a list of stats entries")
    try:
        return [_entry(item) for item in raw]
    except (KeyError, TypeError, ValueError) as exc:
        raise StatsError(f"{path}: not a Locust stats entry: {exc!r}") from None


def _entry(item: Mapping[str, object]) -> Entry:
    def counts(key: str) -> dict[int, int]:
        value = item.get(key) or {}
        if not isinstance(value, dict):
            raise TypeError(key)
        return {round(float(k)): int(v) for k, v in value.items()}

    last = item.get("last_request_timestamp")
    return Entry(
        type=str(item.get("method") or ""),
        name=str(item["name"]),
        requests=int(str(item["num_requests"])),
        failures=int(str(item["num_failures"])),
        response_times=counts("response_times"),
        per_second=counts("num_reqs_per_sec"),
        failures_per_second=counts("num_fail_per_sec"),
        started_at=float(str(item["start_time"])),
        last_at=None if last is None else float(str(last)),
    )


def read_history(path: Path) -> list[HistoryRow]:
    """The rows of ``locust_stats_history.csv`` (written with ``--csv-full-history``)."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return [_history_row(row) for row in csv.DictReader(fh)]
    except OSError as exc:
        raise StatsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise StatsError(f"{path}: not a Locust history CSV: {exc!r}") from None


def _history_row(row: Mapping[str, str]) -> HistoryRow:
    percentiles = {
        key: None if value in ("N/A", "") else float(value)
        for key, value in row.items()
        if key and key.endswith("%")
    }
    return HistoryRow(
        at=int(row["Timestamp"]),
        users=int(row["User Count"]),
        type=row["Type"],
        name=row["Name"],
        percentiles=percentiles,
        total_requests=int(row["Total Request Count"]),
        total_failures=int(row["Total Failure Count"]),
    )


def pooled(entries: Iterable[Entry]) -> dict[int, int]:
    """The entries' response-time histograms added together."""
    merged: dict[int, int] = {}
    for entry in entries:
        for value, count in entry.response_times.items():
            merged[value] = merged.get(value, 0) + count
    return merged


def percentile(histogram: Mapping[int, int], fraction: float) -> float | None:
    """The value ``fraction`` (0..1) of the samples are at or under, as Locust computes it
    (``calculate_response_time_percentile``); None without samples."""
    total = sum(histogram.values())
    if total == 0:
        return None
    wanted = int(total * fraction)
    seen = 0
    for value in sorted(histogram, reverse=True):
        seen += histogram[value]
        if total - seen <= wanted:
            return float(value)
    return 0.0


def http_entries(entries: Iterable[Entry]) -> list[Entry]:
    """The HTTP request entries (every type but the LLM events)."""
    return [e for e in entries if not e.is_event]


def events(entries: Iterable[Entry], kind: str) -> list[Entry]:
    """The custom events of one kind (``TTFT``, ``tokens/s``, ``output tokens``)."""
    return [e for e in entries if e.is_event and e.kind == kind]
