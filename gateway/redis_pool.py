"""Connection pools for the Redis URLs the config accepts: one server, or a Sentinel-watched one.

``redis://``, ``rediss://`` and ``unix://`` name one server (redis-py's own URL forms).
``redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]`` names the
Sentinels that watch the master called SERVICE: each new connection asks them where the
master is, so after a failover the pool reconnects to the promoted replica on its own (the
calls in between fail and count as the store being down, as any Redis outage does). The
user and password are the master's; the Sentinels are reached without auth.

Both pools block for a free connection up to the caller's timeout instead of failing at once,
and neither retries (a retried script could count an admission twice): the stores put every
call under their own deadline. Imports: redis only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, ConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff

SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://")
_SENTINEL = "redis+sentinel://"


@dataclass(frozen=True, slots=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def check_url(url: str, at: str) -> str:
    """``url`` if the gateway can connect with it, else ValueError naming ``at``."""
    if not url.startswith(SCHEMES):
        raise ValueError(f"{at}: must start with one of {', '.join(SCHEMES)}")
    if url.startswith(_SENTINEL):
        parse_sentinel_url(url, at)
    return url


def parse_sentinel_url(url: str, at: str = "redis_url") -> SentinelUrl:
    """Split a ``redis+sentinel://`` URL, or ValueError saying what is wrong."""
    form = f"{at}: expected {_SENTINEL}[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]"
    credentials, _, rest = url[len(_SENTINEL) :].rpartition("@")
    hosts, _, path = rest.partition("/")
    parts = [p for p in path.split("/") if p]
    if not hosts or not 1 <= len(parts) <= 2:
        raise ValueError(form)
    sentinels = []
    for host in hosts.split(","):
        split = urlsplit(f"//{host}")
        try:
            port = split.port
        except ValueError:
            port = None
        if not split.hostname or port is None:
            raise ValueError(f"{form}; {host!r} is not HOST:PORT")
        sentinels.append((split.hostname, port))
    if len(parts) == 2 and not parts[1].isdigit():
        raise ValueError(f"{form}; the database {parts[1]!r} is not a number")
    user, _, password = credentials.partition(":")
    return SentinelUrl(
        sentinels=tuple(sentinels),
        service=unquote(parts[0]),
        db=int(parts[1]) if len(parts) == 2 else 0,
        username=unquote(user) or None,
        password=unquote(password) or None,
    )


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's master lookup with the blocking pool's wait for a free connection."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        """Close the master's connections and the Sentinels' (the client closes only ours)."""
        await super().disconnect(inuse_connections)
        await self.sentinel_manager.aclose()


def connection_pool(
    url: str,
    *,
    max_connections: int,
    timeout_s: float,
    connect_timeout_s: float,
    decode_responses: bool = False,
) -> ConnectionPool:
    """A pool for ``url`` (checked by ``check_url``) with no retries and no socket timeout."""
    options: dict[str, Any] = {
        "socket_timeout": None,  # not left out: redis-py's default is 5 s
        "socket_connect_timeout": connect_timeout_s,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": decode_responses,
    }
    if not url.startswith(_SENTINEL):
        return BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout_s, **options
        )
    spec = parse_sentinel_url(url)
    # The Sentinels answer within the same deadline; their replies are parsed as bytes.
    manager = Sentinel(  # type: ignore[no-untyped-call]
        spec.sentinels,
        sentinel_kwargs={
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            "retry": Retry(NoBackoff(), 0),
        },
    )
    pool: ConnectionPool = _BlockingSentinelPool(  # type: ignore[no-untyped-call]
        spec.service,
        manager,
        max_connections=max_connections,
        timeout=timeout_s,
        db=spec.db,
        username=spec.username,
        password=spec.password,
        **options,
    )
    return pool
