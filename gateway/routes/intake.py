"""Reading a request up to its routing decision: shared by the inference routes and explain.

Caller (API key -> key and team) -> body (bounded) -> parsed and checked -> known alias the
key may call -> controls (headers over the key's and the alias's defaults) -> the policy's
decision. Raises the OpenAI-style errors for each step. Imports: ``gateway``.
"""

from __future__ import annotations

from dataclasses import dataclass
from time import time

from gateway.accounting.model import Principal
from gateway.accounting.service import Accounting
from gateway.asgi import Receive, Scope, header, read_body
from gateway.controls import controls_for
from gateway.dispatch import Dispatcher, Routing
from gateway.errors import ModelNotFound, PermissionDenied
from gateway.features import ParsedRequest, parse_request
from gateway.upstreams.base import Endpoint


@dataclass(frozen=True, slots=True)
class Intake:
    """A request read, checked and routed (nothing sent upstream yet)."""

    principal: Principal
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
    accounting: Accounting = scope["state"]["accounting"]
    authorization = header(scope, b"authorization")
    principal = await accounting.principal(
        None if authorization is None else authorization.decode("latin-1"), time()
    )
    config = dispatcher.config
    body = await read_body(scope, receive, config.server.max_body_bytes)
    parsed = parse_request(endpoint, body)
    alias = config.aliases.get(parsed.model)
    if alias is None:
        known = ", ".join(sorted(config.aliases))
        raise ModelNotFound(
            f"the model '{parsed.model}' does not exist; known models: {known}", param="model"
        )
    key = principal.key
    if key is not None and not key.allows(alias.name):
        raise PermissionDenied(
            f"this API key may not call '{alias.name}'; it may call: {', '.join(key.aliases)}",
            param="model",
        )
    controls = controls_for(scope, alias, dispatcher.policy_names, key)
    budget = accounting.budget_hint(principal)
    routing = dispatcher.decide(parsed, len(body), controls, explain=explain, budget=budget)
    return Intake(principal, body, parsed, routing)
