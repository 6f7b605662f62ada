"""The ``weighted`` policy: a canary split of traffic in proportion to weights.

The primary is drawn with the caller's uniform ``features.draw`` (policies read no RNG): the
admissible candidates' weights laid end to end over [0, total), the one whose interval holds
``draw * total``. Weights come from the ``weights`` param (deployment -> weight; deployments
it does not name weigh 0; a discovery group's weight is shared equally by its admissible
members not named themselves) or else from ``Candidate.weight``. The fallbacks are the
other admissible candidates by weight, heaviest first (weight 0 last). The SLO is not
considered: a canary is about the split. All weights 0: the configured order. Imports:
stdlib and ``policies`` modules.
"""

from __future__ import annotations

from collections import Counter
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

    def weights_of(self, pool: Sequence[Candidate]) -> list[float]:
        """Each candidate's weight: its own entry in the ``weights`` param, else its group's
        shared by the group's members in ``pool``, else 0; without the param its own."""
        if self.weights is None:
            return [c.weight for c in pool]
        named = self.weights
        shares = Counter(c.group for c in pool if c.name not in named and c.group in named)
        found: list[float] = []
        for c in pool:
            if c.name in named:
                found.append(named[c.name])
            elif c.group is not None and c.group in named:
                found.append(named[c.group] / shares[c.group])
            else:
                found.append(0.0)
        return found

    def decide(self, features: RequestFeatures, candidates: Sequence[Candidate]) -> Decision:
        """The drawn one first, then the others by weight (heaviest first)."""
        scores = decision_scores(features, candidates, features.slo_ttft_s, features.slo_total_s)
        pool = [c for c in candidates if admissible(features, c)]
        if not pool:
            return refuse(self.name, features, candidates, scores)
        weights = self.weights_of(pool)
        total = sum(weights)
        if total <= 0:
            detail = reason.configured(pool[0])
            return make_decision(self.name, (pool,), "configured_order", detail, scores)
        index = _drawn(weights, features.draw * total)
        chosen = pool[index]
        others = sorted((i for i in range(len(pool)) if i != index), key=lambda i: -weights[i])
        rest = [pool[i] for i in others]
        detail = reason.weighted(chosen, features.draw, weights[index], total)
        return make_decision(self.name, ((chosen,), rest), "weighted_draw", detail, scores)
