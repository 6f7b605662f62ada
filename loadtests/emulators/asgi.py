"""The raw ASGI plumbing the emulators share: routing, bodies, JSON and SSE replies, serving.

No framework on purpose: the overhead benchmark runs the gateway against a zero-latency
emulator on a 2-core box, and the emulator must not be the bottleneck. Served by uvicorn with
uvloop and httptools, access log off, and ``gc.freeze()`` once started (DESIGN.md, the
measured table). Imports only the standard library, uvicorn and uvloop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
import uvloop

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]

JSON_TYPE = b"application/json"
SSE_TYPE = b"text/event-stream; charset=utf-8"

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: object) -> bytes:
    """Compact JSON bytes, as pydantic's ``model_dump_json`` and Starlette's JSONResponse."""
    return _encoder.encode(value).encode()


@dataclass(slots=True)
class Request:
    """One HTTP request: its ASGI scope and channels, and the body once read."""

    scope: Message
    receive: Receive
    send: Send
    body: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower-case), or None."""
        for key, value in self.scope["headers"]:
            if key == name:
                return bytes(value)
        return None


Handler = Callable[[Request], Coroutine[Any, Any, None]]


async def read_body(receive: Receive) -> bytes:
    """The whole request body."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    headers: Headers = (),
    content_type: bytes | None = JSON_TYPE,
) -> None:
    """Send a complete response (no content-type header when ``content_type`` is None)."""
    all_headers = [(b"content-length", str(len(body)).encode()), *headers]
    if content_type is not None:
        all_headers.insert(0, (b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def start_stream(send: Send, headers: Headers = ()) -> None:
    """Start a 200 ``text/event-stream`` response (chunked, no content-length)."""
    all_headers = [(b"content-type", SSE_TYPE), *headers]
    await send({"type": "http.response.start", "status": 200, "headers": all_headers})


async def send_bytes(send: Send, data: bytes, *, last: bool = False) -> None:
    """Send a piece of a started response."""
    await send({"type": "http.response.body", "body": data, "more_body": not last})


async def wait_for_disconnect(receive: Receive) -> None:
    """Return when the client has gone (after the body was read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def cancel_on_disconnect(request: Request, work: Coroutine[Any, Any, None]) -> bool:
    """Run ``work``; cancel it if the client disconnects first. True when it was aborted."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_for_disconnect(request.receive))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True
    finally:
        watcher.cancel()
        task.cancel()


class Router:
    """An ASGI app: exact (method, path) routes, and a fallback for everything else."""

    def __init__(self, routes: dict[tuple[str, str], Handler], not_found: Handler) -> None:
        self.routes = routes
        self.not_found = not_found

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive, send)
        if scope["method"] in ("POST", "PUT"):
            request.body = await read_body(receive)
        handler = self.routes.get((scope["method"], scope["path"]), self.not_found)
        await handler(request)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _Server(uvicorn.Server):
    """uvicorn's server, announcing readiness once its sockets listen."""

    def __init__(self, config: uvicorn.Config, ready_line: str) -> None:
        super().__init__(config)
        self.ready_line = ready_line

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            gc.collect()
            gc.freeze()  # the start-up heap never changes: keep full GC passes off it
            sys.stdout.write(self.ready_line + "\n")
            sys.stdout.flush()


def serve(app: Router, host: str, port: int) -> None:
    """Serve ``app`` until SIGTERM/SIGINT; print ``ready http://HOST:PORT`` once listening."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="none",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    uvloop.run(_Server(config, f"ready http://{host}:{port}").serve())
