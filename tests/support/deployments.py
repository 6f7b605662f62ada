"""Helpers for the stats tests: deployments, a fake clock and a tiny /metrics server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal

from aiohttp import web

from gateway.accounting.pricing import Price
from gateway.config import Deployment, Timeouts

QWEN = "Qwen/Qwen2.5-7B-Instruct"


def local(name: str = "qwen", base_url: str = "http://127.0.0.1:1/v1") -> Deployment:
    """A local Qwen worker on one H100 at $3.99/h."""
    return Deployment(
        name=name,
        kind="openai",
        model=QWEN,
        base_url=base_url,
        api_key_env=None,
        local=True,
        price=None,
        gpu_hour_usd=Decimal("3.99"),
        gpus=1,
        context_window=32768,
        max_concurrency=4,
        timeouts=Timeouts(),
    )


def paid(name: str = "mini") -> Deployment:
    """A paid API deployment at $0.15 / $0.60 per million tokens."""
    return Deployment(
        name=name,
        kind="openai",
        model="gpt-4o-mini",
        base_url="https://api.example/v1",
        api_key_env=None,
        local=False,
        price=Price.per_million(Decimal("0.15"), Decimal("0.60")),
        gpu_hour_usd=None,
        gpus=1,
        context_window=128000,
        max_concurrency=None,
        timeouts=Timeouts(),
    )


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def vllm_page(running: int, waiting: int, kv: float, model: str = QWEN) -> str:
    """A /metrics page with vLLM's gauges for ``model`` (one engine)."""
    lines = []
    for name, value in (
        ("vllm:num_requests_running", running),
        ("vllm:num_requests_waiting", waiting),
        ("vllm:kv_cache_usage_perc", kv),
    ):
        lines += [f"# HELP {name} doc", f"# TYPE {name} gauge"]
        lines.append(f'{name}{{engine="0",model_name="{model}"}} {float(value)}')
    return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves ``page`` at /metrics with ``status`` on a free loopback port."""

    def __init__(self) -> None:
        self.page = vllm_page(0, 0, 0.0)
        self.status = 200
        self.url = ""

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(text=self.page, status=self.status)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[MetricsServer]:
        """Serve until the block ends."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}/v1"
            yield self
        finally:
            await runner.cleanup()
