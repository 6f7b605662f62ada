"""``MixedModelUser``: one application using every kind of model the gateway serves.

Each request picks, uniformly, one of ``TG_ALIASES`` plus ``claude-haiku-4-5`` (Anthropic,
through the gateway's litellm bridge) and ``text-embedding-3-small`` (``/v1/embeddings``);
chat sizes come from the trace and stream with probability ``TG_STREAM_SHARE``, an embedding
input is a trace prompt's size (``traffic``). Measures: ``common``. Imports: locust,
``loadtests``.
"""

from __future__ import annotations

from locust import task
from locust.env import Environment

from loadtests.locustfiles.common import LLMUser
from loadtests.locustfiles.traffic import EMBEDDING_ALIASES

EXTRA_ALIASES = ("claude-haiku-4-5", "text-embedding-3-small")
"""What the demo config serves besides the default ``TG_ALIASES``."""


class MixedModelUser(LLMUser):
    """Chat on every chat alias, and embeddings."""

    weight = 2

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.aliases = tuple(dict.fromkeys((*self.settings.aliases, *EXTRA_ALIASES)))

    @task
    def request(self) -> None:
        """One request on a random alias."""
        alias = self.rng.choice(self.aliases)
        prompt, output = self.sampler.draw(self.rng)
        if alias in EMBEDDING_ALIASES:
            self.send_embeddings(alias, prompt)
        else:
            self.send_chat(alias, prompt, output, stream=self.pick_stream())
