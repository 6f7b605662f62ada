"""The ``weighted`` policy: a canary split of traffic in proportion to weights.

The primary is drawn with the caller's uniform ``features.draw`` (policies read no RNG): the
admissible candidates' weights laid end to end over [0, total), the one whose interval holds
``draw * total``. Weights come from the ``weights`` param (deployment -> weight; deployments
it does not name weigh 0) or else from ``Candidate.weight``. The fallbacks are the other
admissible candidates by weight, heaviest first (weight 0 last). The SLO is not considered:
a canary is about the split. All weights 0: the configured order. Imports: stdlib and
``policies`` modules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policies import reason
from policies.filters import admissible
from policies.model import Candidate, Decision, RequestFeatures
from policies.plan import make_decision, refuse
from policies.scores import decision_scores


def _drawn(weights: Sequence[float], point: float) -> int:
    """The index whose cumulative weight interval holds ``point`` (the last positive if none)."""
    for index, weight in enumerate(weights):
        if weight > 0 and point < weight:
            return index
        point -= weight
    return max(i for i, w in enumerate(weights) if w > 0)


class Weighted:
    """A canary split drawn with ``features.draw``; fallbacks the rest by weight."""

    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        self.name = "weighted"
        self.predicts = False
        self.weights = weights

    def weight(self, candidate: Candidate) -> float:
        """The candidate's weight: from the ``weights`` param (0 if unnamed), else its own."""
        if self.weights is None:
            return candidate.weight
        return self.weights.get(candidate.name, 0.0)

    def decide(self, features: RequestFeatures, candidates: Sequence[Candidate]) -> Decision:
        """The drawn one first, then the others by weight (heaviest first)."""
        scores = decision_scores(features, candidates, features.slo_ttft_s, features.slo_total_s)
        pool = [c for c in candidates if admissible(features, c)]
        if not pool:
            return refuse(self.name, features, candidates, scores)
        weights = [self.weight(c) for c in pool]
        total = sum(weights)
        if total <= 0:
            detail = reason.configured(pool[0])
            return make_decision(self.name, (pool,), "configured_order", detail, scores)
        chosen = pool[_drawn(weights, features.draw * total)]
        rest = sorted((c for c in pool if c is not chosen), key=lambda c: -self.weight(c))
        detail = reason.weighted(chosen, features.draw, self.weight(chosen), total)
        return make_decision(self.name, ((chosen,), rest), "weighted_draw", detail, scores)
