"""Request traces: the Azure LLM inference 2023 CSVs and the Mooncake jsonl, as ``TraceRequest``.

Formats (``shared/data/PROVENANCE.md`` §1a-1b):

- Azure 2023 (``*.csv``): ``TIMESTAMP`` (``YYYY-MM-DD HH:MM:SS.fffffff``), ``ContextTokens``,
  ``GeneratedTokens``.
- Mooncake (``*.jsonl``): ``timestamp`` (ms from the start), ``input_length``,
  ``output_length`` (``hash_ids`` is ignored: no prefix cache is modelled).

Arrival times are seconds from the trace's first request. ``compressed`` divides them by the
rate scale (K-fold the request rate, same requests). Imports: stdlib only.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True, slots=True)
class TraceRequest:
    """One request of a trace: when it arrives and its token counts."""

    arrival_s: float
    prompt_tokens: int
    output_tokens: int


def read_trace(path: str | Path) -> list[TraceRequest]:
    """Read an Azure CSV or a Mooncake jsonl trace (by extension), sorted by arrival."""
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        if path.suffix == ".csv":
            rows = _azure_rows(csv.DictReader(handle))
        elif path.suffix == ".jsonl":
            rows = _mooncake_rows(handle)
        else:
            raise ValueError(f"{path}: unknown trace format (want .csv or .jsonl)")
        requests = sorted(rows, key=lambda r: r.arrival_s)
    if not requests:
        raise ValueError(f"{path}: no requests")
    start = requests[0].arrival_s
    return [TraceRequest(r.arrival_s - start, r.prompt_tokens, r.output_tokens) for r in requests]


def _azure_rows(reader: Iterable[dict[str, str]]) -> list[TraceRequest]:
    rows = []
    for row in reader:
        # Seven fractional digits: Python parses at most six.
        stamp = row["TIMESTAMP"].strip()
        head, _, frac = stamp.partition(".")
        seconds = datetime.fromisoformat(head).timestamp() + float(f"0.{frac or '0'}")
        rows.append(
            TraceRequest(
                seconds,
                max(1, int(row["ContextTokens"])),
                max(1, int(row["GeneratedTokens"])),
            )
        )
    return rows


def _mooncake_rows(lines: Iterable[str]) -> list[TraceRequest]:
    rows = []
    for line in lines:
        if not line.strip():
            continue
        obj = json.loads(line)
        rows.append(
            TraceRequest(
                float(obj["timestamp"]) / 1000.0,
                max(1, int(obj["input_length"])),
                max(1, int(obj["output_length"])),
            )
        )
    return rows


def compressed(requests: Sequence[TraceRequest], rate_scale: float) -> list[TraceRequest]:
    """The same requests arriving ``rate_scale`` times as fast."""
    if rate_scale <= 0:
        raise ValueError("rate_scale must be positive")
    return [
        TraceRequest(r.arrival_s / rate_scale, r.prompt_tokens, r.output_tokens) for r in requests
    ]


def sliced(
    requests: Sequence[TraceRequest], start_s: float = 0.0, duration_s: float | None = None
) -> list[TraceRequest]:
    """The requests arriving in ``[start_s, start_s + duration_s)``, re-based to start at 0."""
    end = float("inf") if duration_s is None else start_s + duration_s
    kept = [r for r in requests if start_s <= r.arrival_s < end]
    return [TraceRequest(r.arrival_s - start_s, r.prompt_tokens, r.output_tokens) for r in kept]


def span_s(requests: Sequence[TraceRequest]) -> float:
    """Seconds from the first to the last arrival (the period GPUs are paid for)."""
    return requests[-1].arrival_s - requests[0].arrival_s if requests else 0.0
