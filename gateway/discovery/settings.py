"""A deployment's ``discovery:`` block and ``server.dns_resolver``, validated.

A deployment with ``discovery`` is a group: one member deployment per address its ``dns``
name (a Kubernetes headless Service) resolves to, each at ``http://IP:port<path>``.
``dns_resolver`` is ``host:port``, ``[ipv6]:port`` or a bare IP literal (port 53); without it
the system resolver (``/etc/resolv.conf``) is used. Imports: stdlib.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DISCOVERY_KEYS = {"dns", "port", "interval_s", "path"}
_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")

Check = Callable[[object, str], Any]


@dataclass(frozen=True, slots=True)
class Discovery:
    """Where a group's members are found and how they are called."""

    dns: str
    """The name whose A and AAAA records are the members (a headless Service)."""
    port: int = 8000
    interval_s: float = 10.0
    path: str = "/v1"
    """Appended to ``http://IP:port`` to make a member's base_url."""


@dataclass(frozen=True, slots=True)
class Nameserver:
    """The DNS server discovery asks instead of the system resolver."""

    host: str
    port: int = 53


def parse_discovery(spec: Mapping[str, Any], at: str, *, number: Check) -> Discovery:
    """Validate a ``discovery:`` block (unknown fields already rejected by the caller)."""
    default = Discovery(dns="-")
    dns = spec.get("dns")
    if not isinstance(dns, str) or not _is_hostname(dns):
        raise ValueError(
            f"{at}.dns: must be a DNS name (letters, digits, - and _ in dotted labels)"
        )
    port = spec.get("port", default.port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"{at}.port: must be a port number from 1 to 65535, got {port!r}")
    path = spec.get("path", default.path)
    if not isinstance(path, str) or not path.startswith("/") or any(c in path for c in "?# "):
        raise ValueError(f"{at}.path: must be a URL path starting with /, got {path!r}")
    return Discovery(
        dns=dns,
        port=port,
        interval_s=number(spec.get("interval_s", default.interval_s), f"{at}.interval_s"),
        path=path.rstrip("/"),
    )


def parse_nameserver(value: object, at: str) -> Nameserver:
    """``127.0.0.1:5353``, ``[::1]:5353`` or a bare ``10.96.0.10`` / ``fd00::a``."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{at}: must be host:port with an IP literal host, got {value!r}")
    host, port = value, "53"
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{at}: an IPv6 address with a port is written [addr]:port")
        port = rest[1:] if rest else port
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{at}: {host!r} is not an IP address (a resolver has no name)") from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{at}: the port must be from 1 to 65535, got {port!r}")
    return Nameserver(host, int(port))


def _is_hostname(name: str) -> bool:
    labels = name.removesuffix(".").split(".")
    return len(name) <= 253 and all(_LABEL.match(label) for label in labels)
