"""POST /v1/route/explain: the routing decision for a request, without calling anything.

Takes the body (and control headers) of a chat completion and answers the plan, the reason,
the features the policy saw, every candidate with its snapshot and score, and the alias's
deployments an operator holds out (``held``: draining or disabled, never candidates): the
same ``decide`` call the inference routes make, so what it says is what would happen now
(``features.data_class`` and ``data_class_sources`` show the privacy pinning, the
candidates their ``data_classes``; explain never waits for capacity). For an alias with
specialists, ``specialist`` holds the classified topic, the scores, the rules that fired, the
topic whose deployments decided and whether that was a fallback.
"""

from __future__ import annotations

import dataclasses
import json

from gateway.asgi import Receive, Scope, Send, send_bytes, send_error
from gateway.dispatch import Dispatcher
from gateway.errors import GatewayError
from gateway.routes.intake import route, take_request


class ExplainRoute:
    """Raw ASGI app: read and route like /v1/chat/completions, answer the decision as JSON."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        dispatcher: Dispatcher = scope["state"]["dispatcher"]
        try:
            intake = await take_request(scope, receive, "chat/completions", dispatcher)
        except GatewayError as err:
            await send_error(send, err, [])
            return
        routing = route(intake, dispatcher, scope["state"]["accounting"], explain=True)
        decision = routing.decision
        scores = {s.name: dataclasses.asdict(s) for s in decision.scores}
        body: dict[str, object] = {
            "object": "route.explanation",
            "policy": decision.policy,
            "plan": list(decision.plan),
            "reason": decision.reason,
            "detail": decision.detail,
            "data_class_sources": list(intake.classification.sources),
            "features": dataclasses.asdict(routing.features),
            "candidates": [
                {**dataclasses.asdict(c), "score": scores.get(c.name)} for c in routing.candidates
            ],
            "held": [
                {"name": dep.name, "state": state}
                for dep, state in dispatcher.roster.held_for(routing.features.alias)
            ],
        }
        special = routing.specialist
        if special is not None:
            body["specialist"] = {
                **dataclasses.asdict(special.classification),
                "routed": special.topic,
                "fallback": special.fallback,
            }
        await send_bytes(send, 200, json.dumps(body).encode(), [])
