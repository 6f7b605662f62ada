"""Routing and calling: decide -> call the plan's deployments with fallbacks.

Routes hand it parsed requests. ``decide`` builds the policy's inputs (the request's
features, a ``Candidate`` snapshot from ``FleetStats`` per deployment the roster has for the
alias now) and asks the alias's policy (or the one a header names), restricted to the
deployments the request's data class allows (``policies.privacy.Pinned``), for a plan; ``complete``
and ``open_stream`` call the plan's deployments in turn until one answers (a connect error,
timeout, 5xx or 429 before any byte reached the client moves to the next), reporting every
call to ``FleetStats`` (in-flight, EWMAs, circuit breaker). The request's whole order lives in
``routes/inference.py``: the cache lookup comes before ``decide`` (a hit never reaches it),
admission after it, and accounting and the cache write once the route knows how the request
ended. A deployment retired from the roster, or held out by an operator (draining,
disabled), after the decision is skipped like a full one; held ones are never candidates.
``reconfigure`` serves a reloaded config from the next decision on. Imports: ``gateway``
modules and ``policies``.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass
from time import monotonic as _now

from gateway import metrics
from gateway.config import Alias, Config, Deployment, Kind
from gateway.controls import Controls
from gateway.errors import (
    GatewayError,
    ModelNotFound,
    UpstreamFailed,
    UpstreamTimeout,
    UpstreamUnavailable,
    refusal_error,
)
from gateway.features import ParsedRequest
from gateway.privacy.gate import PrivacyGate
from gateway.roster import Change, Roster
from gateway.specialists import SpecialistRoute, request_text
from gateway.stats.ewma import Ewma
from gateway.stats.fleet import FleetStats, Ticket
from gateway.upstreams.base import (
    Call,
    Reply,
    Stream,
    Upstream,
    UpstreamError,
    UpstreamRejected,
    Usage,
)
from policies.compose import build_policy, known_policies
from policies.model import Candidate, DataClass, Decision, Policy, RequestFeatures
from policies.plan import is_refusal
from policies.privacy import Pinned
from policies.specialist import Classifier, classify, routed_topic, tagged

_BYTES_PER_TOKEN = 4  # a cheap prompt estimate: no tokenizer on the hot path


@dataclass(slots=True)
class OpenStream:
    """A stream that one deployment has started answering."""

    deployment: Deployment
    stream: Stream
    ticket: Ticket


@dataclass(frozen=True, slots=True)
class Routing:
    """A decision and what it was made from (the explain endpoint shows all of it)."""

    features: RequestFeatures
    candidates: list[Candidate]
    decision: Decision
    deployments: tuple[Deployment, ...]
    """The deployments decided among (the alias's, or a specialist's; the plan names some)."""
    specialist: SpecialistRoute | None = None
    """Set for an alias with specialists: the classification and the pool it chose."""


class Dispatcher:
    """Serves requests for aliases from the roster's deployments."""

    def __init__(
        self,
        config: Config,
        upstreams: Mapping[Kind, Upstream],
        fleet: FleetStats,
        roster: Roster,
    ) -> None:
        self.config = config
        self.fleet = fleet
        self.roster = roster
        self.policy_names = frozenset(known_policies())
        self.privacy = PrivacyGate(config.privacy)
        self._upstreams = upstreams
        self._policies: dict[tuple[str, str], Policy] = {}
        self._circuit_open: dict[str, bool] = {}
        prior = fleet.settings.output_tokens_prior
        self._output = {alias: Ewma(fleet.settings.alpha, prior) for alias in config.aliases}
        for alias in config.aliases:
            self._export_healthy(alias)

    def decide(
        self,
        parsed: ParsedRequest,
        body_size: int,
        controls: Controls,
        *,
        explain: bool = False,
        budget: tuple[float, float] | None = None,
        data_class: DataClass = "public",
    ) -> Routing:
        """The plan for one request (no upstream is called); ``explain`` adds the scores.

        ``budget`` is (left, total) USD of the caller's tightest budget, for the budget policy;
        only deployments accepting ``data_class`` are in the plan (``policies.privacy``).
        """
        alias = parsed.model
        spec = self.config.aliases.get(alias)
        if spec is None:  # removed by a config reload since the request was read
            raise ModelNotFound(f"the model '{alias}' was removed by a config reload")
        asked = parsed.parsed.get("max_tokens") or parsed.parsed.get("max_completion_tokens")
        features = RequestFeatures(
            alias=alias,
            prompt_tokens=max(1, body_size // _BYTES_PER_TOKEN),
            expected_output_tokens=asked
            if isinstance(asked, int)
            else round(self._output[alias].value),
            stream=parsed.stream,
            slo_ttft_s=controls.slo_ttft_s,
            slo_total_s=controls.slo_total_s,
            max_cost_usd=controls.max_cost_usd,
            explain=explain,
            budget_left_usd=None if budget is None else budget[0],
            budget_total_usd=None if budget is None else budget[1],
            draw=random.random(),  # the weighted policy's split; policies read no RNG
            data_class=data_class,
        )
        policy = self._policy(spec, controls.policy)
        predict = policy.predicts or explain
        deployments = self.roster.deployments_for(alias)
        candidates: list[Candidate] | None = None
        special = None
        classifier = spec.classifier
        if classifier is not None:
            special, pool, pooled = self._specialist(alias, classifier, parsed, features, predict)
            if special.topic != "general":
                deployments, candidates = pool, pooled
        if candidates is None:
            candidates = self.fleet.candidates(deployments, features, _now(), predict=predict)
        decision = policy.decide(features, candidates)
        if special is not None:
            unavailable = special.classification.topic if special.fallback else None
            decision = tagged(decision, special.topic, unavailable)
            metrics.child(metrics.SPECIALIST_ROUTES, alias, special.topic).inc()
        primary = decision.plan[0] if decision.plan else "none"
        metrics.child(metrics.ROUTE_DECISIONS, decision.policy, primary, decision.reason).inc()
        return Routing(features, candidates, decision, deployments, special)

    def _specialist(
        self,
        alias: str,
        classifier: Classifier,
        parsed: ParsedRequest,
        features: RequestFeatures,
        predict: bool,
    ) -> tuple[SpecialistRoute, tuple[Deployment, ...], list[Candidate]]:
        """The request's topic, and its specialist's deployments and candidates (empty when
        the alias has none for the topic)."""
        classification = classify(request_text(parsed.parsed, classifier.max_chars), classifier)
        pool = self.roster.specialists_for(alias, classification.topic)
        pooled = self.fleet.candidates(pool, features, _now(), predict=predict) if pool else []
        topic, fallback = routed_topic(classification.topic, pooled, features.data_class)
        return SpecialistRoute(classification, topic, fallback), pool, pooled

    async def complete(self, routing: Routing, call: Call) -> tuple[Reply, Deployment]:
        """A non-streaming answer from the first deployment in the plan that gives one."""
        errors: list[UpstreamError] = []
        for dep in self.plan(routing):
            ticket = self._begin(dep, routing, call, errors)
            if ticket is None:
                continue
            try:
                reply = await self._upstreams[dep.kind].send(dep, call)
            except UpstreamError as exc:
                self._failed(dep, ticket, exc)
                errors.append(exc)
                continue
            except UpstreamRejected:
                self._end(dep, ticket, "rejected")
                raise
            except BaseException:
                self._end(dep, ticket, "aborted")
                raise
            self._end(dep, ticket, "ok", reply.usage)
            self._learn_output(routing.features.alias, reply.usage)
            return reply, dep
        raise self._exhausted(routing, errors)

    async def open_stream(self, routing: Routing, call: Call) -> OpenStream:
        """A stream from the first deployment that starts one; ``close_stream`` ends it."""
        errors: list[UpstreamError] = []
        for dep in self.plan(routing):
            ticket = self._begin(dep, routing, call, errors)
            if ticket is None:
                continue
            try:
                stream = await self._upstreams[dep.kind].open_stream(dep, call)
            except UpstreamError as exc:
                self._failed(dep, ticket, exc)
                errors.append(exc)
                continue
            except UpstreamRejected:
                self._end(dep, ticket, "rejected")
                raise
            except BaseException:
                self._end(dep, ticket, "aborted")
                raise
            return OpenStream(dep, stream, ticket)
        raise self._exhausted(routing, errors)

    def first_event(self, opened: OpenStream) -> None:
        """The stream's first event went out: the deployment's time to first token."""
        self.fleet.first_token(opened.ticket, _now())
        ttft = opened.ticket.stats.ttft.value
        metrics.child(metrics.DEPLOYMENT_TTFT, opened.deployment.name).set(ttft)

    async def close_stream(self, alias: str, opened: OpenStream, outcome: str) -> None:
        """Release the upstream and record how the stream ended (ok, broken, aborted)."""
        await opened.stream.aclose()
        usage = opened.stream.usage
        self._end(opened.deployment, opened.ticket, outcome, usage)
        self._learn_output(alias, usage)

    def _learn_output(self, alias: str, usage: Usage | None) -> None:
        """The alias's typical answer length (the output estimate for requests without
        ``max_tokens``)."""
        output = self._output.get(alias)  # None: the alias was removed by a reload
        if usage is not None and output is not None:
            output.update(usage.completion_tokens)

    def _policy(self, spec: Alias, name: str) -> Policy:
        policy = self._policies.get((spec.name, name))
        if policy is None:
            params = spec.policy_params if name == spec.policy else {}
            policy = self._policies[(spec.name, name)] = Pinned(build_policy(name, params))
        return policy

    def plan(self, routing: Routing) -> list[Deployment]:
        """The decision's deployments in order; the refusal error when it has none."""
        decision = routing.decision
        if is_refusal(decision):
            held = self.roster.held_for(routing.features.alias)
            if held:
                names = ", ".join(f"{d.name} ({state})" for d, state in held)
                detail = f"{decision.detail}; held out by an operator: {names}"
                decision = dataclasses.replace(decision, detail=detail)
            raise refusal_error(decision)
        by_name = {d.name: d for d in routing.deployments}
        return [by_name[name] for name in decision.plan]

    def _begin(
        self, dep: Deployment, routing: Routing, call: Call, errors: list[UpstreamError]
    ) -> Ticket | None:
        if dep.name not in self.roster.live:  # retired since the decision: no new calls
            errors.append(UpstreamError(dep.name, "saturated", "retired from the roster"))
            return None
        state = self.roster.state(dep.name)
        if state != "active":  # held out by an operator since the decision
            errors.append(UpstreamError(dep.name, "saturated", f"{state} by an operator"))
            return None
        now = _now()
        why = self.fleet.refusal(dep, now)  # no await until started(): one half-open probe
        if why is not None:
            metrics.child(metrics.UPSTREAM_ERRORS, dep.name, why).inc()
            errors.append(UpstreamError(dep.name, "saturated", why.replace("_", " ")))
            return None
        metrics.child(metrics.UPSTREAM_INFLIGHT, dep.name).inc()
        features = routing.features
        return self.fleet.started(
            dep.name,
            now,
            prompt_tokens=features.prompt_tokens,
            stream=call.stream,
            output_tokens=features.expected_output_tokens,
        )

    def _end(
        self, dep: Deployment, ticket: Ticket, outcome: str, usage: Usage | None = None
    ) -> None:
        now = _now()
        metrics.child(metrics.UPSTREAM_INFLIGHT, dep.name).dec()
        metrics.child(metrics.UPSTREAM_DURATION, dep.name, dep.provider, outcome).observe(
            now - ticket.started_at
        )
        if outcome == "ok":
            output = None if usage is None else usage.completion_tokens
            self.fleet.finished(ticket, now, ok=True, output_tokens=output)
        else:
            self.fleet.finished(ticket, now, ok=False, kind=outcome)
        self._export_circuit(dep.name, now)
        self.privacy.capacity.released()

    def _failed(self, dep: Deployment, ticket: Ticket, exc: UpstreamError) -> None:
        now = _now()
        metrics.child(metrics.UPSTREAM_INFLIGHT, dep.name).dec()
        metrics.child(metrics.UPSTREAM_DURATION, dep.name, dep.provider, "error").observe(
            now - ticket.started_at
        )
        metrics.child(metrics.UPSTREAM_ERRORS, dep.name, exc.kind).inc()
        self.fleet.finished(ticket, now, ok=False, kind=exc.kind, retry_after_s=exc.retry_after_s)
        self._export_circuit(dep.name, now)
        self.privacy.capacity.released()

    def _export_circuit(self, name: str, now: float) -> None:
        is_open = self.fleet.circuit_state(name, now) == "open"
        if self._circuit_open.get(name) is not is_open:  # the gauges move only on a change
            self._circuit_open[name] = is_open
            metrics.child(metrics.CIRCUIT_OPEN, name).set(1.0 if is_open else 0.0)
            for alias in self.config.aliases:
                if any(d.name == name for d in self.roster.deployments_for(alias)):
                    self._export_healthy(alias)

    def _export_healthy(self, alias: str) -> None:
        deployments = self.roster.deployments_for(alias)
        healthy = sum(1 for d in deployments if not self._circuit_open.get(d.name, False))
        metrics.child(metrics.ALIAS_HEALTHY_DEPLOYMENTS, alias).set(healthy)

    def reconfigure(self, config: Config) -> None:
        """Decide with ``config``'s aliases and policies from now on; decisions made before
        keep their deployments. Call it just before ``Roster.reconfigure``, whose
        announcement recounts the new aliases' healthy deployments."""
        prior = self.fleet.settings.output_tokens_prior
        alpha = self.fleet.settings.alpha
        known = self._output
        self._output = {a: known[a] if a in known else Ewma(alpha, prior) for a in config.aliases}
        self._policies = {}
        for alias in self.config.aliases.keys() - config.aliases.keys():
            metrics.forget_model(alias)
        self.config = config

    def roster_changed(self, change: Change) -> None:
        """Members came or went: recount each alias's healthy deployments; forget the
        circuit gauge and every metric series of those that left."""
        for dep in change.left:
            self._circuit_open.pop(dep.name, None)
            metrics.forget(dep.name)
        for alias in self.config.aliases:
            self._export_healthy(alias)

    def _exhausted(self, routing: Routing, errors: list[UpstreamError]) -> GatewayError:
        alias = routing.features.alias
        tried = "; ".join(f"{e.deployment}: {e.detail}" for e in errors)
        message = f"no deployment of '{alias}' could answer ({len(errors)} tried): {tried}"
        kinds = {e.kind for e in errors}
        if errors and errors[-1].kind == "timeout":
            return UpstreamTimeout(message)
        if kinds <= {"connect", "saturated", "rate_limited"}:
            err: GatewayError = UpstreamUnavailable(message)
            now = _now()
            waits = [e.retry_after_s for e in errors if e.retry_after_s is not None]
            waits += [self.fleet.retry_in_s(e.deployment, now) for e in errors]
            positive = [w for w in waits if w > 0]
            if positive:
                err.headers["Retry-After"] = str(max(1, round(min(positive))))
            return err
        return UpstreamFailed(message)
