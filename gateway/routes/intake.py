"""Reading a request up to its routing decision: shared by the inference routes and explain.

``take_request``: caller (API key -> key and team) -> body (bounded) -> parsed and checked ->
known alias the key may call -> controls (headers over the key's and the alias's defaults)
-> data class (``gateway.privacy``). ``route``: the policy's decision (the inference routes
ask the cache in between); ``route_waiting``: the same, but a pinned request whose allowed
deployments are all busy (at capacity or circuit open) waits for one, up to
``privacy.queue_timeout_s`` (and the alias's total SLO, if shorter); with no allowed
deployment at all it is refused at once. Raises the OpenAI-style errors for each step.
Imports: ``gateway``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from time import monotonic, time

from gateway.accounting.model import Principal
from gateway.accounting.service import Accounting
from gateway.asgi import Receive, Scope, header, read_body
from gateway.config import Alias
from gateway.controls import Controls, controls_for
from gateway.dispatch import Dispatcher, Routing
from gateway.errors import ModelNotFound, PermissionDenied
from gateway.features import ParsedRequest, parse_request
from gateway.privacy.classes import Classification
from gateway.privacy.gate import Capacity
from gateway.upstreams.base import Endpoint


@dataclass(frozen=True, slots=True)
class Intake:
    """A request read and checked (nothing sent upstream yet)."""

    principal: Principal
    body: bytes
    parsed: ParsedRequest
    alias: Alias
    controls: Controls
    classification: Classification


async def take_request(
    scope: Scope,
    receive: Receive,
    endpoint: Endpoint,
    dispatcher: Dispatcher,
) -> Intake:
    """Read and check one request; raises InvalidRequest, ModelNotFound, PayloadTooLarge,
    AuthenticationFailed, PermissionDenied."""
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
    classification = await dispatcher.privacy.classify(scope, principal, alias, parsed.parsed)
    return Intake(principal, body, parsed, alias, controls, classification)


def route(
    intake: Intake, dispatcher: Dispatcher, accounting: Accounting, *, explain: bool = False
) -> Routing:
    """The policy's decision for ``intake`` (``explain`` adds every candidate's score)."""
    budget = accounting.budget_hint(intake.principal)
    return dispatcher.decide(
        intake.parsed,
        len(intake.body),
        intake.controls,
        explain=explain,
        budget=budget,
        data_class=intake.classification.data_class,
    )


async def route_waiting(
    intake: Intake, dispatcher: Dispatcher, accounting: Accounting
) -> tuple[Routing, float]:
    """``route``, waiting while only busy allowed deployments could serve; the routing and
    the seconds waited (the last refusal when time ran out)."""
    routing = route(intake, dispatcher, accounting)
    if not _must_wait(routing):
        return routing, 0.0
    started = monotonic()
    limit = min(dispatcher.config.privacy.queue_timeout_s, intake.controls.slo_total_s or math.inf)
    capacity: Capacity = dispatcher.privacy.capacity
    while (left := limit - (monotonic() - started)) > 0:
        await capacity.wait(left)
        routing = route(intake, dispatcher, accounting)
        if not _must_wait(routing):
            break
    return routing, monotonic() - started


def _must_wait(routing: Routing) -> bool:
    """Refused for its class while some deployment allowing it exists (it may free up)."""
    if routing.decision.reason != "no_allowed_deployment":
        return False
    wanted = routing.features.data_class
    return any(wanted in c.data_classes for c in routing.candidates)
