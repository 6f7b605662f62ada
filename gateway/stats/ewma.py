"""An exponentially weighted moving average over samples (not over time), with a count.

Used for TTFT, time per output token, error rate and throughput per deployment. Until
``1 / alpha`` samples have arrived it is the plain mean of what it has seen, so the first
samples are not dragged towards the initial value (the prior is only a fallback until the
first sample). Stdlib only.
"""

from __future__ import annotations

import math


class Ewma:
    """A moving average: ``value`` is the prior until the first ``update``."""

    __slots__ = ("alpha", "count", "value")

    def __init__(self, alpha: float, prior: float = 0.0) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.value = prior
        self.count = 0

    @classmethod
    def from_half_life(cls, samples: float, prior: float = 0.0) -> Ewma:
        """An average where a sample's weight halves after ``samples`` newer samples."""
        if samples <= 0 or not math.isfinite(samples):
            raise ValueError(f"half-life must be a positive number of samples, got {samples}")
        return cls(1.0 - 0.5 ** (1.0 / samples), prior)

    def update(self, sample: float) -> None:
        """Fold one observation in."""
        self.count += 1
        weight = max(self.alpha, 1.0 / self.count)
        self.value += weight * (sample - self.value)

    def reset(self, prior: float = 0.0) -> None:
        """Forget every sample."""
        self.value = prior
        self.count = 0
