"""The audit trail of privacy decisions: a metric per decision and a record per request.

Every request that was pinned (a class stricter than public), upgraded by the detector,
queued for an allowed deployment or refused for its class is counted in
``gateway_privacy_decisions_total{reason}`` (``pinned``, ``upgraded``, ``queued``,
``refused``; ``header_rejected`` is counted where the header is read) and gets one
``AuditRecord`` in the audit log next to the spend ledger, queued for the accounting
store's writer off the request path. A record names who, which alias, the class and what
set it, and how the request ended; never prompt text, never what a detector matched.
Imports: stdlib and ``gateway`` modules.
"""

from __future__ import annotations

from time import time

from gateway import metrics
from gateway.accounting.model import AuditRecord, Principal
from gateway.accounting.service import Accounting
from gateway.privacy.classes import Classification

REFUSED = "no_allowed_deployment"


def audit(
    accounting: Accounting,
    *,
    request_id: str,
    principal: Principal,
    alias: str,
    classification: Classification,
    reason: str,
    served_by: str | None,
    status: int,
    waited_s: float,
) -> None:
    """Count the request's privacy decisions and queue its audit record, if it has any."""
    refused = reason == REFUSED
    if not classification.pinned and not refused:
        return
    decisions = ["refused" if refused else "pinned"]
    if any(source.startswith("detector:") for source in classification.sources):
        decisions.append("upgraded")
    if waited_s > 0:
        decisions.append("queued")
    for decision in decisions:
        metrics.child(metrics.PRIVACY_DECISIONS, decision).inc()
    if refused:
        outcome = "refused"
    elif served_by is not None and status == 200:
        outcome = "served"
    else:
        outcome = "failed"
    accounting.auditor.submit(
        AuditRecord(
            ts=time(),
            request_id=request_id,
            key_id=principal.key_id,
            team_id=principal.team.team_id,
            alias=alias,
            data_class=classification.data_class,
            sources=classification.sources,
            outcome=outcome,
            deployment=served_by or "none",
            reason=reason,
            status=status,
            waited_ms=round(waited_s * 1000, 3),
        )
    )
