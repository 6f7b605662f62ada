"""Per-request routing controls from headers, over the alias's configured defaults.

``x-gateway-policy`` (a policy name), ``x-gateway-slo-ttft-ms`` (a positive number) and
``x-gateway-max-cost-usd`` (a positive number). A bad value is a 400 naming the header, never
a silent default. Imports: stdlib, ``gateway.asgi``, ``gateway.config``, ``gateway.errors``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.accounting.model import VirtualKey
from gateway.asgi import Scope
from gateway.config import Alias
from gateway.errors import InvalidRequest

POLICY_HEADER = b"x-gateway-policy"
SLO_TTFT_HEADER = b"x-gateway-slo-ttft-ms"
MAX_COST_HEADER = b"x-gateway-max-cost-usd"


@dataclass(frozen=True, slots=True)
class Controls:
    """The routing settings in force for one request."""

    policy: str
    slo_ttft_s: float | None
    slo_total_s: float | None
    max_cost_usd: float | None


def controls_for(
    scope: Scope, alias: Alias, known_policies: frozenset[str], key: VirtualKey | None = None
) -> Controls:
    """The alias's defaults, under the key's (policy, SLO), under the request's headers."""
    raw_policy = raw_slo = raw_cost = None
    for name, value in scope["headers"]:  # one pass; most requests carry none of them
        if name.startswith(b"x-gateway-"):
            if name == POLICY_HEADER:
                raw_policy = value
            elif name == SLO_TTFT_HEADER:
                raw_slo = value
            elif name == MAX_COST_HEADER:
                raw_cost = value
    policy = alias.policy
    slo_default = alias.slo_ttft_s
    if key is not None:
        if key.policy in known_policies:
            policy = key.policy
        if key.slo_ttft_ms is not None:
            slo_default = key.slo_ttft_ms / 1000.0
    if raw_policy is not None:
        policy = raw_policy.decode("latin-1").strip()
        if policy not in known_policies:
            known = ", ".join(sorted(known_policies))
            raise InvalidRequest(
                f"header x-gateway-policy: unknown policy {policy!r}; known: {known}",
                param="x-gateway-policy",
            )
    slo = _positive(SLO_TTFT_HEADER, raw_slo)
    cost = _positive(MAX_COST_HEADER, raw_cost)
    return Controls(
        policy=policy,
        slo_ttft_s=slo_default if slo is None else slo / 1000.0,
        slo_total_s=alias.slo_total_s,
        max_cost_usd=alias.max_cost_usd if cost is None else cost,
    )


def _positive(name: bytes, raw: bytes | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        label = name.decode()
        raise InvalidRequest(
            f"header {label}: must be a positive number, got {raw.decode('latin-1')!r}",
            param=label,
        )
    return value
