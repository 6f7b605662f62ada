"""Privacy pinning: candidates are filtered by the request's data class before any policy.

``Pinned`` wraps a policy so that every policy gets the same rule: only candidates whose
``data_classes`` contain the request's ``data_class`` reach the inner policy, so a plan (the
primary and every fallback) never names a deployment the class does not allow. When no
allowed candidate can serve, the refusal is ``no_allowed_deployment`` (503) and its detail
names the class, how many deployments it allows and why each cannot serve; the gateway never
falls back to a disallowed one. A decision that served a non-public request (or filtered
anything out) has its detail prefixed with ``pinned to CLASS: N of M allowed``.

The common case costs one membership test per candidate and no allocation: a public request
where every candidate accepts ``public`` goes straight to the inner policy.
Imports: stdlib and ``policies`` modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from policies import reason
from policies.filters import exclusion
from policies.model import Candidate, Decision, Policy, RequestFeatures


def allowed(features: RequestFeatures, candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates that may receive the request's data class, in the given order."""
    wanted = features.data_class
    return [c for c in candidates if wanted in c.data_classes]


class Pinned:
    """``inner`` restricted to the candidates the request's data class allows."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.name = inner.name
        self.predicts = inner.predicts

    def decide(self, features: RequestFeatures, candidates: Sequence[Candidate]) -> Decision:
        """The inner policy's decision over the allowed candidates (see the module doc)."""
        wanted = features.data_class
        if wanted == "public":
            for candidate in candidates:
                if "public" not in candidate.data_classes:
                    break
            else:
                return self.inner.decide(features, candidates)
        permitted = allowed(features, candidates)
        pinning = f"pinned to {wanted}: {len(permitted)} of {len(candidates)} allowed"
        if not permitted:
            detail = f"{pinning}; no deployment of this alias may receive {wanted} data"
            return Decision(self.name, (), "no_allowed_deployment", reason.bounded(detail))
        decision = self.inner.decide(features, permitted)
        if decision.reason == "no_available_deployment":
            busy = ", ".join(f"{c.name} {exclusion(features, c)}" for c in permitted)
            detail = reason.bounded(f"{pinning}; none can serve: {busy}")
            return replace(decision, reason="no_allowed_deployment", detail=detail)
        return replace(decision, detail=reason.bounded(f"{pinning}; {decision.detail}"))
