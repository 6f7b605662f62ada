"""Keep-alive on both sides of the gateway: no request goes out on a connection the other end
is closing.

An HTTP server closes an idle keep-alive connection on a timer. A request the client sends
just then is lost: the client reads a reset (the openai SDK raises ``APIConnectionError``),
and a busy event loop widens that window to the length of one loop iteration. The side that
closes must therefore wait longer than the side that reuses:

- clients reuse an idle connection within their own expiry (the openai SDK and httpx 5 s,
  a cloud load balancer 60 s), so the gateway keeps idle client connections for
  ``server.keep_alive_s`` (75 s), not uvicorn's 5 s;
- workers (vLLM and SGLang serve with uvicorn's 5 s) close theirs, so the gateway reuses an
  idle upstream connection only within ``server.upstream_idle_s`` (4 s), then dials anew.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtests.fleet import start_gateway
from tests.support.services import demo_deployment, write_config

pytestmark = pytest.mark.e2e

OPENAI_SDK_IDLE_EXPIRY_S = 5.0
"""How long the openai SDK's pool (httpx's default) keeps an idle connection for reuse."""

WORKER_CLOSE_AFTER_S = 1.0
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-keepalive",
        "object": "chat.completion",
        "created": 0,
        "model": "qwen",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
).encode()


def test_an_idle_client_connection_outlives_the_openai_sdks_own_idle_expiry(
    gateway_url: str,
) -> None:
    host, port = gateway_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() is not None
        first_socket = connection.sock

        time.sleep(OPENAI_SDK_IDLE_EXPIRY_S + 1.0)  # the SDK would still reuse it until 5 s

        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        assert connection.sock is first_socket, "the gateway closed the idle connection"
    finally:
        connection.close()


class ClosingWorker(socketserver.ThreadingTCPServer):
    """A stand-in for a loaded vLLM worker at the moment its keep-alive timer fires: a request
    that arrives on a connection idle for more than ``WORKER_CLOSE_AFTER_S`` is read and
    dropped unanswered, the connection closed (the server's close crossed the request). Any
    other ``POST .../chat/completions`` gets a fixed OpenAI chat completion; other paths 404.
    The real race needs a busy loop and exact timing; this makes it happen every time."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _WorkerConnection)
        self.answered = 0
        self.dropped = 0

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port


class _WorkerConnection(socketserver.StreamRequestHandler):
    server: ClosingWorker

    def handle(self) -> None:
        idle_since: float | None = None
        while request_line := self.rfile.readline():
            headers = {}
            while (line := self.rfile.readline().strip()) != b"":
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            self.rfile.read(int(headers.get("content-length", "0")))
            if idle_since is not None and time.monotonic() - idle_since > WORKER_CLOSE_AFTER_S:
                self.server.dropped += 1
                return
            found = request_line.startswith(b"POST ") and b"/chat/completions" in request_line
            body = COMPLETION if found else b"{}"
            status = b"200 OK" if found else b"404 Not Found"
            self.wfile.write(
                b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            self.server.answered += found
            idle_since = time.monotonic()


@contextlib.contextmanager
def closing_worker() -> Iterator[ClosingWorker]:
    worker = ClosingWorker()
    thread = threading.Thread(target=worker.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield worker
    finally:
        worker.shutdown()
        worker.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("upstream_idle_s", "dropped"),
    [
        pytest.param(0.5, 0, id="reuse-window-shorter-than-the-worker-keeps-it"),
        pytest.param(3.0, 1, id="reuse-window-longer-control"),
    ],
)
def test_an_upstream_connection_idle_past_upstream_idle_s_is_not_reused(
    tmp_path: Path, upstream_idle_s: float, dropped: int
) -> None:
    with contextlib.ExitStack() as stack:
        worker = stack.enter_context(closing_worker())
        deployment = demo_deployment("openai-gpt-4o-mini")
        deployment.update(name="worker", base_url=f"http://127.0.0.1:{worker.port}/v1")
        config = {
            "server": {"upstream_idle_s": upstream_idle_s, "cooldown_s": 0.1},
            "deployments": [deployment],
            "aliases": {"qwen": {"deployments": ["worker"]}},
        }
        gateway = start_gateway(stack, write_config(tmp_path / "gateway.yaml", config), {})
        statuses = []
        for _ in range(2):
            connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
            body = {"model": "qwen", "messages": [{"role": "user", "content": "hi"}]}
            connection.request("POST", "/v1/chat/completions", json.dumps(body))
            response = connection.getresponse()
            response.read()
            connection.close()
            statuses.append(response.status)
            time.sleep(WORKER_CLOSE_AFTER_S + 0.5)

    # The control proves the double bites: with a reuse window longer than the worker keeps
    # an idle connection, the second request goes out on the stale one and is lost.
    assert worker.dropped == dropped
    if dropped == 0:
        assert statuses == [200, 200]
        assert worker.answered == 2
    else:
        assert statuses[0] == 200 and statuses[1] >= 500
