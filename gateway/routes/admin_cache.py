"""The cache's admin endpoints: ``GET /admin/cache/stats`` and ``DELETE /admin/cache``.

Both take ``namespace`` (a team id, or ``shared``) and ``alias`` as optional query
parameters; with neither, they cover the whole cache. Stats are entries and bytes stored now
(a scan: an admin call, not for dashboards, which have ``gateway_cache_requests_total``) and
hits, misses and the hit ratio counted by every replica. Handlers are wrapped by ``admin.py``'s
guard (master key only). Imports: ``gateway``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.accounting.requests import Body
from gateway.accounting.service import Accounting
from gateway.cache.backend import BackendUnavailable
from gateway.cache.service import ResponseCache
from gateway.errors import GatewayError, InvalidRequest


class CacheUnavailable(GatewayError):
    """The cache's store did not answer an admin call."""

    status, error_type, code = 503, "server_error", "cache_unavailable"


async def cache_stats(request: Request, accounting: Accounting, body: Body) -> Response:
    """``GET /admin/cache/stats?namespace=&alias=``."""
    cache, namespace, alias = _target(request)
    try:
        return JSONResponse(await cache.stats(namespace, alias))
    except BackendUnavailable as exc:
        raise CacheUnavailable(f"the cache store is unavailable: {exc}") from None


async def cache_purge(request: Request, accounting: Accounting, body: Body) -> Response:
    """``DELETE /admin/cache?namespace=&alias=``: the entries deleted."""
    cache, namespace, alias = _target(request)
    try:
        deleted = await cache.purge(namespace, alias)
    except BackendUnavailable as exc:
        raise CacheUnavailable(f"the cache store is unavailable: {exc}") from None
    return JSONResponse(
        {"object": "cache.purge", "namespace": namespace, "alias": alias, "deleted": deleted}
    )


def _target(request: Request) -> tuple[ResponseCache, str | None, str | None]:
    cache: ResponseCache | None = request.state.cache
    if cache is None:
        raise InvalidRequest("the response cache is off: the config has no 'cache' section")
    query = request.query_params
    for name in query:
        if name not in ("namespace", "alias"):
            raise InvalidRequest(
                f"unknown query parameter {name!r}; known: namespace, alias", param=name
            )
    return cache, query.get("namespace") or None, query.get("alias") or None
