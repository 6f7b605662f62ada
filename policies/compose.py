"""Building a policy from its YAML spec (per alias) or a request's override (per request).

``build_policy("spillover", {"slo_ttft_s": 0.8})`` checks the name and the params and returns
the ``Policy``; any problem is a ``ValueError`` whose message names the bad param or lists
the known policies, which the gateway reports as a config error at start or a 400 naming the
header. Build once per (name, params) and reuse: policies are immutable and deterministic.
Imports: stdlib and ``policies`` modules.
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.builtin import REGISTRY
from policies.model import Policy


def known_policies() -> tuple[str, ...]:
    """The registered policy names, sorted."""
    return tuple(sorted(REGISTRY))


def build_policy(name: str, params: Mapping[str, object] | None = None) -> Policy:
    """The policy ``name`` with ``params`` checked (ValueError naming what is wrong)."""
    factory = REGISTRY.get(name) if isinstance(name, str) else None
    if factory is None:
        known = ", ".join(known_policies())
        raise ValueError(f"unknown policy {name!r} (known: {known})")
    return factory({} if params is None else params)
