"""Each GatewayError has the status the openai SDK maps to the right exception, and all
share the OpenAI error envelope."""

from __future__ import annotations

import json

import pytest

from gateway.errors import (
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    ModelNotFound,
    NotFound,
    PayloadTooLarge,
    UpstreamFailed,
    UpstreamTimeout,
    UpstreamUnavailable,
    error_response,
)

CLASSES: list[tuple[type[GatewayError], int, str, str | None]] = [
    (GatewayError, 500, "server_error", None),
    (InvalidRequest, 400, "invalid_request_error", None),
    (ModelNotFound, 404, "invalid_request_error", "model_not_found"),
    (NotFound, 404, "invalid_request_error", "not_found"),
    (MethodNotAllowed, 405, "invalid_request_error", "method_not_allowed"),
    (PayloadTooLarge, 413, "invalid_request_error", "payload_too_large"),
    (UpstreamFailed, 502, "upstream_error", "upstream_error"),
    (UpstreamUnavailable, 503, "upstream_error", "upstream_unavailable"),
    (UpstreamTimeout, 504, "upstream_error", "upstream_timeout"),
]


@pytest.mark.parametrize(
    ("cls", "status", "error_type", "code"),
    [pytest.param(*row, id=row[0].__name__) for row in CLASSES],
)
def test_error_class_has_its_status_type_and_code(
    cls: type[GatewayError], status: int, error_type: str, code: str | None
) -> None:
    err = cls("went wrong", param="model")
    assert (err.status, err.error_type, err.code) == (status, error_type, code)
    assert err.body() == {
        "error": {"message": "went wrong", "type": error_type, "param": "model", "code": code}
    }


def test_envelope_has_exactly_the_openai_fields_and_param_defaults_to_none() -> None:
    err = InvalidRequest("bad")
    body = err.body()
    assert list(body) == ["error"]
    assert body["error"] == {
        "message": "bad",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert str(err) == "bad"


def test_encode_is_the_envelope_as_json_bytes() -> None:
    err = ModelNotFound("no such model 'x'")
    assert json.loads(err.encode()) == err.body()


def test_error_response_carries_status_body_and_headers() -> None:
    err = UpstreamUnavailable("all rate limited")
    err.headers["Retry-After"] = "3"
    response = error_response(err)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"
    assert response.headers["content-type"] == "application/json"
    assert json.loads(bytes(response.body)) == err.body()


def test_headers_are_per_instance() -> None:
    first, second = UpstreamUnavailable("a"), UpstreamUnavailable("b")
    first.headers["Retry-After"] = "1"
    assert second.headers == {}
