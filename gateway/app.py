"""create_app(config) -> the ASGI application: routes, error handlers, lifespan.

The lifespan opens the one pooled aiohttp session (and litellm, if a deployment needs it),
builds the roster, the dispatcher, accounting (its store and ledger writer), the response
cache (if configured) and the deployments' operator states (``gateway.control``, read once
before serving), resolves every discovery group once (so a group has its members before the
first request and the first /readyz), hands them to routes as typed state,
freezes the start-up heap so full GC passes stop costing p99 (DESIGN.md: ~22 ms spikes cut
to ~1 ms), runs the worker scraper, the discovery watchers, the control follower and the
config reloader (SIGHUP and file polling), and closes everything on shutdown.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TypedDict

import aiohttp
from prometheus_client import REGISTRY, CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from gateway.accounting.service import Accounting
from gateway.asgi import Receive, Scope, Send
from gateway.cache.service import ResponseCache
from gateway.config import Config, Kind
from gateway.control.store import control_store
from gateway.control.sync import Control
from gateway.discovery.group import watchers
from gateway.dispatch import Dispatcher
from gateway.errors import (
    GatewayError,
    handle_gateway_error,
    handle_http_exception,
    handle_unexpected,
)
from gateway.metrics_registry import metrics_registry
from gateway.reload import Reloader
from gateway.roster import Roster
from gateway.routes.admin import admin_routes
from gateway.routes.explain import ExplainRoute
from gateway.routes.health import Readiness, healthz, metrics_endpoint, readyz
from gateway.routes.inference import InferenceRoute
from gateway.routes.models import ModelCatalog, list_models, retrieve_model
from gateway.stats.circuit import CircuitSettings
from gateway.stats.fleet import FleetStats, StatsSettings
from gateway.stats.worker_scraper import WorkerScraper
from gateway.upstreams.base import Upstream
from gateway.upstreams.openai_compat import OpenAICompatUpstream


class State(TypedDict):
    """What routes find in ``request.state`` / ``scope["state"]``."""

    config: Config
    """The config at start (a reload swaps ``dispatcher.config``)."""
    dispatcher: Dispatcher
    accounting: Accounting
    cache: ResponseCache | None
    readiness: Readiness
    models: ModelCatalog
    metrics_registry: CollectorRegistry
    control: Control


def create_app(config: Config, path: str | None = None) -> HotPaths:
    """The gateway as an ASGI app serving ``config``, reloaded from ``path`` (the file it
    was loaded from) on SIGHUP and when it changes (``gateway.reload``); None: never."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        connector = aiohttp.TCPConnector(
            limit=0, ttl_dns_cache=300, keepalive_timeout=config.server.upstream_idle_s
        )
        async with aiohttp.ClientSession(connector=connector) as session:
            upstreams: dict[Kind, Upstream] = {"openai": OpenAICompatUpstream(session)}
            if any(d.kind == "litellm" for d in config.deployments.values()):
                from gateway.upstreams.litellm_bridge import LiteLLMUpstream

                upstreams["litellm"] = LiteLLMUpstream()
            roster = Roster(config)
            scraper = WorkerScraper(
                session,
                roster.live.values(),
                interval_s=config.server.scrape_interval_s,
                stale_after_s=config.server.stale_after_s,
            )
            settings = StatsSettings(circuit=CircuitSettings(cooldown_s=config.server.cooldown_s))
            fleet = FleetStats(roster.live.values(), samples=scraper, settings=settings)
            accounting = Accounting.for_config(config)
            cache = ResponseCache.for_settings(config.cache) if config.cache.enabled else None
            dispatcher = Dispatcher(config, upstreams, fleet, roster)

            def busy(name: str) -> bool:
                return fleet.inflight(name) > 0

            control = Control(roster, control_store(config.accounting.redis_url), busy)
            for listener in (fleet, scraper, accounting.costing, dispatcher, control):
                roster.subscribe(listener)
            groups = watchers(roster, config.server.dns_resolver, busy)
            await asyncio.gather(control.load(), *(group.refresh() for group in groups))
            models = ModelCatalog(config)
            runs = [scraper.run(), control.run(), *(group.run() for group in groups)]
            if path is not None:
                reloader = Reloader(path, config, roster, dispatcher, models, upstreams)
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.wake)
                runs.append(reloader.run())
            gc.collect()
            gc.freeze()
            async with asyncio.TaskGroup() as background:
                tasks = [background.create_task(run) for run in runs]
                accounting.start()
                if cache is not None:
                    cache.start()
                try:
                    yield State(
                        config=config,
                        dispatcher=dispatcher,
                        accounting=accounting,
                        cache=cache,
                        readiness=Readiness(roster),
                        models=models,
                        metrics_registry=metrics_registry() or REGISTRY,
                        control=control,
                    )
                finally:
                    for task in tasks:
                        task.cancel()
                    if path is not None:
                        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
                    await control.store.aclose()
                    if cache is not None:
                        await cache.aclose()
                    await accounting.aclose()

    hot = {
        "/v1/chat/completions": InferenceRoute("chat/completions"),
        "/v1/completions": InferenceRoute("completions"),
        "/v1/embeddings": InferenceRoute("embeddings"),
    }
    routes = [
        *(Route(path, route, methods=["POST"]) for path, route in hot.items()),
        Route("/v1/route/explain", ExplainRoute(), methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *admin_routes(),
    ]
    handlers = {
        GatewayError: handle_gateway_error,
        HTTPException: handle_http_exception,
        Exception: handle_unexpected,
    }
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    return HotPaths(app, hot)


class HotPaths:
    """Sends the inference POSTs straight to their raw ASGI handlers, everything else (and
    the lifespan) through Starlette.

    Measured with the overhead benchmark: Starlette's error middleware and router wrap every
    ``send`` in two more function layers, a few percent of the gateway's CPU per request.
    The handlers catch their own errors (``routes/inference.py``), so nothing is lost.
    """

    def __init__(self, app: Starlette, hot: Mapping[str, InferenceRoute]) -> None:
        self.app, self._hot = app, dict(hot)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            route = self._hot.get(scope["path"])
            if route is not None:
                await route(scope, receive, send)
                return
        await self.app(scope, receive, send)
