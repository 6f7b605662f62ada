"""The GatewayError family and its OpenAI error envelope.

Every failure a client can see is one of these, so the openai SDK raises the exception class
that matches the status (BadRequestError for 400, NotFoundError for 404, ...). Imports:
stdlib and starlette.
"""

from __future__ import annotations

import json
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from policies.model import Decision
from policies.plan import REFUSALS

log = logging.getLogger("gateway")


class GatewayError(Exception):
    """A failure with an HTTP status and an OpenAI-style error body."""

    status = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param = message, param
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, object]:
        """The OpenAI error envelope."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def encode(self) -> bytes:
        """The envelope as JSON bytes (for raw ASGI handlers and SSE error events)."""
        return json.dumps(self.body()).encode()


class InvalidRequest(GatewayError):
    """The request is malformed: bad JSON, wrong types, missing fields."""

    status, error_type = 400, "invalid_request_error"


class ModelNotFound(GatewayError):
    """The requested model is not an alias in the config."""

    status, error_type, code = 404, "invalid_request_error", "model_not_found"


class NotFound(GatewayError):
    """No such route."""

    status, error_type, code = 404, "invalid_request_error", "not_found"


class MethodNotAllowed(GatewayError):
    """The route exists but not for this HTTP method."""

    status, error_type, code = 405, "invalid_request_error", "method_not_allowed"


class PayloadTooLarge(GatewayError):
    """The body is over ``server.max_body_bytes``."""

    status, error_type, code = 413, "invalid_request_error", "payload_too_large"


class UpstreamFailed(GatewayError):
    """Every deployment in the plan failed with an upstream error (5xx, bad reply)."""

    status, error_type, code = 502, "upstream_error", "upstream_error"


class UpstreamUnavailable(GatewayError):
    """No deployment could be reached, or all are rate limited or cooling down."""

    status, error_type, code = 503, "upstream_error", "upstream_unavailable"


class UpstreamTimeout(GatewayError):
    """The last deployment tried did not answer in time."""

    status, error_type, code = 504, "upstream_error", "upstream_timeout"


def error_response(err: GatewayError) -> Response:
    """The one way an error becomes an HTTP response."""
    return JSONResponse(err.body(), err.status, headers=err.headers)


async def handle_gateway_error(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for GatewayError."""
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 become OpenAI-style errors too."""
    status = getattr(exc, "status_code", 500)
    if status == 405:
        return error_response(
            MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
        )
    return error_response(NotFound(f"no route {request.method} {request.url.path}"))


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """Last resort: log the bug with its traceback, answer without one."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(GatewayError("internal error in the gateway; it has been logged"))


class RoutingRefused(GatewayError):
    """The policy found no deployment that may take the request (status set per reason)."""

    error_type = "invalid_request_error"

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code
        if status >= 500:
            self.error_type = "upstream_error"


def refusal_error(decision: Decision) -> GatewayError:
    """The error for a decision with an empty plan (``policies.plan.REFUSALS``)."""
    status, code = REFUSALS.get(decision.reason, (503, "no_available_deployment"))
    return RoutingRefused(f"{decision.policy}: {decision.detail}", status=status, code=code)


class AuthenticationFailed(GatewayError):
    """No key, an unknown key, or a key that is expired or disabled (OpenAI's 401)."""

    status, error_type, code = 401, "invalid_request_error", "invalid_api_key"


class PermissionDenied(GatewayError):
    """A valid key asked for something it may not have: the admin API, another team's spend,
    an alias outside its list (the openai SDK raises PermissionDeniedError for 403)."""

    status, error_type, code = 403, "invalid_request_error", "permission_denied"


class Conflict(GatewayError):
    """The request clashes with what exists: a team id already taken, a team that still has
    active keys."""

    status, error_type, code = 409, "invalid_request_error", "conflict"
