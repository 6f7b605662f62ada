"""End-to-end tests: the gateway driven by the openai and litellm SDKs."""
