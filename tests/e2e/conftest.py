"""Fixtures for the end-to-end tests: openai SDK clients for the running gateways."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.support.clients import sync_client
from tests.support.fleets import FaultGateway


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    """An openai client for the demo gateway."""
    with sync_client(gateway_url) as opened:
        yield opened


@pytest.fixture
def fault_client(fault_gateway: FaultGateway) -> Iterator[openai.OpenAI]:
    """An openai client for the gateway whose aliases start with broken deployments."""
    with sync_client(fault_gateway.url) as opened:
        yield opened
