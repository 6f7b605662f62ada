"""A small real DNS server for discovery tests: UDP on 127.0.0.1, a free port, in a thread.

It parses each query with dnspython (``dns.message.from_wire``) and answers with
``make_response``: the A or AAAA records of the name from a table the test changes while it
runs (``set``/``remove``), NOERROR with no records for a known name without addresses of
that family, NXDOMAIN for an unknown name. ``fail("servfail")`` answers SERVFAIL,
``fail("drop")`` answers nothing (the client times out), ``fail(None)`` answers again. TTLs
are 0. The test that starts it (``running()``) stops it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterator
from typing import Literal

import dns.exception
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Failure = Literal["servfail", "drop"]


class DnsServer:
    """Answers A/AAAA queries from ``records``; see the module docstring."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self._lock = threading.Lock()
        self._records: dict[str, tuple[str, ...]] = {}
        self._failure: Failure | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns-server", daemon=True)

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, the form ``server.dns_resolver`` takes."""
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, *addresses: str) -> None:
        """``name`` resolves to ``addresses`` (IPv4 and IPv6 literals) from now on."""
        with self._lock:
            self._records[_key(name)] = tuple(addresses)

    def remove(self, name: str) -> None:
        """``name`` does not exist from now on (NXDOMAIN)."""
        with self._lock:
            self._records.pop(_key(name), None)

    def fail(self, failure: Failure | None) -> None:
        """Answer SERVFAIL (``servfail``), nothing (``drop``), or normally again (None)."""
        with self._lock:
            self._failure = failure

    @contextlib.contextmanager
    def running(self) -> Iterator[DnsServer]:
        """Serve until the block ends, then stop the thread and close the socket."""
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=5)
            self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            reply = self._answer(wire)
            if reply is not None:
                self._sock.sendto(reply, peer)

    def _answer(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(query)
        with self._lock:
            failure, records = self._failure, dict(self._records)
        if failure == "drop":
            return None
        if failure == "servfail" or len(query.question) != 1:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        question = query.question[0]
        addresses = records.get(_key(question.name.to_text()))
        if addresses is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        version = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}.get(question.rdtype)
        matching = [a for a in addresses if ipaddress.ip_address(a).version == version]
        if matching:
            rdtype = dns.rdatatype.to_text(question.rdtype)
            answer = dns.rrset.from_text_list(question.name, 0, dns.rdataclass.IN, rdtype, matching)
            response.answer.append(answer)
        return response.to_wire()


def _key(name: str) -> str:
    return name.lower().rstrip(".")
