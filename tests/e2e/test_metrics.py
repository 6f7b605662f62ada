"""GET /metrics counts the requests and tokens the clients made."""

from __future__ import annotations

from collections.abc import Mapping

import openai
import pytest

from loadtests.fleet import metric_sum, scrape
from tests.support.services import wait_for_metric

pytestmark = pytest.mark.e2e

ALIAS = "gpt-4o-mini"


def _for_alias(labels: Mapping[str, str]) -> bool:
    return labels.get("model") == ALIAS


def test_requests_total_counts_each_request_made(client: openai.OpenAI, gateway_url: str) -> None:
    before = metric_sum(scrape(gateway_url), "gateway_requests_total", _for_alias)

    for _ in range(4):
        client.chat.completions.create(
            model=ALIAS, messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
    with client.chat.completions.create(
        model=ALIAS, messages=[{"role": "user", "content": "hi"}], max_tokens=3, stream=True
    ) as stream:
        list(stream)

    after = wait_for_metric(
        gateway_url, "gateway_requests_total", lambda v: v >= before + 5, where=_for_alias
    )
    assert after == before + 5


def test_output_tokens_total_grows_by_the_tokens_generated(
    client: openai.OpenAI, gateway_url: str
) -> None:
    def output(labels: Mapping[str, str]) -> bool:
        return labels.get("direction") == "output"

    before = metric_sum(scrape(gateway_url), "gateway_tokens_total", output)

    client.chat.completions.create(
        model="qwen2.5-7b-instruct",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=31,
        extra_body={"ignore_eos": True},
    )

    after = wait_for_metric(
        gateway_url, "gateway_tokens_total", lambda v: v >= before + 31, where=output
    )
    assert after == before + 31


def test_metrics_endpoint_serves_prometheus_text(gateway_url: str) -> None:
    text = scrape(gateway_url)

    assert "# TYPE gateway_requests_total counter" in text
