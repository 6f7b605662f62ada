"""A circuit breaker per deployment: closed -> open -> half_open -> closed (or open again).

Closed: requests flow; it opens after ``failures_to_open`` consecutive failures, or when the
error rate (an EWMA over about ``error_window`` requests, once ``min_requests`` have been
seen) exceeds ``error_rate_to_open``. Open: refused for ``cooldown_s`` (longer if the upstream
said Retry-After); a 429 opens it at once. Half-open: exactly one probe at a time; its success
closes the circuit, its failure opens it again. No clock reads: every method takes ``now``
(seconds on the caller's monotonic clock), so tests drive it with fake time. Imports: stdlib,
``policies.model`` and ``gateway.stats.ewma``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.stats.ewma import Ewma
from policies.model import CircuitState


@dataclass(frozen=True, slots=True)
class CircuitSettings:
    """When a circuit opens and for how long."""

    failures_to_open: int = 5
    cooldown_s: float = 5.0
    error_rate_to_open: float = 0.5
    error_window: int = 20
    """Span of the error-rate EWMA, in requests (alpha = 2 / (window + 1))."""
    min_requests: int = 10
    """The error rate is not acted on before this many requests since the last close."""
    probe_timeout_s: float = 120.0
    """A probe not finished after this long no longer blocks another (a lost ticket)."""


class CircuitBreaker:
    """One deployment's breaker. ``allows`` before a call, ``attempt`` when it starts, then
    ``success`` / ``failure`` / ``rate_limited`` with the probe flag ``attempt`` returned."""

    __slots__ = (
        "_errors",
        "_open",
        "_probe_since",
        "consecutive_failures",
        "open_until",
        "settings",
    )

    def __init__(self, settings: CircuitSettings | None = None) -> None:
        self.settings = settings or CircuitSettings()
        self._open = False
        self.open_until = 0.0
        self.consecutive_failures = 0
        self._errors = Ewma(2.0 / (self.settings.error_window + 1))
        self._probe_since: float | None = None

    @property
    def error_rate(self) -> float:
        """The failure share over the recent window since the circuit last closed."""
        return self._errors.value

    def state(self, now: float) -> CircuitState:
        """``closed``, ``open`` (cooling down) or ``half_open`` (cooldown over: probing)."""
        if not self._open:
            return "closed"
        return "open" if now < self.open_until else "half_open"

    def allows(self, now: float) -> bool:
        """Whether a request may be sent now (half-open: only if no probe is out)."""
        if not self._open:
            return True
        if now < self.open_until:
            return False
        since = self._probe_since
        return since is None or now - since >= self.settings.probe_timeout_s

    def attempt(self, now: float) -> bool:
        """A request is being sent; True when it is the half-open probe."""
        if self._open and self.allows(now):
            self._probe_since = now
            return True
        return False

    def success(self, now: float, probe: bool) -> None:
        """The request was served. A probe's success closes the circuit."""
        if probe:
            self._close()
        elif not self._open:
            self.consecutive_failures = 0
            self._errors.update(0.0)

    def failure(self, now: float, probe: bool, retry_after_s: float | None = None) -> None:
        """The deployment failed the request (not the client's fault)."""
        if probe:
            self._trip(now, retry_after_s)
        elif not self._open:
            self.consecutive_failures += 1
            self._errors.update(1.0)
            s = self.settings
            too_many = self.consecutive_failures >= s.failures_to_open
            too_often = self._errors.count >= s.min_requests and (
                self._errors.value > s.error_rate_to_open
            )
            if too_many or too_often:
                self._trip(now, retry_after_s)

    def abandoned(self, probe: bool) -> None:
        """The request ended without a verdict (client gone, refused locally): free the probe."""
        if probe:
            self._probe_since = None

    def rate_limited(self, now: float, retry_after_s: float | None = None) -> None:
        """A 429: open at once, for the cooldown or the Retry-After if that is longer."""
        self._trip(now, retry_after_s)

    def _trip(self, now: float, retry_after_s: float | None) -> None:
        pause = max(self.settings.cooldown_s, retry_after_s or 0.0)
        self.open_until = max(self.open_until, now + pause) if self._open else now + pause
        self._open = True
        self._probe_since = None

    def _close(self) -> None:
        self._open = False
        self.open_until = 0.0
        self.consecutive_failures = 0
        self._errors.reset()
        self._probe_since = None
