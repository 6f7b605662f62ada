"""The benchmark's request: an OpenAI chat completion with a ~100-token prompt, max_tokens 16.

Every request carries a counter in its prompt so no response cache can answer it: the
benchmark measures the proxy path, not cache replay. The cache target's requests carry it in
``user`` instead, which the cache key leaves out: every request after the first is a hit.
Stdlib only.
"""

from __future__ import annotations

import json

CHAT_PATH = "/v1/chat/completions"
MAX_TOKENS = 16
# Replaced by a per-request counter (by loadgen.py in Python, by wrk_post.lua in Lua).
COUNTER_MARK = "@@N@@"

# About 100 tokens of ordinary English (Qwen's tokenizer: ~0.75 words per token).
PROMPT = (
    "You are reviewing a short incident report for an internal platform team. The report says "
    "that a batch job which normally finishes in twelve minutes took almost two hours last "
    "night, that the database showed no unusual load, and that the job's logs contain many "
    "retries against the object store. Summarise the most likely cause in one sentence and "
    "name the single metric you would check first to confirm it. Keep the answer short and "
    "plain, and say how sure you are. Request number "
)


def chat_body_template(model: str, *, stream: bool, cacheable: bool = False) -> str:
    """The JSON body with ``COUNTER_MARK`` where the per-request counter goes: in the prompt,
    or (``cacheable``) in ``user``."""
    prompt = PROMPT + ("0" if cacheable else COUNTER_MARK) + "."
    body: dict[str, object] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": prompt},
        ],
        "max_tokens": MAX_TOKENS,
        "temperature": 0.7,
    }
    if cacheable:
        body["user"] = "bench-" + COUNTER_MARK
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":"))


def split_template(template: str) -> tuple[bytes, bytes]:
    """The bytes before and after ``COUNTER_MARK``, so a body is ``head + str(n) + tail``."""
    head, sep, tail = template.partition(COUNTER_MARK)
    if not sep:
        raise ValueError(f"template has no {COUNTER_MARK!r}")
    return head.encode(), tail.encode()
