"""GET /healthz (the process is alive), /readyz (config loaded and at least one deployment
reachable) and /metrics (Prometheus exposition).

The deployments probed are the roster's live ones: a discovery group counts as its current
members, whose first resolution happened before the app started serving.

Reachability is a TCP connect to each deployment's host, all at once with a short timeout,
and remembered for a couple of seconds so frequent probes cost nothing. A litellm deployment
without a base_url (a public provider) counts as reachable: probing the internet from a
readiness check would make every pod unready when one provider blips.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from gateway.config import Deployment
from gateway.roster import Roster

_PROBE_TIMEOUT_S = 1.0
_PROBE_TTL_S = 2.0


async def healthz(request: Request) -> Response:
    """Liveness: answering at all is the proof."""
    return PlainTextResponse("ok")


class Readiness:
    """Caches the result of probing every deployment."""

    def __init__(self, roster: Roster) -> None:
        self._roster = roster
        self._checked_at = float("-inf")
        self._reachable: dict[str, bool] = {}
        self._lock = asyncio.Lock()

    async def reachable(self) -> dict[str, bool]:
        """Deployment name -> reachable, probed at most every couple of seconds."""
        async with self._lock:
            now = asyncio.get_running_loop().time()
            if now - self._checked_at > _PROBE_TTL_S:
                deps = list(self._roster.live.values())
                results = await asyncio.gather(*(_probe(d) for d in deps))
                self._reachable = {d.name: ok for d, ok in zip(deps, results, strict=True)}
                self._checked_at = now
            return self._reachable


async def _probe(dep: Deployment) -> bool:
    if dep.base_url is None:
        return True
    url = urlsplit(dep.base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(url.hostname, port), _PROBE_TIMEOUT_S
        )
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def readyz(request: Request) -> Response:
    """Ready when at least one deployment answers a TCP connect."""
    readiness: Readiness = request.state.readiness
    reachable = await readiness.reachable()
    ready = any(reachable.values())
    body = {"ready": ready, "deployments": reachable}
    return JSONResponse(body, status_code=200 if ready else 503)


async def metrics_endpoint(request: Request) -> Response:
    """The Prometheus text exposition of this process (or of all workers, when several)."""
    registry = request.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
