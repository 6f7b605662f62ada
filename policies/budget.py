"""The ``budget`` policy: cheaper deployments as a key's or team's budget runs low.

When budget left / budget total (``RequestFeatures``, from the accounting ledger) is below
``threshold``, the reason is ``budget_low`` and the plan is ``cost``'s with local workers
first: the candidates meeting the SLO by (billed cost, load, TTFT) (free local workers first,
least loaded first, then the cheapest paid), then the ones missing it by (cost, TTFT). When
either number is unknown, or the budget is not low, the ``inner`` policy decides (the
decision's ``policy`` is still ``budget``). Refusing a spent budget is the ledger's job (429).
Imports: stdlib and ``policies`` modules.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies import reason
from policies.filters import effective_slo_ttft, partition
from policies.model import Candidate, Decision, Policy, RequestFeatures
from policies.plan import make_decision, refuse
from policies.scores import decision_scores, load, marginal_cost_usd


class Budget:
    """Cheaper deployments as the budget runs low; otherwise the inner policy."""

    def __init__(self, inner: Policy, threshold: float = 0.2, slo_ttft_s: float = 1.0) -> None:
        self.name = "budget"
        self.predicts = True
        self.inner = inner
        self.threshold = threshold
        self.slo_ttft_s = slo_ttft_s

    def is_low(self, features: RequestFeatures) -> bool:
        """Budget left / budget total below the threshold (False when either is unknown)."""
        left, total = features.budget_left_usd, features.budget_total_usd
        return (
            left is not None and total is not None and total > 0 and left < self.threshold * total
        )

    def decide(self, features: RequestFeatures, candidates: Sequence[Candidate]) -> Decision:
        """Low: meeting the SLO by (cost, load, TTFT), the rest by (cost, TTFT). Else inner."""
        if not self.is_low(features):
            d = self.inner.decide(features, candidates)
            return Decision(self.name, d.plan, d.reason, d.detail, d.scores)
        slo_ttft, slo_total = effective_slo_ttft(features, self.slo_ttft_s), features.slo_total_s
        scores = decision_scores(features, candidates, slo_ttft, slo_total)
        meeting, missing = partition(features, candidates, slo_ttft, slo_total)
        if not meeting and not missing:
            return refuse(self.name, features, candidates, scores)
        meeting.sort(key=lambda c: (marginal_cost_usd(features, c), load(c), c.predicted_ttft_s))
        missing.sort(key=lambda c: (marginal_cost_usd(features, c), c.predicted_ttft_s))
        primary = meeting[0] if meeting else missing[0]
        detail = reason.budget_low(features, primary, marginal_cost_usd(features, primary))
        return make_decision(self.name, (meeting, missing), "budget_low", detail, scores)
