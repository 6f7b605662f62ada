"""A and AAAA lookups of a group's DNS name with dnspython's asyncio resolver.

The answer is the set of addresses; NXDOMAIN or no records is the empty set (a headless
Service with no ready pods), any other failure (timeout, SERVFAIL, refused, unreachable
server) is ``ResolveError`` so the caller can keep what it knew. The nameserver is the
configured one (``server.dns_resolver``) or the system's (``/etc/resolv.conf``, search
domains included, as in a Kubernetes pod). No answer is cached here: every call asks.
Imports: ``dns`` (dnspython), ``gateway.discovery.settings``.
"""

from __future__ import annotations

import asyncio

import dns.asyncresolver
import dns.exception
import dns.resolver

from gateway.discovery.settings import Nameserver


class ResolveError(Exception):
    """The DNS server gave no usable answer (not even a negative one)."""


class DnsResolver:
    """Resolves names to IPv4 and IPv6 addresses, each call bounded by ``timeout_s``."""

    def __init__(self, nameserver: Nameserver | None, timeout_s: float) -> None:
        self._resolver = dns.asyncresolver.Resolver(configure=nameserver is None)
        if nameserver is not None:
            self._resolver.nameservers = [nameserver.host]
            self._resolver.port = nameserver.port
        self._resolver.timeout = self._resolver.lifetime = timeout_s

    async def addresses(self, name: str) -> frozenset[str]:
        """Every A and AAAA address of ``name`` (empty: the name has none or does not exist)."""
        answers = await asyncio.gather(
            self._lookup(name, "A"), self._lookup(name, "AAAA"), return_exceptions=True
        )
        found: set[str] = set()
        for answer in answers:
            if isinstance(answer, dns.resolver.NXDOMAIN):
                return frozenset()  # the name does not exist, whatever the other query says
        for answer in answers:
            if isinstance(answer, dns.exception.DNSException | OSError):
                raise ResolveError(str(answer) or type(answer).__name__) from answer
            if isinstance(answer, BaseException):
                raise answer
            found |= answer
        return frozenset(found)

    async def _lookup(self, name: str, rdtype: str) -> frozenset[str]:
        answer = await self._resolver.resolve(name, rdtype, raise_on_no_answer=False, search=True)
        return frozenset(record.to_text() for record in answer)
