"""Scores of one candidate for one request: cost, predicted latency, load, and ``Score`` records.

- Cost is what is billed: a local worker's marginal cost is 0 while it is available (under its
  concurrency limit; its GPU is paid for either way); its shadow cost (GPU-hour price /
  measured throughput) is reported in the score's note, never billed or compared.
- Latency is the candidate's predicted TTFT (computed by the gateway with ``predict.py``) and
  total (TTFT plus the remaining output tokens at the predicted time per output token).
- Load is what a worker holds: the larger of the gateway's in-flight count and the scraped
  running + waiting sequences (the scrape also sees other replicas' traffic, in-flight is live).

Imports: stdlib and ``policies.model`` / ``policies.filters``.
"""

from __future__ import annotations

from collections.abc import Sequence

from policies.filters import admissible, exclusion, meets_slo
from policies.model import Candidate, RequestFeatures, Score


def marginal_cost_usd(features: RequestFeatures, candidate: Candidate) -> float:
    """Billed USD for this request: 0 on a local worker, expected cost on a paid one."""
    return 0.0 if candidate.local else candidate.expected_cost_usd(features)


def shadow_cost_usd(features: RequestFeatures, candidate: Candidate) -> float:
    """A local worker's GPU cost of the expected output (reported, never billed)."""
    return candidate.shadow_usd_per_output_token * features.expected_output_tokens


def predicted_latency_s(features: RequestFeatures, candidate: Candidate) -> float:
    """What the client waits for: predicted TTFT when streaming, else the predicted total."""
    if features.stream:
        return candidate.predicted_ttft_s
    return candidate.predicted_total_s(features)


def load(candidate: Candidate) -> int:
    """Sequences the worker holds: max(in-flight, scraped running + waiting)."""
    scraped = (candidate.running or 0) + (candidate.waiting or 0)
    return candidate.inflight if candidate.inflight > scraped else scraped


def score(
    features: RequestFeatures,
    candidate: Candidate,
    slo_ttft_s: float | None,
    slo_total_s: float | None,
) -> Score:
    """The ``Score`` of one candidate, with a note on why it is ineligible or its local load."""
    eligible = admissible(features, candidate)
    if not eligible:
        note = exclusion(features, candidate)
    elif candidate.local:
        shadow = shadow_cost_usd(features, candidate)
        note = f"local, load {load(candidate)}, shadow ${shadow:.6f}"
    else:
        note = ""
    return Score(
        candidate.name,
        marginal_cost_usd(features, candidate),
        candidate.predicted_ttft_s,
        candidate.predicted_total_s(features),
        meets_slo(features, candidate, slo_ttft_s, slo_total_s),
        eligible,
        note,
    )


def score_all(
    features: RequestFeatures,
    candidates: Sequence[Candidate],
    slo_ttft_s: float | None,
    slo_total_s: float | None,
) -> tuple[Score, ...]:
    """Every candidate's ``Score``, in the configured order (what explain shows)."""
    return tuple(score(features, c, slo_ttft_s, slo_total_s) for c in candidates)


def decision_scores(
    features: RequestFeatures,
    candidates: Sequence[Candidate],
    slo_ttft_s: float | None,
    slo_total_s: float | None,
) -> tuple[Score, ...]:
    """What a decision carries: every ``Score`` when ``features.explain``, else none.

    Scoring is most of a decision's time and only the explain endpoint reads the scores; the
    plan, reason and detail do not depend on them, so explain shows the decision actually taken.
    """
    if not features.explain:
        return ()
    return score_all(features, candidates, slo_ttft_s, slo_total_s)
