"""GET /v1/models: the aliases from config, in OpenAI's list shape."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.config import Config


def models_route(config: Config) -> JSONResponse:
    """The response is fixed per config, so it is built once."""
    created = int(time.time())
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "token-gateway"}
        for name in config.aliases
    ]
    return JSONResponse({"object": "list", "data": data})


async def list_models(request: Request) -> JSONResponse:
    """The prebuilt model list."""
    response: JSONResponse = request.state.models_response
    return response
