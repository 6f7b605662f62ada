"""Percentiles, the two ways the load tools need them. Stdlib only.

``nearest_rank`` is the value below which q% of the samples lie (an SLO's "p99": an actual
sample, never interpolated); ``interpolated`` is the linear interpolation between ranks that
benchmark tables conventionally print.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def nearest_rank(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of unsorted ``values``; NaN if none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def interpolated(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ascending values, interpolated linearly; NaN if none."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile out of range: {q}")
    n = len(sorted_values)
    if n == 0:
        return math.nan
    rank = (n - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, n - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)
