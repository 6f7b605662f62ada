"""Upstream clients: the pooled OpenAI-compatible proxy and the litellm bridge."""
