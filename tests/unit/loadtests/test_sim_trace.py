"""Trace readers (Azure 2023 CSV, Mooncake jsonl) and the replay driver's timing and text."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.emulators import textgen
from loadtests.sim.replay import chat_messages, replay_slice, schedule
from loadtests.sim.trace import TraceRequest, compressed, read_trace, sliced, span_s

TRACES = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "traces"


def test_azure_csv_is_parsed_with_seven_digit_fractions(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:50.9951690,396,0\n",
        encoding="utf-8",
    )
    first, second = read_trace(path)
    assert first == TraceRequest(0.0, 374, 44)
    assert second.arrival_s == pytest.approx(4.314579)
    assert second.output_tokens == 1  # a request generates at least one token


def test_mooncake_jsonl_uses_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"timestamp": 1500, "input_length": 10, "output_length": 3, "hash_ids": [1]}\n'
        '{"timestamp": 500, "input_length": 7, "output_length": 2, "hash_ids": [0]}\n',
        encoding="utf-8",
    )
    assert read_trace(path) == [TraceRequest(0.0, 7, 2), TraceRequest(1.0, 10, 3)]


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("azure_llm_2023_conv.csv", 19_366),
        ("azure_llm_2023_code.csv", 8_819),
        ("mooncake_conversation_trace.jsonl", 12_031),
    ],
)
def test_the_shared_traces_read_whole(name: str, count: int) -> None:
    requests = read_trace(TRACES / name)
    assert len(requests) == count
    assert 3_400 < span_s(requests) < 3_600  # about one hour each (PROVENANCE.md)


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown trace format"):
        read_trace(tmp_path / "t.txt")


def test_compression_and_slicing_rebase_arrivals() -> None:
    requests = [TraceRequest(float(t), 10, 5) for t in range(10)]
    assert [r.arrival_s for r in compressed(requests, 4)][:3] == [0.0, 0.25, 0.5]
    assert [r.arrival_s for r in sliced(requests, 3, 2)] == [0.0, 1.0]


def test_replay_schedule_matches_the_simulators_input() -> None:
    requests = [TraceRequest(float(t), 100 + t, 5) for t in range(20)]
    chosen = replay_slice(requests, start_s=4, duration_s=8, rate_scale=2, limit=3)
    items = list(schedule(chosen))
    assert [(i.send_at_s, i.prompt_tokens) for i in items] == [(0.0, 104), (0.5, 105), (1.0, 106)]


@pytest.mark.parametrize("tokens", [5, 6, 1000])
def test_chat_prompt_counts_as_the_requested_tokens(tokens: int) -> None:
    messages = chat_messages(tokens, seed=7)
    assert textgen.chat_prompt(messages)[1] == tokens
    assert chat_messages(tokens, seed=8) != messages  # unique: never a cache hit
