"""openai SDK clients pointed at a running gateway, with retries off.

Retries are off so that each call is exactly one request and errors surface as they are.
"""

from __future__ import annotations

import openai

CLIENT_TIMEOUT_S = 30.0
CLIENT_API_KEY = "sk-test-client"


def sync_client(gateway_url: str) -> openai.OpenAI:
    """A synchronous openai client for the gateway at ``gateway_url`` (no /v1)."""
    return openai.OpenAI(
        base_url=f"{gateway_url}/v1",
        api_key=CLIENT_API_KEY,
        max_retries=0,
        timeout=CLIENT_TIMEOUT_S,
    )


def async_client(gateway_url: str) -> openai.AsyncOpenAI:
    """An asynchronous openai client; create it inside the event loop that uses it."""
    return openai.AsyncOpenAI(
        base_url=f"{gateway_url}/v1",
        api_key=CLIENT_API_KEY,
        max_retries=0,
        timeout=CLIENT_TIMEOUT_S,
    )
