"""Failover: an alias's deployments are tried in order until one answers.

The fault gateway's aliases put a refused port, an always-500 emulator or an emulator that
exits after a few requests before a healthy one (see ``tests/support/fleets.py``).
"""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.support.fleets import DIE_AFTER_REQUESTS, FaultGateway

pytestmark = pytest.mark.e2e

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hi."}]


def _served_by(client: openai.OpenAI, alias: str) -> str:
    raw = client.chat.completions.with_raw_response.create(
        model=alias, messages=MESSAGES, max_tokens=4
    )
    assert raw.parse().choices[0].message.content
    deployment: str = raw.headers["x-gateway-deployment"]
    return deployment


def test_alias_whose_first_deployment_refuses_connections_answers_from_the_second(
    fault_client: openai.OpenAI,
) -> None:
    assert _served_by(fault_client, "dead-first") == "healthy"


def test_alias_whose_first_deployment_returns_500_answers_from_the_second(
    fault_client: openai.OpenAI,
) -> None:
    assert [_served_by(fault_client, "failing-first") for _ in range(3)] == ["healthy"] * 3


def test_stream_fails_over_before_the_first_byte(fault_client: openai.OpenAI) -> None:
    for alias in ("dead-first", "failing-first"):
        raw = fault_client.chat.completions.with_raw_response.create(
            model=alias,
            messages=MESSAGES,
            max_tokens=6,
            stream=True,
            extra_body={"ignore_eos": True},
        )
        with raw.parse() as stream:
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        assert raw.headers["x-gateway-deployment"] == "healthy"
        assert len(text.split()) == 6


def test_worker_that_dies_mid_run_does_not_fail_subsequent_requests(
    fault_client: openai.OpenAI, fault_gateway: FaultGateway
) -> None:
    before = [_served_by(fault_client, "dies-midway") for _ in range(DIE_AFTER_REQUESTS)]
    # The emulator exits shortly after its N-th answer (it lets the reply flush first).
    assert fault_gateway.dying.process.proc.wait(timeout=5) is not None
    after = [_served_by(fault_client, "dies-midway") for _ in range(2 * DIE_AFTER_REQUESTS)]

    assert before == ["dying"] * DIE_AFTER_REQUESTS
    assert after == ["healthy"] * (2 * DIE_AFTER_REQUESTS)


def test_a_failed_deployment_does_not_hide_the_healthy_ones_from_the_model_list(
    fault_client: openai.OpenAI,
) -> None:
    ids = {model.id for model in fault_client.models.list()}

    assert {"dead-first", "failing-first", "dies-midway", "all-down", "slow-qwen"} <= ids
