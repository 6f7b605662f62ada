"""``BudgetUser``: a team with a tiny budget that runs out in the middle of the test.

One instance (``fixed_count = 1``) sends non-streamed chat requests to a paid alias
(``TG_BUDGET_ALIAS``, default ``gpt-4o-mini``) with ``TG_BUDGET_KEY``, the key of a team the
runner creates with a budget of a few requests. Once the budget cannot fit a request the
gateway answers 429 ``insufficient_quota``: that refusal is the expected behaviour, recorded
as a success named ``chat [budget refused]`` (Type POST); any other non-2xx (a rate limit, a
5xx) stays a failure. Without ``TG_BUDGET_KEY`` it warns and sends with ``TG_API_KEY``,
which normally never runs out. Measures: ``common``. Imports: locust, ``loadtests``.
"""

from __future__ import annotations

import logging

from locust import task

from loadtests.locustfiles.common import LLMUser

log = logging.getLogger(__name__)
REFUSED = "chat [budget refused]"


class BudgetUser(LLMUser):
    """The budget team's one client, spending until the gateway refuses."""

    fixed_count = 1

    def on_start(self) -> None:
        """Warn when no budget key was given (the refusals will then never come)."""
        if self.settings.budget_key is None:
            log.warning("TG_BUDGET_KEY is not set: BudgetUser sends with TG_API_KEY")

    @task
    def spend(self) -> None:
        """One paid request on the budget team's key."""
        prompt, output = self.sampler.draw(self.rng)
        self.send_chat(
            self.settings.budget_alias,
            prompt,
            output,
            stream=False,
            key=self.settings.budget_key or self.key,
            refusal_name=REFUSED,
        )
