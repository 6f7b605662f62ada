"""Reading a request up to its routing decision: shared by the inference routes and explain.

Body (bounded) -> parsed and checked -> known alias -> controls from headers -> the policy's
decision. Raises the OpenAI-style errors for each step. Imports: ``gateway``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.asgi import Receive, Scope, read_body
from gateway.controls import controls_for
from gateway.dispatch import Dispatcher, Routing
from gateway.errors import ModelNotFound
from gateway.features import ParsedRequest, parse_request
from gateway.upstreams.base import Endpoint


@dataclass(frozen=True, slots=True)
class Intake:
    """A request read, checked and routed (nothing sent upstream yet)."""

    body: bytes
    parsed: ParsedRequest
    routing: Routing


async def take_request(
    scope: Scope,
    receive: Receive,
    endpoint: Endpoint,
    dispatcher: Dispatcher,
    *,
    explain: bool = False,
) -> Intake:
    """Read and route one request; raises InvalidRequest, ModelNotFound, PayloadTooLarge."""
    config = dispatcher.config
    body = await read_body(scope, receive, config.server.max_body_bytes)
    parsed = parse_request(endpoint, body)
    alias = config.aliases.get(parsed.model)
    if alias is None:
        known = ", ".join(sorted(config.aliases))
        raise ModelNotFound(
            f"the model '{parsed.model}' does not exist; known models: {known}", param="model"
        )
    controls = controls_for(scope, alias, dispatcher.policy_names)
    return Intake(body, parsed, dispatcher.decide(parsed, len(body), controls, explain=explain))
