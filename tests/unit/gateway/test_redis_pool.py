"""Which Redis URLs the config accepts, and how a Sentinel URL is read."""

from __future__ import annotations

import pytest

from gateway.redis_pool import SentinelUrl, check_url, parse_sentinel_url


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://user:secret@redis.example:6380/1",
        "unix:///var/run/redis.sock",
        "redis+sentinel://s1:26379/gw",
    ],
)
def test_accepted_urls(url: str) -> None:
    assert check_url(url, "accounting.redis_url") == url


def test_other_schemes_are_rejected_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"^cache\.redis_url: must start with one of"):
        check_url("http://127.0.0.1:6379", "cache.redis_url")


def test_sentinel_url_parts() -> None:
    assert parse_sentinel_url(
        "redis+sentinel://app:p%40ss@s1.ns.svc:26379,10.0.0.2:26380,[::1]:26381/gw-main/3"
    ) == SentinelUrl(
        sentinels=(("s1.ns.svc", 26379), ("10.0.0.2", 26380), ("::1", 26381)),
        service="gw-main",
        db=3,
        username="app",
        password="p@ss",
    )


def test_sentinel_url_defaults() -> None:
    parsed = parse_sentinel_url("redis+sentinel://:secret@s1:26379/gw")
    assert (parsed.db, parsed.username, parsed.password) == (0, None, "secret")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://s1:26379", "expected redis\\+sentinel://"),
        ("redis+sentinel://s1:26379/", "expected redis\\+sentinel://"),
        ("redis+sentinel:///gw", "expected redis\\+sentinel://"),
        ("redis+sentinel://s1/gw", "'s1' is not HOST:PORT"),
        ("redis+sentinel://s1:26379,s2:port/gw", "'s2:port' is not HOST:PORT"),
        ("redis+sentinel://s1:26379/gw/zero", "the database 'zero' is not a number"),
        ("redis+sentinel://s1:26379/gw/0/extra", "expected redis\\+sentinel://"),
    ],
)
def test_bad_sentinel_urls_say_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=rf"^accounting\.redis_url: .*{says}"):
        check_url(url, "accounting.redis_url")
