"""What the Locust users send and read (loadtests/locustfiles/traffic.py), without locust."""

from __future__ import annotations

import json
import random

import pytest

from loadtests.emulators import textgen
from loadtests.locustfiles.traffic import (
    DEFAULT_ALIASES,
    StreamTally,
    chat_body,
    completion_tokens,
    describe_failure,
    embeddings_body,
    length_sampler,
    micro_usd,
    read_settings,
    refused_for_budget,
)
from loadtests.replay import BYTES_PER_TOKEN
from loadtests.sim.trace import TraceRequest


def test_settings_defaults_match_the_demo_gateway() -> None:
    s = read_settings({"TG_SEED": "7"})

    assert s.aliases == DEFAULT_ALIASES == ("qwen2.5-7b-instruct", "auto", "gpt-4o-mini")
    assert s.api_key == "demo" and s.budget_key is None and s.team_keys == ()
    assert (s.max_prompt_tokens, s.max_output_tokens, s.stream_share) == (2000, 256, 0.5)
    assert s.trace == textgen.DEFAULT_TRACE
    assert (s.seed, s.seed_given, s.ignore_eos) == (7, True, True)


def test_without_a_seed_each_process_draws_its_own() -> None:
    seeds = {read_settings({}).seed for _ in range(5)}

    assert len(seeds) > 1
    assert not read_settings({}).seed_given


def test_team_keys_are_handed_out_round_robin_by_team_name() -> None:
    s = read_settings({"TG_TEAM_KEYS": '{"search": "sk-s", "ads": "sk-a"}', "TG_API_KEY": "x"})

    assert [s.key_for(i) for i in range(4)] == ["sk-a", "sk-s", "sk-a", "sk-s"]
    assert read_settings({"TG_API_KEY": "sk-one"}).key_for(3) == "sk-one"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TG_TEAM_KEYS": "[1, 2]"}, "TG_TEAM_KEYS"),
        ({"TG_TEAM_KEYS": "{not json"}, "TG_TEAM_KEYS"),
        ({"TG_STREAM_SHARE": "1.5"}, "TG_STREAM_SHARE"),
        ({"TG_ALIASES": "text-embedding-3-small"}, "at least one chat alias"),
        ({"TG_IGNORE_EOS": "yes"}, "TG_IGNORE_EOS"),
    ],
)
def test_bad_settings_are_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_settings(env)


def test_chat_aliases_leave_out_embedding_models() -> None:
    s = read_settings({"TG_ALIASES": " auto , text-embedding-3-small,gpt-4o-mini "})

    assert s.aliases == ("auto", "text-embedding-3-small", "gpt-4o-mini")
    assert s.chat_aliases == ("auto", "gpt-4o-mini")


def test_sampler_draws_whole_trace_requests_capped() -> None:
    trace = [TraceRequest(0.0, 5000, 10), TraceRequest(1.0, 100, 900), TraceRequest(2.0, 50, 20)]
    sampler = length_sampler(trace, max_prompt_tokens=2000, max_output_tokens=256)
    rng = random.Random(1)

    drawn = {sampler.draw(rng) for _ in range(200)}

    # pairs stay together (a long prompt keeps its short answer), each side capped
    assert drawn == {(2000, 10), (100, 256), (50, 20)}


def test_sampler_is_repeatable_with_a_seed() -> None:
    trace = [TraceRequest(float(i), i + 1, i + 2) for i in range(100)]
    sampler = length_sampler(trace, 10_000, 10_000)

    first = [sampler.draw(random.Random(3)) for _ in range(3)]
    assert first == [sampler.draw(random.Random(3)) for _ in range(3)]


def test_an_empty_trace_cannot_be_sampled() -> None:
    with pytest.raises(ValueError, match="no requests"):
        length_sampler([], 1, 1)


def test_chat_body_makes_the_gateways_estimate_the_drawn_prompt_size() -> None:
    text = chat_body("auto", 1000, 64, seed=5, stream=True, ignore_eos=True)
    body = json.loads(text)

    assert len(text) == BYTES_PER_TOKEN * 1000  # the gateway guesses bytes / 4
    _, emulated = textgen.chat_prompt(body["messages"])
    assert emulated == 1000  # and the emulators count the same
    assert body["max_tokens"] == 64 and body["ignore_eos"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_chat_body_prompts_differ_by_seed_and_repeat_with_it() -> None:
    a = chat_body("auto", 200, 8, seed=1, stream=False, ignore_eos=False, temperature=0.0)
    b = chat_body("auto", 200, 8, seed=2, stream=False, ignore_eos=False, temperature=0.0)

    assert a != b
    assert a == chat_body("auto", 200, 8, seed=1, stream=False, ignore_eos=False, temperature=0.0)
    assert json.loads(a)["temperature"] == 0.0
    assert "ignore_eos" not in json.loads(a) and "stream" not in json.loads(a)


def test_embeddings_body_has_about_the_asked_size() -> None:
    body = embeddings_body("text-embedding-3-small", 500, seed=9)

    assert len(body) == BYTES_PER_TOKEN * 500
    assert json.loads(body)["model"] == "text-embedding-3-small"


def _event(**fields: object) -> str:
    return "data: " + json.dumps(fields)


def _chunk(content: str | None) -> str:
    delta = {"role": "assistant"} if content is None else {"content": content}
    return _event(choices=[{"index": 0, "delta": delta, "finish_reason": None}])


def test_stream_tally_times_the_first_content_not_the_role_chunk() -> None:
    tally = StreamTally()
    lines = [
        (_chunk(None), 0.010),
        ("", 0.010),
        (_chunk("Hello"), 0.050),
        (_chunk(" there"), 0.060),
        (_event(choices=[], usage={"prompt_tokens": 9, "completion_tokens": 2}), 0.070),
        ("data: [DONE]", 0.070),
    ]
    for line, at in lines:
        tally.feed(line, at)

    assert tally.first_content_s == 0.050
    assert tally.content_events == 2
    assert tally.completion_tokens == 2
    assert tally.problem() is None
    assert tally.tokens_per_s(0.150) == pytest.approx(1 / 0.100)


def test_stream_tally_reports_an_error_event_a_cut_stream_and_missing_usage() -> None:
    failed = StreamTally()
    failed.feed(_chunk("a"), 0.01)
    failed.feed(_event(error={"type": "upstream_error", "message": "worker died"}), 0.02)
    cut = StreamTally()
    cut.feed(_chunk("a"), 0.01)
    no_usage = StreamTally()
    no_usage.feed("data: [DONE]", 0.01)
    garbled = StreamTally()
    garbled.feed("data: {oops", 0.01)

    assert "upstream_error: worker died" in (failed.problem() or "")
    assert "without data: [DONE]" in (cut.problem() or "")
    assert "no usage" in (no_usage.problem() or "")
    assert "not JSON" in (garbled.problem() or "")


def test_tokens_per_second_needs_two_tokens_after_the_first_content() -> None:
    one = StreamTally(first_content_s=0.1, completion_tokens=1)
    none = StreamTally(first_content_s=None, completion_tokens=5)

    assert one.tokens_per_s(1.0) is None
    assert none.tokens_per_s(1.0) is None


def test_answer_helpers_read_usage_cost_and_refusals() -> None:
    refusal = json.dumps({"error": {"type": "insufficient_quota", "message": "budget"}}).encode()
    limit = json.dumps({"error": {"type": "requests", "message": "rpm"}}).encode()

    assert completion_tokens(b'{"usage": {"completion_tokens": 42}}') == 42
    assert completion_tokens(b"{}") is None and completion_tokens(b"<html>") is None
    assert micro_usd("0.000123") == 123 and micro_usd("0.000000") == 0
    assert micro_usd(None) is None and micro_usd("n/a") is None
    assert refused_for_budget(429, refusal)
    assert not refused_for_budget(429, limit)  # a rate limit is not the budget running out
    assert not refused_for_budget(500, refusal)
    assert describe_failure(429, limit) == "HTTP 429 requests: rpm"
    assert describe_failure(502, b"bad gateway") == "HTTP 502 b'bad gateway'"
