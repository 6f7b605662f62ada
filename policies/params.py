"""Reading a policy's params from YAML (or a header): typed, checked, unknown names rejected.

Every error is a ``ValueError`` naming the policy and the param, which the gateway turns into
a config error at start or a 400 for a request override. Imports: stdlib only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType


class Params:
    """One policy's params: read each with a typed getter, then ``finish`` to reject the rest."""

    def __init__(self, policy: str, raw: Mapping[str, object]) -> None:
        if not isinstance(raw, Mapping):
            raise ValueError(f"policy {policy!r}: params must be a mapping, not {raw!r}")
        self._policy = policy
        self._raw = raw
        self._known: list[str] = []

    def _error(self, key: str, problem: str) -> ValueError:
        return ValueError(f"policy {self._policy!r}: param {key!r} {problem}")

    def number(
        self, key: str, default: float | None, *, high: float | None = None, zero_ok: bool = False
    ) -> float | None:
        """A number > 0 (>= 0 when ``zero_ok``) and <= ``high`` when given; None if unset."""
        self._known.append(key)
        value = self._raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._error(key, f"must be a number, not {value!r}")
        if (
            not math.isfinite(value)
            or value < 0
            or (value == 0 and not zero_ok)
            or (high is not None and value > high)
        ):
            low = "[0" if zero_ok else "(0"
            bounds = f"{low}, {high:g}]" if high is not None else ("> 0" if low == "(0" else ">= 0")
            raise self._error(key, f"must be in {bounds}, not {value!r}")
        return float(value)

    def choice(self, key: str, default: str, choices: Iterable[str]) -> str:
        """One of ``choices``."""
        self._known.append(key)
        value = self._raw.get(key, default)
        allowed = sorted(choices)
        if value not in allowed:
            raise self._error(key, f"must be one of {', '.join(allowed)}, not {value!r}")
        return str(value)

    def mapping(self, key: str) -> Mapping[str, object]:
        """A mapping with string keys (empty when absent)."""
        self._known.append(key)
        value = self._raw.get(key, {})
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self._error(key, f"must be a mapping with string keys, not {value!r}")
        return MappingProxyType(dict(value))

    def weights(self, key: str) -> Mapping[str, float] | None:
        """Deployment name -> weight >= 0 (None when absent)."""
        if key not in self._raw:
            self._known.append(key)
            return None
        raw = self.mapping(key)
        weights: dict[str, float] = {}
        for name, weight in raw.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise self._error(key, f"weight of {name!r} must be a number >= 0")
            if not math.isfinite(weight) or weight < 0:
                raise self._error(key, f"weight of {name!r} must be a number >= 0")
            weights[name] = float(weight)
        return MappingProxyType(weights)

    def finish(self) -> None:
        """Reject any param no getter read (a typo must not be ignored)."""
        unknown = sorted(set(self._raw) - set(self._known))
        if unknown:
            known = ", ".join(sorted(self._known)) or "none"
            raise ValueError(
                f"policy {self._policy!r}: unknown param {unknown[0]!r} (known: {known})"
            )
