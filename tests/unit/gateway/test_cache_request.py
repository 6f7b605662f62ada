"""The cache's pure parts: a request's key and plan (request.py), the ``cache:`` config
(settings.py, through parse_config) and a stored entry's bytes (entry.py)."""

from __future__ import annotations

import dataclasses
import json
import zlib
from typing import Any

import pytest
import yaml

from gateway.accounting.pricing import PriceBook
from gateway.asgi import Scope
from gateway.cache.entry import CorruptEntry, Entry
from gateway.cache.request import CachePlan, deterministic, digest, part, plan_for
from gateway.cache.settings import AliasCache, CacheSettings, Mode, Namespace
from gateway.config import Config, ConfigError, parse_config
from gateway.errors import InvalidRequest
from gateway.upstreams.base import Usage

CHAT, TEXT, EMBED = "chat/completions", "completions", "embeddings"
BODY: dict[str, Any] = {
    "model": "chat",
    "messages": [{"role": "user", "content": "What is 2 + 2?"}],
    "temperature": 0,
    "max_tokens": 16,
}
CREATIVE: dict[str, Any] = {**BODY, "temperature": 0.7}
"""Not deterministic: cached only in mode ``always``."""
ON = CacheSettings(enabled=True)


def scope(*headers: tuple[str, str]) -> Scope:
    return {"type": "http", "headers": [(k.encode(), v.encode()) for k, v in headers]}


def plan(
    body: dict[str, Any] = BODY,
    *headers: tuple[str, str],
    settings: CacheSettings = ON,
    alias_cache: AliasCache | None = None,
    key_mode: Mode | None = None,
    team: str = "research",
    alias: str = "chat",
) -> CachePlan | None:
    return plan_for(scope(*headers), CHAT, body, alias, team, settings, alias_cache, key_mode)


def planned(*args: Any, **kwargs: Any) -> CachePlan:
    found = plan(*args, **kwargs)
    assert found is not None
    return found


# -- digest -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(dict(reversed(BODY.items())), id="key-order"),
        pytest.param({**BODY, "stream": True}, id="stream-true"),
        pytest.param({**BODY, "stream": False}, id="stream-false"),
        pytest.param({**BODY, "user": "alice"}, id="user"),
        pytest.param({**BODY, "stream_options": {"include_usage": True}}, id="stream-options"),
        pytest.param(
            {**BODY, "messages": [dict(reversed(m.items())) for m in BODY["messages"]]},
            id="nested-key-order",
        ),
    ],
)
def test_digest_ignores_key_order_and_fields_that_only_change_delivery_or_caller(
    variant: dict[str, Any],
) -> None:
    assert digest(CHAT, "chat", variant) == digest(CHAT, "chat", BODY)


@pytest.mark.parametrize(
    ("endpoint", "alias", "body"),
    [
        pytest.param(CHAT, "chat", {**BODY, "temperature": 0.5}, id="temperature"),
        pytest.param(CHAT, "chat", {**BODY, "max_tokens": 17}, id="max-tokens"),
        pytest.param(
            CHAT, "chat", {**BODY, "messages": [{"role": "user", "content": "2+2?"}]}, id="messages"
        ),
        pytest.param(CHAT, "chat", {**BODY, "seed": 7}, id="seed"),
        pytest.param(
            CHAT,
            "chat",
            {**BODY, "tools": [{"type": "function", "function": {"name": "add"}}]},
            id="tools",
        ),
        pytest.param(TEXT, "chat", BODY, id="endpoint"),
        pytest.param(CHAT, "chat-large", BODY, id="alias"),
    ],
)
def test_digest_changes_with_anything_that_changes_the_answer(
    endpoint: str, alias: str, body: dict[str, Any]
) -> None:
    assert digest(endpoint, alias, body) != digest(CHAT, "chat", BODY)


def test_digest_of_a_lone_surrogate_escape_is_a_key_not_an_error() -> None:
    # json.loads('"\\ud800"') is a str no UTF-8 encoder takes; a client can send it.
    lone = {**BODY, "messages": [{"role": "user", "content": json.loads('"\\ud800"')}]}
    other = {**BODY, "messages": [{"role": "user", "content": json.loads('"\\udc00"')}]}
    assert len(digest(CHAT, "chat", lone)) == 32
    assert digest(CHAT, "chat", lone) != digest(CHAT, "chat", other)


# -- deterministic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "body", "expected"),
    [
        pytest.param(EMBED, {"input": "x"}, True, id="embeddings-always"),
        pytest.param(EMBED, {"input": "x", "temperature": 1}, True, id="embeddings-any-params"),
        pytest.param(CHAT, {"temperature": 0}, True, id="temperature-0"),
        pytest.param(CHAT, {"temperature": 0.0}, True, id="temperature-0.0"),
        pytest.param(CHAT, {"temperature": 0.2}, False, id="temperature-0.2"),
        pytest.param(CHAT, {}, False, id="no-temperature-no-seed"),
        pytest.param(CHAT, {"seed": 42}, True, id="int-seed"),
        pytest.param(CHAT, {"seed": 0}, True, id="seed-0"),
        pytest.param(CHAT, {"temperature": 1.3, "seed": 42}, True, id="seed-with-temperature"),
        pytest.param(CHAT, {"seed": True}, False, id="bool-seed"),
        pytest.param(CHAT, {"seed": "42"}, False, id="string-seed"),
        pytest.param(CHAT, {"seed": 4.2}, False, id="float-seed"),
        pytest.param(CHAT, {"seed": None}, False, id="null-seed"),
        pytest.param(TEXT, {"temperature": 0}, True, id="completions-temperature-0"),
        pytest.param(TEXT, {"temperature": 1}, False, id="completions-temperature-1"),
    ],
)
def test_deterministic_means_embeddings_temperature_zero_or_an_integer_seed(
    endpoint: str, body: dict[str, Any], expected: bool
) -> None:
    assert deterministic(endpoint, body) is expected


# -- plan_for: mode, namespace, TTL, headers ----------------------------------------------


@pytest.mark.parametrize(
    ("section", "alias", "key", "cached"),
    [
        pytest.param("always", None, None, True, id="section-always"),
        pytest.param("deterministic", None, None, False, id="section-deterministic"),
        pytest.param("off", None, None, False, id="section-off"),
        pytest.param("off", "always", None, True, id="alias-always-over-section-off"),
        pytest.param("always", "off", None, False, id="alias-off-over-section-always"),
        pytest.param("always", "deterministic", None, False, id="alias-deterministic"),
        pytest.param("off", "off", "always", True, id="key-always-over-alias-off"),
        pytest.param("always", "always", "off", False, id="key-off-over-alias-always"),
        pytest.param("always", None, "deterministic", False, id="key-deterministic"),
    ],
)
def test_the_keys_mode_overrides_the_aliass_which_overrides_the_sections(
    section: Mode, alias: Mode | None, key: Mode | None, cached: bool
) -> None:
    found = plan(
        CREATIVE,
        settings=CacheSettings(enabled=True, mode=section),
        alias_cache=None if alias is None else AliasCache(mode=alias),
        key_mode=key,
    )
    assert (found is not None) is cached


@pytest.mark.parametrize("mode", ["deterministic", "always"])
def test_a_deterministic_request_is_cached_in_both_caching_modes(mode: Mode) -> None:
    assert plan(BODY, settings=CacheSettings(enabled=True, mode=mode)) is not None
    assert plan(BODY, key_mode="off") is None


@pytest.mark.parametrize(
    ("section", "alias", "expected"),
    [
        pytest.param("team", None, "research", id="team"),
        pytest.param("shared", None, "~shared", id="section-shared"),
        pytest.param("team", "shared", "~shared", id="alias-shared"),
        pytest.param("shared", "team", "research", id="alias-team-over-section-shared"),
    ],
)
def test_the_namespace_is_the_callers_team_unless_shared(
    section: Namespace, alias: Namespace | None, expected: str
) -> None:
    found = planned(
        settings=CacheSettings(enabled=True, namespace=section),
        alias_cache=AliasCache(namespace=alias),
        team="research",
    )
    assert found.namespace == expected
    assert found.key.startswith(f"gw:cache:{expected}:chat:{{")


def test_a_plan_reads_writes_and_keeps_the_sections_ttl_by_default() -> None:
    found = planned(settings=CacheSettings(enabled=True, ttl_s=90.0))
    assert found == CachePlan("research", "chat", digest(CHAT, "chat", BODY), True, True, 90.0)
    assert planned(alias_cache=AliasCache(ttl_s=30.0)).ttl_s == 30.0


@pytest.mark.parametrize(
    ("headers", "read", "write"),
    [
        pytest.param([("cache-control", "no-cache")], False, True, id="no-cache"),
        pytest.param([("cache-control", "no-store")], True, False, id="no-store"),
        pytest.param([("cache-control", "max-age=0, No-Store")], True, False, id="case-and-list"),
        pytest.param([("cache-control", "no-cache=x")], False, True, id="with-argument"),
        pytest.param([("cache-control", "max-age=60")], True, True, id="other-directive"),
    ],
)
def test_cache_control_turns_the_lookup_or_the_write_off(
    headers: list[tuple[str, str]], read: bool, write: bool
) -> None:
    found = planned(BODY, *headers)
    assert (found.read, found.write) == (read, write)
    assert found.key == planned(BODY).key


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("cache-control", "no-cache, no-store")], id="one-header"),
        pytest.param([("cache-control", "no-store"), ("cache-control", "no-cache")], id="two"),
    ],
)
def test_no_cache_with_no_store_bypasses_the_cache(headers: list[tuple[str, str]]) -> None:
    assert plan(BODY, *headers) is None


def test_the_ttl_header_overrides_the_aliass_and_the_sections_ttl() -> None:
    found = planned(BODY, ("x-gateway-cache-ttl", "5"), alias_cache=AliasCache(ttl_s=30.0))
    assert found.ttl_s == 5.0
    assert planned(BODY, ("x-gateway-cache-ttl", "0.25")).ttl_s == 0.25


@pytest.mark.parametrize("ttl", ["abc", "0", "-1", "nan", "inf", "-inf", "", "1e999"])
def test_a_bad_ttl_header_is_an_invalid_request_naming_the_header(ttl: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        plan(BODY, ("x-gateway-cache-ttl", ttl))
    assert raised.value.param == "x-gateway-cache-ttl"
    assert raised.value.status == 400


@pytest.mark.parametrize(
    ("team", "alias"),
    [
        pytest.param("a:b{c}", "x:y}{z", id="colons-and-braces"),
        pytest.param("t*[?]\\", "m*", id="glob-characters"),
        pytest.param("équipe 1/2", "modèle%41", id="spaces-unicode-percent"),
    ],
)
def test_key_and_lock_quote_team_and_alias_so_the_layout_stays_unambiguous(
    team: str, alias: str
) -> None:
    found = planned(team=team, alias=alias)
    assert found.key == f"gw:cache:{part(team)}:{part(alias)}:{{{found.digest}}}"
    assert found.lock == found.key + ":lock"
    assert found.key.count(":") == 4 and found.key.count("{") == found.key.count("}") == 1
    for quoted in (part(team), part(alias)):
        assert not set(quoted) & set(":{}*?[]\\ ")


def test_part_keeps_distinct_names_distinct() -> None:
    names = ["a:b", "a%3Ab", "a%3ab", "a b", "a+b", "a/b", "a_b", "A:B"]
    assert len({part(name) for name in names}) == len(names)


# -- config -------------------------------------------------------------------------------

PRICES = PriceBook({"gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05}})


def raw_config(**top: Any) -> dict[str, Any]:
    """One local worker behind one alias, plus ``top``'s sections."""
    return {
        "deployments": [
            {
                "name": "local-a",
                "base_url": "http://127.0.0.1:9001/v1",
                "model": "Qwen/Qwen2.5-7B-Instruct",
                "local": True,
                "gpu_hour_usd": 2.5,
            }
        ],
        "aliases": {"chat": {"deployments": ["local-a"]}},
        **top,
    }


def config(**top: Any) -> Config:
    return parse_config(raw_config(**top), PRICES)


def test_a_cache_section_sets_every_field() -> None:
    section = {
        "mode": "always",
        "ttl_s": 60,
        "namespace": "shared",
        "redis_url": "redis://127.0.0.1:6390/2",
        "timeout_ms": 40,
        "retry_s": 2,
        "wait_s": 5.5,
        "lock_ttl_s": 30,
        "poll_ms": 20,
        "compress_min_bytes": 0,
        "max_entry_bytes": 4096,
        "memory_max_bytes": 1 << 20,
    }
    settings = config(cache=section).cache
    assert settings == CacheSettings(
        enabled=True,
        mode="always",
        ttl_s=60.0,
        namespace="shared",
        redis_url="redis://127.0.0.1:6390/2",
        timeout_s=0.04,
        retry_s=2.0,
        wait_s=5.5,
        lock_ttl_s=30.0,
        poll_s=0.02,
        compress_min_bytes=0,
        max_entry_bytes=4096,
        memory_max_bytes=1 << 20,
    )
    defaults = CacheSettings()
    unchanged = [
        f.name
        for f in dataclasses.fields(CacheSettings)
        if getattr(settings, f.name) == getattr(defaults, f.name)
    ]
    assert unchanged == []  # every field was read from the section, none left at its default


def test_no_cache_section_means_no_cache() -> None:
    settings = config().cache
    assert settings == CacheSettings()
    assert settings.enabled is False


@pytest.mark.parametrize("section", [{}, None], ids=["empty-mapping", "null"])
def test_an_empty_cache_section_enables_the_defaults_on_the_accounting_redis(
    section: dict[str, Any] | None,
) -> None:
    url = "redis://127.0.0.1:6391/0"
    settings = config(cache=section, accounting={"redis_url": url}).cache
    assert settings == dataclasses.replace(CacheSettings(), enabled=True, redis_url=url)
    assert config(cache=section).cache.redis_url is None  # neither: in-process


def test_the_cache_sections_redis_url_wins_over_the_accountings() -> None:
    settings = config(
        cache={"redis_url": "redis://cache:6379/1"}, accounting={"redis_url": "redis://acc:6379/0"}
    ).cache
    assert settings.redis_url == "redis://cache:6379/1"


def test_a_bare_yaml_off_is_mode_off() -> None:
    raw = yaml.safe_load("cache:\n  mode: off\naliases:\n  chat:\n    cache: {mode: off}\n")
    assert raw["cache"]["mode"] is False  # YAML 1.1, as the gateway reads its file
    top = raw_config(cache=raw["cache"])
    top["aliases"]["chat"]["cache"] = raw["aliases"]["chat"]["cache"]
    parsed = parse_config(top, PRICES)
    assert parsed.cache.mode == "off"
    assert parsed.aliases["chat"].cache == AliasCache(mode="off")


@pytest.mark.parametrize(
    ("section", "where"),
    [
        pytest.param({"ttl": 5}, "cache.ttl", id="unknown-field"),
        pytest.param({"mode": "sometimes"}, "cache.mode", id="bad-mode"),
        pytest.param({"mode": True}, "cache.mode", id="yaml-on-is-not-a-mode"),
        pytest.param({"namespace": "global"}, "cache.namespace", id="bad-namespace"),
        pytest.param({"ttl_s": 0}, "cache.ttl_s", id="zero-ttl"),
        pytest.param({"ttl_s": "60"}, "cache.ttl_s", id="string-ttl"),
        pytest.param({"timeout_ms": -5}, "cache.timeout_ms", id="negative-timeout"),
        pytest.param({"redis_url": "http://r:6379"}, "cache.redis_url", id="bad-redis-url"),
        pytest.param({"compress_min_bytes": -1}, "cache.compress_min_bytes", id="negative-int"),
        pytest.param({"max_entry_bytes": 1.5}, "cache.max_entry_bytes", id="float-int"),
        pytest.param([], "cache", id="not-a-mapping"),
    ],
)
def test_a_bad_cache_section_is_a_config_error_naming_the_field(section: Any, where: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{where}:"):
        config(cache=section)


def alias_with(cache: Any) -> Config:
    top = raw_config()
    top["aliases"]["chat"]["cache"] = cache
    return parse_config(top, PRICES)


def test_an_aliass_cache_block_is_parsed() -> None:
    block = {"mode": "always", "ttl_s": 30, "namespace": "shared"}
    assert alias_with(block).aliases["chat"].cache == AliasCache("always", 30.0, "shared")
    assert alias_with({"ttl_s": 2.5}).aliases["chat"].cache == AliasCache(ttl_s=2.5)
    assert config().aliases["chat"].cache is None


@pytest.mark.parametrize(
    ("block", "where"),
    [
        pytest.param({"redis_url": "redis://x"}, "aliases.chat.cache.redis_url", id="section-only"),
        pytest.param({"ttl": 3}, "aliases.chat.cache.ttl", id="unknown-field"),
        pytest.param({"mode": "never"}, "aliases.chat.cache.mode", id="bad-mode"),
        pytest.param({"ttl_s": -1}, "aliases.chat.cache.ttl_s", id="negative-ttl"),
        pytest.param({"namespace": "org"}, "aliases.chat.cache.namespace", id="bad-namespace"),
    ],
)
def test_a_bad_alias_cache_block_is_a_config_error_naming_the_field(
    block: dict[str, Any], where: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^{where}:"):
        alias_with(block)


# -- entry --------------------------------------------------------------------------------

ENTRY = Entry(
    b'{"id":"chatcmpl-1","choices":[{"message":{"content":"4"}}]}', 12, 1, 1.7e9 + 0.25, "local-a"
)
REPETITIVE = b'{"content":"' + b"the same few words, over and over " * 150 + b'"}'


def test_a_small_entry_is_stored_raw_and_decodes_to_itself() -> None:
    data = ENTRY.encode(compress_min_bytes=1024)
    assert data.startswith(b"tg1r")
    assert Entry.decode(data) == ENTRY
    assert ENTRY.usage == Usage(12, 1)


def test_a_large_entry_is_compressed_smaller_and_decodes_to_itself() -> None:
    entry = dataclasses.replace(ENTRY, body=REPETITIVE, deployment="gpt-4o · eu")
    assert len(REPETITIVE) > 5000
    compressed = entry.encode(compress_min_bytes=1024)
    raw = entry.encode(compress_min_bytes=10**9)
    assert compressed.startswith(b"tg1z") and raw.startswith(b"tg1r")
    assert len(compressed) < len(raw) / 5
    assert Entry.decode(compressed) == entry == Entry.decode(raw)


def test_compression_starts_at_compress_min_bytes() -> None:
    size = len(ENTRY.encode(compress_min_bytes=10**9)) - 4  # header + newline + body
    assert ENTRY.encode(compress_min_bytes=size).startswith(b"tg1z")
    assert ENTRY.encode(compress_min_bytes=size + 1).startswith(b"tg1r")
    assert ENTRY.encode(compress_min_bytes=0).startswith(b"tg1z")


def raw(header: bytes, body: bytes = b"{}") -> bytes:
    return b"tg1r" + header + b"\n" + body


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"tg1", id="short-magic"),
        pytest.param(b"TG1R" + raw(b'[1,2,3.0,"d"]')[4:], id="wrong-magic"),
        pytest.param(b'{"choices":[]}', id="a-bare-body"),
        pytest.param(b"tg1z" + b"not zlib at all", id="bad-zlib"),
        pytest.param(b"tg1z" + zlib.compress(b"[1,2,3.0,")[:-3], id="truncated-zlib"),
        pytest.param(raw(b"{not json"), id="bad-header-json"),
        pytest.param(b"tg1z" + zlib.compress(raw(b"\xff\xfe")[4:]), id="bad-header-compressed"),
        pytest.param(raw(b'[1,2,3.0,"d"]', b""), id="missing-body"),
        pytest.param(b'tg1r[1,2,3.0,"d"]', id="no-newline"),
        pytest.param(raw(b'[-1,2,3.0,"d"]'), id="negative-prompt-tokens"),
        pytest.param(raw(b'[1,-2,3.0,"d"]'), id="negative-completion-tokens"),
        pytest.param(raw(b'[true,2,3.0,"d"]'), id="bool-tokens"),
        pytest.param(raw(b'[1.5,2,3.0,"d"]'), id="float-tokens"),
        pytest.param(raw(b"[1,2,3.0]"), id="short-header"),
        pytest.param(raw(b"null"), id="null-header"),
        pytest.param(raw(b'{"a":1,"b":2,"c":3,"d":4}'), id="object-header"),
        pytest.param(raw(b'[1,2,"now","d"]'), id="bad-timestamp"),
        pytest.param(raw(b"[1,2,3.0,7]"), id="bad-deployment"),
    ],
)
def test_bytes_that_are_not_an_entry_raise_corrupt_entry(data: bytes) -> None:
    with pytest.raises(CorruptEntry):
        Entry.decode(data)
