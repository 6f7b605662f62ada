"""``/admin/deployments``: list every deployment with its state; disable, enable or drain one.

``GET /admin/deployments`` lists the configured deployments, the discovery groups and their
present members, each with the state in this replica, the wish stored for its own name
(``wanted``, null when none), provider, local, group, calls in flight and circuit.
``POST /admin/deployments/{name}/{action}`` (``disable``, ``enable``, ``drain``) stores the
wish for every replica (``gateway.control``) and answers the name's row(s) as this replica
now sees them. A name is a configured deployment, a group (its members, present and to come,
follow it) or a member ``group@host:port``; an unknown one is a 404 saying where the names
are. Handlers are wrapped by ``admin.py``'s guard (master key). Imports: ``gateway``.
"""

from __future__ import annotations

from time import monotonic
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.accounting.requests import Body
from gateway.accounting.service import Accounting
from gateway.config import Deployment
from gateway.control.store import ControlUnavailable
from gateway.control.sync import ACTIONS, Action, Control
from gateway.dispatch import Dispatcher
from gateway.errors import GatewayError, InvalidRequest


class DeploymentNotFound(GatewayError):
    """The name is no deployment, group or member of this gateway."""

    status, error_type, code = 404, "not_found_error", "deployment_not_found"


class ControlStoreDown(GatewayError):
    """The shared store of deployment states did not take the change."""

    status, error_type, code = 503, "server_error", "control_unavailable"


async def list_deployments(request: Request, accounting: Accounting, body: Body) -> Response:
    """``GET /admin/deployments``: every deployment, group and present member."""
    dispatcher: Dispatcher = request.state.dispatcher
    rows = [_row(dispatcher, name) for name in _names(dispatcher)]
    return JSONResponse({"object": "list", "data": rows})


async def change_deployment(request: Request, accounting: Accounting, body: Body) -> Response:
    """``POST /admin/deployments/{name}/{action}``."""
    name, action = request.path_params["name"], request.path_params["action"]
    if action not in ACTIONS:
        raise InvalidRequest(
            f"unknown action {action!r} for deployment {name!r}; "
            f"actions: POST /admin/deployments/{{name}}/{'|'.join(ACTIONS)}",
            param="action",
        )
    control: Control = request.state.control
    kind = control.kind(name)
    if kind is None:
        raise DeploymentNotFound(
            f"no deployment, discovery group or member called {name!r}; "
            "GET /admin/deployments (or python -m gateway deployments list) lists them",
            param="name",
        )
    try:
        await control.change(name, cast(Action, action))
    except ControlUnavailable as exc:
        raise ControlStoreDown(f"the control store is unavailable: {exc}") from None
    dispatcher: Dispatcher = request.state.dispatcher
    names = [name, *(d.name for d in control.roster.members(name))] if kind == "group" else [name]
    return JSONResponse(
        {
            "object": "deployment.change",
            "name": name,
            "action": action,
            "data": [_row(dispatcher, n) for n in names],
        }
    )


def _names(dispatcher: Dispatcher) -> list[str]:
    roster = dispatcher.roster
    names = [n for n in dispatcher.config.deployments if n in roster.live or n in roster.groups]
    for group in roster.groups:
        names += [d.name for d in roster.members(group)]
    return names


def _row(dispatcher: Dispatcher, name: str) -> dict[str, Any]:
    roster, fleet = dispatcher.roster, dispatcher.fleet
    wanted = roster.wanted.get(name)
    if name in roster.groups:
        group = roster.groups[name]
        members = roster.members(name)
        return {
            **_describe(group, "group"),
            "state": wanted or "active",
            "wanted": wanted,
            "members": [d.name for d in members],
            "inflight": sum(fleet.inflight(d.name) for d in members),
            "circuit": None,
        }
    dep: Deployment | None = roster.live.get(name)
    if dep is None:  # a member that is not (or not yet) present here
        return {"name": name, "kind": "member", "state": None, "wanted": wanted}
    return {
        **_describe(dep, "member" if dep.group else "deployment"),
        "state": roster.state(name),
        "wanted": wanted,
        "inflight": fleet.inflight(name),
        "circuit": fleet.circuit_state(name, monotonic()),
    }


def _describe(dep: Deployment, kind: str) -> dict[str, Any]:
    return {
        "name": dep.name,
        "kind": kind,
        "provider": dep.provider,
        "local": dep.local,
        "group": dep.group,
        "model": dep.model,
    }
