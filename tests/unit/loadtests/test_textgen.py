"""Deterministic text, token counts and output lengths of the emulators."""

from __future__ import annotations

import base64
import math
import struct
from pathlib import Path

import pytest

from loadtests.emulators import textgen


def test_same_prompt_gives_same_tokens_and_other_prompts_differ() -> None:
    seed = textgen.prompt_seed("hello")
    assert textgen.generate_tokens(seed, 20) == textgen.generate_tokens(seed, 20)
    assert textgen.generate_tokens(seed, 20) != textgen.generate_tokens(
        textgen.prompt_seed("hello!"), 20
    )


@pytest.mark.parametrize("count", [0, 1, 2, 57])
def test_one_word_is_one_token(count: int) -> None:
    tokens = textgen.generate_tokens(123, count)
    assert len(tokens) == count
    assert textgen.count_words("".join(tokens)) == count
    assert all(t.startswith(" ") for t in tokens[1:])


@pytest.mark.parametrize(
    ("messages", "tokens"),
    [
        ([{"role": "user", "content": "hi there"}], 6),
        ([{"role": "system", "content": "be brief"}, {"role": "user", "content": "a b c"}], 13),
        ([{"role": "user", "content": [{"type": "text", "text": "one two"}]}], 6),
        ([{"role": "assistant", "content": None}], 4),
    ],
)
def test_chat_prompt_counts_words_plus_four_per_message(
    messages: list[object], tokens: int
) -> None:
    assert textgen.chat_prompt(messages)[1] == tokens


@pytest.mark.parametrize(
    ("natural", "max_tokens", "ignore_eos", "expected"),
    [
        (100, None, False, (100, "stop")),
        (100, 200, False, (100, "stop")),
        (100, 50, False, (50, "length")),
        (100, 100, False, (100, "length")),
        (100, 200, True, (200, "length")),
        (100, None, True, (100, "stop")),
    ],
)
def test_choose_length_honours_max_tokens_and_ignore_eos(
    natural: int, max_tokens: int | None, ignore_eos: bool, expected: tuple[int, str]
) -> None:
    assert textgen.choose_length(natural, max_tokens, ignore_eos=ignore_eos) == expected


def test_output_lengths_come_from_the_azure_conversation_trace() -> None:
    lengths = textgen.load_output_lengths(textgen.DEFAULT_TRACE)
    assert len(lengths.lengths) == 19_366
    assert min(lengths.lengths) >= 1
    assert 200 < sum(lengths.lengths) / len(lengths.lengths) < 220  # PROVENANCE: mean 211
    assert lengths.draw(42) == lengths.draw(42)


def test_load_output_lengths_rejects_an_empty_trace(tmp_path: Path) -> None:
    empty = tmp_path / "trace.csv"
    empty.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no GeneratedTokens"):
        textgen.load_output_lengths(empty)


def test_embedding_is_deterministic_unit_vector_and_base64_is_float32() -> None:
    vector = textgen.embedding_vector("some text", 16)
    assert vector == textgen.embedding_vector("some text", 16)
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-9)
    decoded = struct.unpack("<16f", base64.b64decode(textgen.encode_base64_floats(vector)))
    assert decoded == pytest.approx(vector, rel=1e-6)
