"""A client that goes away mid-stream makes the gateway cancel the upstream request."""

from __future__ import annotations

import time

import openai
import pytest

from loadtests.fleet import metric_sum, scrape
from tests.support.fleets import FaultGateway
from tests.support.services import wait_for_metric

pytestmark = pytest.mark.e2e

ABORTED = "emulator_aborted_requests_total"


def test_client_disconnect_mid_stream_aborts_the_upstream_request(
    fault_client: openai.OpenAI, fault_gateway: FaultGateway
) -> None:
    worker = fault_gateway.slow.url
    before = metric_sum(scrape(worker), ABORTED)
    started = time.monotonic()

    stream = fault_client.chat.completions.create(
        model="slow-qwen",
        messages=[{"role": "user", "content": "Write a long story."}],
        max_tokens=4000,  # minutes at the emulator's real-time speed
        stream=True,
        extra_body={"ignore_eos": True},
    )
    received = 0
    for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received >= 3:
            break
    stream.close()

    after = wait_for_metric(worker, ABORTED, lambda value: value > before, timeout_s=10)
    assert after == before + 1
    assert time.monotonic() - started < 20


def test_gateway_keeps_serving_after_a_client_disconnect(fault_client: openai.OpenAI) -> None:
    with fault_client.chat.completions.create(
        model="dead-first",  # not slow-qwen: its abort counter belongs to the test above
        messages=[{"role": "user", "content": "Tell me more."}],
        max_tokens=2000,
        stream=True,
        extra_body={"ignore_eos": True},
    ) as stream:
        next(iter(stream))

    completion = fault_client.chat.completions.create(
        model="dead-first", messages=[{"role": "user", "content": "still there?"}], max_tokens=3
    )
    assert completion.choices[0].message.content
