"""The ``cache:`` section of the config and an alias's ``cache:`` overrides.

No section: no cache (and no ``x-gateway-cache`` header). With one, every alias caches in its
``mode`` (``deterministic`` unless set: only requests with temperature 0 or a seed, and all
embeddings) in the namespace of the caller's team; an alias or a virtual key may say
otherwise. With no ``redis_url`` here the accounting's is used, and with neither the cache
lives in this process (one replica). Imports: stdlib.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from gateway.redis_pool import check_url

Mode = Literal["off", "deterministic", "always"]
Namespace = Literal["team", "shared"]
MODES: tuple[Mode, ...] = ("off", "deterministic", "always")
_NAMESPACES = ("team", "shared")


@dataclass(frozen=True, slots=True)
class AliasCache:
    """An alias's own settings; None fields take the section's."""

    mode: Mode | None = None
    ttl_s: float | None = None
    namespace: Namespace | None = None


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """How the response cache behaves; ``enabled`` is False when the config has no section."""

    enabled: bool = False
    mode: Mode = "deterministic"
    ttl_s: float = 3600.0
    namespace: Namespace = "team"
    redis_url: str | None = None
    timeout_s: float = 0.025
    """Per Redis operation; a slower answer is a bypass, never a wait. A round trip takes
    ~0.2 ms, but the deadline also runs while the event loop serves other requests: at full
    load on 2 cores, 10 ms made a healthy Redis time out (measured), 25 ms did not."""
    retry_s: float = 1.0
    """After Redis failed, the cache is skipped for this long (one probe per interval)."""
    wait_s: float = 30.0
    """How long identical requests wait for the one that went upstream before going too."""
    lock_ttl_s: float = 120.0
    """The single-flight lock's expiry: a leader that died frees it after this."""
    poll_s: float = 0.01
    """How often a request waiting on another replica's call checks for its result."""
    compress_min_bytes: int = 1024
    max_entry_bytes: int = 1024 * 1024
    memory_max_bytes: int = 64 * 1024 * 1024
    """The in-process cache's size (used when there is no Redis)."""


Check = Callable[[object, str], Any]


def parse_cache(
    spec: Mapping[str, Any], redis_fallback: str | None, *, number: Check, integer: Check
) -> CacheSettings:
    """Validate the section (unknown fields already rejected by the caller)."""
    d = CacheSettings()
    at = "cache"
    url = spec.get("redis_url") or redis_fallback
    if url is not None:
        url = check_url(str(url), f"{at}.redis_url")

    def positive(name: str, default: float) -> float:
        value: float = number(spec.get(name, default), f"{at}.{name}")
        if value <= 0:
            raise ValueError(f"{at}.{name}: must be positive, got {value}")
        return value

    return CacheSettings(
        enabled=True,
        mode=parse_mode(spec.get("mode", d.mode), f"{at}.mode") or d.mode,
        ttl_s=positive("ttl_s", d.ttl_s),
        namespace=_namespace(spec.get("namespace", d.namespace), f"{at}.namespace") or "team",
        redis_url=None if url is None else str(url),
        timeout_s=positive("timeout_ms", d.timeout_s * 1000) / 1000,
        retry_s=positive("retry_s", d.retry_s),
        wait_s=positive("wait_s", d.wait_s),
        lock_ttl_s=positive("lock_ttl_s", d.lock_ttl_s),
        poll_s=positive("poll_ms", d.poll_s * 1000) / 1000,
        compress_min_bytes=integer(
            spec.get("compress_min_bytes", d.compress_min_bytes), f"{at}.compress_min_bytes"
        ),
        max_entry_bytes=integer(
            spec.get("max_entry_bytes", d.max_entry_bytes), f"{at}.max_entry_bytes"
        ),
        memory_max_bytes=integer(
            spec.get("memory_max_bytes", d.memory_max_bytes), f"{at}.memory_max_bytes"
        ),
    )


def parse_alias_cache(spec: Mapping[str, Any], at: str, *, number: Check) -> AliasCache:
    """An alias's ``cache:`` block (unknown fields already rejected by the caller)."""
    ttl = spec.get("ttl_s")
    ttl_s = None if ttl is None else number(ttl, f"{at}.ttl_s")
    if ttl_s is not None and ttl_s <= 0:
        raise ValueError(f"{at}.ttl_s: must be positive, got {ttl_s}")
    return AliasCache(
        mode=parse_mode(spec.get("mode"), f"{at}.mode"),
        ttl_s=ttl_s,
        namespace=_namespace(spec.get("namespace"), f"{at}.namespace"),
    )


def parse_mode(value: object, at: str) -> Mode | None:
    """``off``, ``deterministic`` or ``always`` (None stays None); YAML's bare ``off`` too."""
    if value is False:  # YAML 1.1 reads a bare `off` as false
        value = "off"
    if value is None or value in MODES:
        return value
    raise ValueError(f"{at}: must be one of {', '.join(MODES)}, got {value!r}")


def _namespace(value: object, at: str) -> Namespace | None:
    if value is None or value in _NAMESPACES:
        return cast("Namespace | None", value)
    raise ValueError(f"{at}: must be 'team' or 'shared', got {value!r}")


CACHE_KEYS = {
    "mode",
    "ttl_s",
    "namespace",
    "redis_url",
    "timeout_ms",
    "retry_s",
    "wait_s",
    "lock_ttl_s",
    "poll_ms",
    "compress_min_bytes",
    "max_entry_bytes",
    "memory_max_bytes",
}
ALIAS_CACHE_KEYS = {"mode", "ttl_s", "namespace"}
