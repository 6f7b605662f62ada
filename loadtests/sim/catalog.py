"""Policies the simulator can run, by name: the product's (``policies.compose``) and the
baselines (``loadtests.sim.baselines``). Imports: ``policies``, ``loadtests.sim``.
"""

from __future__ import annotations

from loadtests.sim.baselines import BASELINES, baseline
from policies.compose import build_policy
from policies.model import Policy

PRODUCT = ("spillover", "cost", "latency", "ordered")
"""Product policies run by default (``budget`` and ``weighted`` need params to mean much)."""
DEFAULT = (*PRODUCT, *BASELINES)


def make_policy(name: str) -> Policy:
    """A fresh policy (baselines keep state, e.g. round-robin's turn) by name."""
    if name in BASELINES:
        return baseline(name)
    return build_policy(name, {})
