"""What the cache does with one request: its key, whether to look up, whether to store.

The key is a hash of everything that changes the answer: the endpoint, the resolved alias
and every body field except those that only change how it is delivered (``stream``,
``stream_options``) or who asked (``user``), serialised canonically (sorted keys, no
whitespace), so the same question asked streamed or not, in any key order, is one entry.
It is namespaced by the caller's team unless the alias shares its cache. The request's own
``Cache-Control`` (``no-cache``: skip the lookup and refresh the entry; ``no-store``: do not
write) and ``x-gateway-cache-ttl`` (seconds) adjust the plan; a bad TTL is a 400.
Imports: stdlib, ``gateway.asgi``, ``gateway.errors``, ``gateway.cache.settings``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from gateway.asgi import Scope
from gateway.cache.settings import AliasCache, CacheSettings, Mode
from gateway.errors import InvalidRequest

TTL_HEADER = b"x-gateway-cache-ttl"
IGNORED_FIELDS = frozenset({"stream", "stream_options", "user"})
SHARED_NAMESPACE = "~shared"
"""The namespace of aliases that share their cache: ``~`` is never in a team id."""
Result = Literal["hit", "miss", "bypass", "refresh"]


@dataclass(frozen=True, slots=True)
class CachePlan:
    """The cache's part in one request."""

    namespace: str
    alias: str
    digest: str
    read: bool
    write: bool
    ttl_s: float

    @property
    def key(self) -> str:
        """The entry's Redis key; the digest is the hash tag, so its lock shares the slot."""
        return f"gw:cache:{part(self.namespace)}:{part(self.alias)}:{{{self.digest}}}"

    @property
    def lock(self) -> str:
        """The single-flight lock's key."""
        return self.key + ":lock"


def plan_for(
    scope: Scope,
    endpoint: str,
    parsed: dict[str, Any],
    alias: str,
    team_id: str,
    settings: CacheSettings,
    alias_cache: AliasCache | None,
    key_mode: Mode | None,
) -> CachePlan | None:
    """The plan, or None when this request bypasses the cache (its mode excludes it, or it
    says both ``no-cache`` and ``no-store``)."""
    mode = key_mode or (alias_cache and alias_cache.mode) or settings.mode
    if mode == "off" or (mode == "deterministic" and not deterministic(endpoint, parsed)):
        return None
    read, write, ttl_s = _directives(scope)
    if not read and not write:
        return None
    namespace = (alias_cache and alias_cache.namespace) or settings.namespace
    return CachePlan(
        namespace=SHARED_NAMESPACE if namespace == "shared" else team_id,
        alias=alias,
        digest=digest(endpoint, alias, parsed),
        read=read,
        write=write,
        ttl_s=ttl_s or (alias_cache and alias_cache.ttl_s) or settings.ttl_s,
    )


def deterministic(endpoint: str, parsed: dict[str, Any]) -> bool:
    """Whether the request asks for a repeatable answer: embeddings, temperature 0, a seed."""
    if endpoint == "embeddings":
        return True
    temperature = parsed.get("temperature")
    seed = parsed.get("seed")
    return temperature == 0 or (isinstance(seed, int) and not isinstance(seed, bool))


def digest(endpoint: str, alias: str, parsed: dict[str, Any]) -> str:
    """The canonical hash of what changes the answer (hex, 128 bits)."""
    fields = {k: v for k, v in parsed.items() if k not in IGNORED_FIELDS}
    fields["model"] = alias
    canonical = json.dumps(
        [endpoint, fields], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    # surrogatepass: JSON may escape a lone surrogate ("\\ud800"), which strict UTF-8 refuses.
    data = canonical.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def part(name: str) -> str:
    """A namespace or alias as a key part: no ``:``, braces or glob characters left."""
    return quote(name, safe="-._~")


def _directives(scope: Scope) -> tuple[bool, bool, float | None]:
    """(read, write, ttl_s) from ``Cache-Control`` and ``x-gateway-cache-ttl``."""
    read = write = True
    ttl_s: float | None = None
    for name, value in scope["headers"]:
        if name == b"cache-control":
            directives = {d.strip().split(b"=")[0].lower() for d in value.split(b",")}
            read = read and b"no-cache" not in directives
            write = write and b"no-store" not in directives
        elif name == TTL_HEADER:
            ttl_s = _ttl(value)
    return read, write, ttl_s


def _ttl(raw: bytes) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InvalidRequest(
            f"header x-gateway-cache-ttl: must be a positive number of seconds, "
            f"got {raw.decode('latin-1')!r}",
            param="x-gateway-cache-ttl",
        )
    return value
