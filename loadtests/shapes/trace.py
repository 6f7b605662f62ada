"""Trace replay load: a real trace's arrivals, time-compressed, sent open loop.

The requests of a slice of ``TG_TRACE`` (the Azure LLM inference 2023 conv or code trace, or
Mooncake), ``TG_DURATION_S`` run seconds from ``TG_TRACE_START_S`` with arrivals divided by
``TG_TRACE_RATE_SCALE``, wait in the shape's ``arrivals`` queue. ``ChatUser`` sees the queue
(``loadtests.locustfiles.common.paced_arrivals``): each user takes the next request, sleeps
until its arrival time and sends it with the trace's prompt and output sizes (capped as usual),
and records how late it left as ``send lag [trace]``. So the offered load is the trace's, not
a guess: if the gateway slows down, requests pile up in flight as they would in production.

The user count is only the pool of senders the arrivals need: by Little's law the requests in
flight are arrivals/s x mean response time, so each tick sets
``ceil(2 x rate of the next 10 s x the run's measured mean response time) + 1`` users (never
fewer than before: a stopped user would drop the request it holds); a too small pool shows as
send lag, not as a lower rate. The run stops when every request of the slice has been answered
(or 60 s after the last arrival). Run it in one process (no ``--processes``): each process
would replay the whole slice. The plan and queue are in ``schedule``. Imports: locust,
``loadtests.shapes.schedule``.
"""

from __future__ import annotations

import os

from locust import LoadTestShape

from loadtests.shapes.schedule import (
    LEAD_S,
    ArrivalQueue,
    Tick,
    TracePlan,
    mean_latency_s,
    trace_items_from_env,
    trace_plan,
)


class TraceShape(LoadTestShape):
    """Open-loop replay of a trace slice; the user count follows Little's law."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # locust leaves it unannotated
        items = trace_items_from_env(os.environ)
        self.arrivals = ArrivalQueue(items)
        """The slice's requests; ``ChatUser`` instances take them in order."""
        self.plan: TracePlan = trace_plan(items)
        self.users = 0

    def reset_time(self) -> None:
        """Start the run's clock and the slice's, ``LEAD_S`` later."""
        super().reset_time()  # type: ignore[no-untyped-call]  # unannotated in locust
        self.arrivals.start(self.start_time + LEAD_S)
        self.users = 0

    def tick(self) -> Tick | None:
        """The sender pool for the next window, or None once every request is answered."""
        run_time_s: float = self.get_run_time()  # type: ignore[no-untyped-call]  # unannotated
        slice_s = run_time_s - LEAD_S
        if self.arrivals.finished_all or slice_s >= self.plan.end_s:
            return None
        self.users = max(self.users, self.plan.pool_size(slice_s, self._latency_s()))
        return self.users, float(self.users)

    def _latency_s(self) -> float:
        """Mean response time of the run's HTTP requests so far (custom events excluded)."""
        if self.runner is None:
            return mean_latency_s(0, 0.0)
        posts = [e for e in self.runner.stats.entries.values() if e.method == "POST"]
        return mean_latency_s(
            sum(e.num_requests for e in posts), sum(e.total_response_time for e in posts)
        )
