"""The one place that knows a request's order: plan -> call with fallbacks -> account.

Routes hand it parsed requests; it asks ``routing.choose_plan`` for the deployments to try,
calls them in turn until one answers (a connect error, timeout, 5xx or 429 before any byte
reached the client moves to the next), keeps per-deployment state, and records metrics. The
cache (before the plan) and the spend ledger (after the answer) slot in here, not in routes.
Imports: ``gateway`` modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from time import monotonic as _now

from gateway import metrics
from gateway.config import Config, Deployment, Kind
from gateway.errors import (
    GatewayError,
    UpstreamFailed,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.routing import FleetState, choose_plan
from gateway.upstreams.base import Call, Reply, Stream, Upstream, UpstreamError, Usage


@dataclass(slots=True)
class OpenStream:
    """A stream that one deployment has started answering."""

    deployment: Deployment
    stream: Stream
    started: float


class Dispatcher:
    """Serves requests for aliases from the configured deployments."""

    def __init__(self, config: Config, upstreams: Mapping[Kind, Upstream]) -> None:
        self.config = config
        self.fleet = FleetState(config)
        self._upstreams = upstreams

    async def complete(self, alias: str, call: Call) -> tuple[Reply, Deployment]:
        """A non-streaming answer from the first deployment in the plan that gives one."""
        errors: list[UpstreamError] = []
        for dep in self._plan(alias, errors):
            started = self._begin(dep)
            try:
                reply = await self._upstreams[dep.kind].send(dep, call)
            except UpstreamError as exc:
                self._failed(dep, started, exc)
                errors.append(exc)
                continue
            except BaseException:
                self._end(dep, started, "aborted")
                raise
            self._end(dep, started, "ok")
            self.account(alias, dep, reply.usage)
            return reply, dep
        raise self._exhausted(alias, errors)

    async def open_stream(self, alias: str, call: Call) -> OpenStream:
        """A stream from the first deployment that starts one; ``close_stream`` ends it."""
        errors: list[UpstreamError] = []
        for dep in self._plan(alias, errors):
            started = self._begin(dep)
            try:
                stream = await self._upstreams[dep.kind].open_stream(dep, call)
            except UpstreamError as exc:
                self._failed(dep, started, exc)
                errors.append(exc)
                continue
            except BaseException:
                self._end(dep, started, "aborted")
                raise
            return OpenStream(dep, stream, started)
        raise self._exhausted(alias, errors)

    async def close_stream(self, alias: str, opened: OpenStream, outcome: str) -> None:
        """Release the upstream and record how the stream ended (ok, broken, aborted)."""
        await opened.stream.aclose()
        self._end(opened.deployment, opened.started, outcome)
        self.account(alias, opened.deployment, opened.stream.usage)

    def account(self, alias: str, dep: Deployment, usage: Usage | None) -> None:
        """Count the tokens of one answer (the spend ledger hooks in here)."""
        if usage is None:
            return
        metrics.child(metrics.TOKENS, alias, dep.name, dep.provider, "input").inc(
            usage.prompt_tokens
        )
        metrics.child(metrics.TOKENS, alias, dep.name, dep.provider, "output").inc(
            usage.completion_tokens
        )

    def _plan(self, alias: str, errors: list[UpstreamError]) -> list[Deployment]:
        plan, wait = choose_plan(self.config, alias, self.fleet, _now())
        if not plan:
            err = UpstreamUnavailable(
                f"every deployment of '{alias}' is rate limited; retry in {wait or 0:.1f}s"
            )
            err.headers["Retry-After"] = str(max(1, round(wait or 1)))
            raise err
        ready = []
        for dep in plan:
            limit = dep.max_concurrency
            if limit is not None and self.fleet[dep.name].inflight >= limit:
                errors.append(UpstreamError(dep.name, "saturated", f"at max_concurrency {limit}"))
                metrics.child(metrics.UPSTREAM_ERRORS, dep.name, "saturated").inc()
            else:
                ready.append(dep)
        return ready

    def _begin(self, dep: Deployment) -> float:
        self.fleet[dep.name].inflight += 1
        metrics.child(metrics.UPSTREAM_INFLIGHT, dep.name).inc()
        return _now()

    def _end(self, dep: Deployment, started: float, outcome: str) -> None:
        self.fleet[dep.name].inflight -= 1
        metrics.child(metrics.UPSTREAM_INFLIGHT, dep.name).dec()
        metrics.child(metrics.UPSTREAM_DURATION, dep.name, dep.provider, outcome).observe(
            _now() - started
        )
        if outcome == "ok":
            self.fleet.recovered(dep.name)

    def _failed(self, dep: Deployment, started: float, exc: UpstreamError) -> None:
        self._end(dep, started, "error")
        metrics.child(metrics.UPSTREAM_ERRORS, dep.name, exc.kind).inc()
        if exc.kind == "rate_limited":
            pause = (
                exc.retry_after_s
                if exc.retry_after_s is not None
                else self.config.server.cooldown_s
            )
            self.fleet.cool_down(dep.name, _now() + pause, rate_limited=True)
        elif exc.kind in ("connect", "timeout", "status"):
            self.fleet.cool_down(
                dep.name, _now() + self.config.server.cooldown_s, rate_limited=False
            )

    def _exhausted(self, alias: str, errors: list[UpstreamError]) -> GatewayError:
        tried = "; ".join(f"{e.deployment}: {e.detail}" for e in errors)
        message = f"no deployment of '{alias}' could answer ({len(errors)} tried): {tried}"
        kinds = {e.kind for e in errors}
        if errors and errors[-1].kind == "timeout":
            return UpstreamTimeout(message)
        if kinds <= {"connect", "saturated", "rate_limited"}:
            err: GatewayError = UpstreamUnavailable(message)
            waits = [e.retry_after_s for e in errors if e.retry_after_s is not None]
            if waits:
                err.headers["Retry-After"] = str(max(1, round(min(waits))))
            return err
        return UpstreamFailed(message)
