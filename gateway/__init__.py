"""token-gateway: the OpenAI-compatible service (may import ``policies``)."""
