"""Stand-ins for what cannot be reached here: Qwen GPU workers (vLLM) and paid APIs."""
