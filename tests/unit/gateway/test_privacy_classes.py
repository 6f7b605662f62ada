"""A request's data class: the strictest of default, team, key, alias and header; a header
may tighten, never loosen (400 naming the header and the class required)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.accounting.model import Principal, Team, VirtualKey
from gateway.config import Alias
from gateway.errors import InvalidRequest
from gateway.privacy.classes import PUBLIC_BY_DEFAULT, classify
from gateway.privacy.gate import PrivacyGate
from gateway.privacy.settings import DetectorSettings, PrivacySettings
from policies.model import DataClass


def _scope(value: str | None = None) -> dict[str, Any]:
    headers = [] if value is None else [(b"x-gateway-data-class", value.encode())]
    return {"headers": [(b"content-type", b"application/json"), *headers]}


def _principal(team: DataClass | None = None, key: DataClass | None = None) -> Principal:
    return Principal(Team("t", data_class=team), VirtualKey("k", "h", "t", data_class=key))


def _alias(data_class: DataClass | None = None) -> Alias:
    return Alias("chat", ("local-a",), data_class=data_class)


def test_nothing_set_is_public_by_default_without_building_anything() -> None:
    assert classify(_scope(), "public", _principal(), _alias()) is PUBLIC_BY_DEFAULT


@pytest.mark.parametrize(
    ("default", "team", "key", "alias", "header", "expected", "sources"),
    [
        ("internal", None, None, None, None, "internal", ("default",)),
        ("public", "internal", None, None, None, "internal", ("team",)),
        ("public", "internal", "private", None, None, "private", ("key",)),
        ("public", None, "internal", "internal", None, "internal", ("key", "alias")),
        ("public", None, None, None, "private", "private", ("header",)),
        ("public", "internal", None, None, "internal", "internal", ("team", "header")),
        ("public", None, None, None, " Internal ", "internal", ("header",)),
        ("internal", None, None, None, "private", "private", ("header",)),
    ],
)
def test_the_strictest_level_wins_and_names_what_set_it(
    default: DataClass,
    team: DataClass | None,
    key: DataClass | None,
    alias: DataClass | None,
    header: str | None,
    expected: DataClass,
    sources: tuple[str, ...],
) -> None:
    found = classify(_scope(header), default, _principal(team, key), _alias(alias))

    assert (found.data_class, found.sources) == (expected, sources)


def test_a_header_looser_than_the_key_requires_is_refused_naming_both() -> None:
    with pytest.raises(InvalidRequest) as caught:
        classify(_scope("public"), "public", _principal(key="private"), _alias())

    assert caught.value.status == 400
    assert caught.value.param == "x-gateway-data-class"
    assert "'public' is looser than the 'private' this request requires" in caught.value.message


def test_a_header_looser_than_the_default_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="looser than the 'internal'"):
        classify(_scope("public"), "internal", _principal(), _alias())


@pytest.mark.parametrize("value", ["secret", "", "PUBLIC,private", "1"])
def test_an_unknown_header_value_is_refused_naming_the_allowed_values(value: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        classify(_scope(value), "public", _principal(), _alias())

    assert caught.value.message.startswith(
        "header x-gateway-data-class: must be one of public, internal, private, got"
    )


def test_open_mode_without_a_key_uses_team_and_alias() -> None:
    principal = Principal(Team("default", data_class="internal"))

    assert classify(_scope(), "public", principal, _alias()).data_class == "internal"


def _gate(**detector: Any) -> PrivacyGate:
    return PrivacyGate(PrivacySettings(detector=DetectorSettings(enabled=True, **detector)))


def _chat(text: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}]}


def test_the_detector_upgrades_a_public_request_to_private_naming_the_detector() -> None:
    found = asyncio.run(
        _gate().classify(_scope(), _principal(), _alias(), _chat("IBAN GB82WEST12345698765432"))
    )

    assert (found.data_class, found.sources) == ("private", ("default", "detector:iban"))


def test_a_long_text_is_scanned_in_a_thread_with_the_same_answer() -> None:
    text = "x " * 50 + "card 4111111111111111"
    found = asyncio.run(
        _gate(thread_above_bytes=10).classify(_scope(), _principal(), _alias(), _chat(text))
    )

    assert found.data_class == "private"
    assert found.sources[-1] == "detector:credit_card"


def test_an_already_private_request_is_not_scanned_again() -> None:
    found = asyncio.run(
        _gate().classify(
            _scope(), _principal(key="private"), _alias(), _chat("GB82WEST12345698765432")
        )
    )

    assert found.sources == ("key",)


def test_without_the_detector_text_does_not_change_the_class() -> None:
    gate = PrivacyGate(PrivacySettings())
    found = asyncio.run(
        gate.classify(_scope(), _principal(), _alias(), _chat("GB82WEST12345698765432"))
    )

    assert found is PUBLIC_BY_DEFAULT
