"""The floor: the leanest passthrough proxy of the shape DESIGN.md measured best.

Starlette served by uvicorn (uvloop, httptools); the hot route ``/v1/{path}`` is a raw ASGI
handler mounted in the Starlette router; ONE ``aiohttp.ClientSession`` talks to the upstream;
the request body is forwarded as bytes, unchanged; a streamed response is relayed chunk by
chunk; ``gc.freeze()`` after start-up keeps full collections off the start-up heap. It does
nothing a gateway must do (no parsing, auth, routing, accounting), so the overhead benchmark
reads the gateway's figures as ratios to this one.

    python -m loadtests.bench.floor_proxy --port 8100 --upstream http://127.0.0.1:8000

``--upstream`` is the upstream's origin (a trailing ``/v1`` is dropped); the request path
is forwarded as it came.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
from collections.abc import AsyncIterator

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

UPSTREAM_TIMEOUT_S = 60.0
HOP_HEADERS = (b"content-type",)


class Passthrough:
    """Raw ASGI handler: forward method, path and body bytes; relay status, type and body."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/").removesuffix("/v1")
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.session is not None, "lifespan did not open the client session"
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope["headers"]
            if k in HOP_HEADERS
        }
        url = self.upstream + scope["path"]
        async with self.session.request(scope["method"], url, data=body, headers=headers) as up:
            content_type = up.headers.get("Content-Type", "application/json")
            start_headers = [(b"content-type", content_type.encode("latin-1"))]
            if content_type.startswith("text/event-stream"):
                await send(
                    {"type": "http.response.start", "status": up.status, "headers": start_headers}
                )
                async for chunk in up.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                return
            data = await up.read()
            start_headers.append((b"content-length", str(len(data)).encode()))
            await send(
                {"type": "http.response.start", "status": up.status, "headers": start_headers}
            )
            await send({"type": "http.response.body", "body": data})


async def healthz(request: Request) -> Response:
    """200 once the client session is open (the benchmark times start-up to this)."""
    return PlainTextResponse("ok")


def create_app(upstream: str) -> Starlette:
    """The floor proxy app; the lifespan owns the one client session."""
    passthrough = Passthrough(upstream)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
        timeout = aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT_S)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            passthrough.session = session
            gc.collect()
            gc.freeze()
            yield
        passthrough.session = None

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/{path:path}", passthrough, methods=["POST", "GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.floor_proxy")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="upstream origin, e.g. http://h:p")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(args.upstream),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
