"""``ChatUser``: an application's chat traffic, sized like a real LLM service's.

Each request takes its prompt and output lengths together from a real trace (``TG_TRACE``,
by default the Azure LLM inference trace 2023, conversation service: ``traffic``), an alias
from ``TG_ALIASES`` at random (local Qwen, the spillover alias ``auto``, a paid API by
default), and streams with probability ``TG_STREAM_SHARE``; prompts are unique, so the
response cache never answers. With ``TG_TEAM_KEYS`` each user instance bills one team's key,
round-robin. Under the trace shape (``loadtests/shapes/trace.py``) it sends the trace slice's
requests at their arrival times (open loop) instead of thinking between requests. Measures:
``common``. Imports: locust, gevent, ``loadtests``.
"""

from __future__ import annotations

import time

import gevent  # type: ignore[import-untyped]  # gevent ships no type hints
from locust import task

from loadtests.locustfiles.common import LLMUser, paced_arrivals
from loadtests.shapes.schedule import ArrivalQueue

IDLE_S = 0.5
"""How long a trace-paced user waits when every request of the slice is taken."""


class ChatUser(LLMUser):
    """Chat completions with trace-drawn sizes, half of them streamed (by default)."""

    weight = 4

    def wait_time(self) -> float:
        """No thinking under the trace shape (the trace sets the pace), else 0.1-0.5 s."""
        return 0.0 if paced_arrivals(self.environment) else super().wait_time()

    @task
    def chat(self) -> None:
        """One request: the next of the trace slice, or one with drawn sizes."""
        queue = paced_arrivals(self.environment)
        if queue is not None:
            self._send_arrival(queue)
            return
        prompt, output = self.sampler.draw(self.rng)
        self.send_chat(
            self.rng.choice(self.settings.chat_aliases), prompt, output, stream=self.pick_stream()
        )

    def _send_arrival(self, queue: ArrivalQueue) -> None:
        claim = queue.claim()
        if claim is None:
            gevent.sleep(IDLE_S)
            return
        try:
            delay = claim.due - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            self.record("send lag [trace]", max(0.0, time.perf_counter() - claim.due) * 1000)
            prompt = min(claim.item.prompt_tokens, self.settings.max_prompt_tokens)
            output = min(claim.item.output_tokens, self.settings.max_output_tokens)
            alias = self.rng.choice(self.settings.chat_aliases)
            self.send_chat(alias, prompt, output, stream=self.pick_stream())
        finally:
            queue.done()
