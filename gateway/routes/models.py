"""GET /v1/models and /v1/models/{model}: the aliases from config, in OpenAI's shapes."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.config import Config
from gateway.errors import ModelNotFound


class ModelCatalog:
    """The model objects, built once per config (a reload builds them again: ``update``)."""

    def __init__(self, config: Config) -> None:
        self.models: dict[str, dict[str, object]] = {}
        self.update(config)

    def update(self, config: Config) -> None:
        """The aliases of ``config`` (one already listed keeps its ``created``)."""
        created = int(time.time())
        old = self.models
        self.models = {
            name: old.get(name)
            or {"id": name, "object": "model", "created": created, "owned_by": "token-gateway"}
            for name in config.aliases
        }
        self.listing = JSONResponse({"object": "list", "data": list(self.models.values())})


async def list_models(request: Request) -> JSONResponse:
    """Every alias."""
    catalog: ModelCatalog = request.state.models
    return catalog.listing


async def retrieve_model(request: Request) -> JSONResponse:
    """One alias, or 404 naming the known ones."""
    catalog: ModelCatalog = request.state.models
    name = request.path_params["model"]
    model = catalog.models.get(name)
    if model is None:
        known = ", ".join(sorted(catalog.models))
        raise ModelNotFound(f"the model '{name}' does not exist; known models: {known}")
    return JSONResponse(model)
