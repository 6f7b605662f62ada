"""The relayed text a missing usage is estimated from."""

from __future__ import annotations

from gateway.accounting.estimate import completion_text


def test_completion_text_joins_chat_deltas_and_skips_done_and_cut_events() -> None:
    events = [
        b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
        b'data: {"choices":[{"index":0,"delta":{"content":"Hello"}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"content":" world"}}]}\n\n',
        b"data: [DONE]\n\n",
        b'data: {"choices":[{"index":0,"delta":{"cont',
    ]
    assert completion_text(events) == "Hello world"


def test_completion_text_reads_legacy_completions() -> None:
    events = [b'data: {"choices":[{"index":0,"text":"four"}]}\n\n']
    assert completion_text(events) == "four"
