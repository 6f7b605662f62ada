"""The content detector: true positives with valid check digits, negatives without, only
message text scanned, and never a matched string in what it answers."""

from __future__ import annotations

import re

import pytest

from gateway.privacy.detector import Detector, iban_valid, luhn_valid, request_text
from gateway.privacy.settings import DetectorSettings

ALL = Detector(DetectorSettings(enabled=True))


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("pay to GB82WEST12345698765432 today", ("iban",)),
        ("IBAN GB82 WEST 1234 5698 7654 32 THANKS", ("iban",)),
        ("DE89370400440532013000", ("iban",)),
        ("card 4111111111111111 exp 12/29", ("credit_card",)),
        ("card 4111 1111 1111 1111", ("credit_card",)),
        ("amex 3782-822463-10005", ("credit_card",)),
        ("write to ana.lopez+x@example.co.uk", ("email",)),
        ("call +44 20 7946 0958 after six", ("phone",)),
        ("call +1 (415) 555-2671", ("phone",)),
    ],
)
def test_personal_data_is_found(text: str, found: tuple[str, ...]) -> None:
    assert ALL.scan(text) == found


@pytest.mark.parametrize(
    "text",
    [
        "GB83WEST12345698765432",  # wrong IBAN check digits
        "order GB82WEST1234",  # too short for an IBAN
        "4111111111111112",  # fails Luhn
        "1234567890123456",  # random digits: not a card prefix, fails Luhn
        "the run took 8237465012394 ns",  # fails Luhn
        "version 2.14.3, build 20261130",
        "ticket #12345678 and +12 points",  # too few digits for a phone number
        "user@localhost",  # no domain
        "Summarise the attached quarterly report in three bullet points.",
    ],
)
def test_ordinary_text_and_bad_check_digits_are_not_flagged(text: str) -> None:
    assert ALL.scan(text) == ()


def test_check_digit_functions() -> None:
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("GB82WEST12345698765433")
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111121")


def test_only_the_configured_detectors_and_national_id_patterns_run() -> None:
    settings = DetectorSettings(
        enabled=True,
        detectors=("email",),
        national_ids={"es_dni": re.compile(r"\b\d{8}[A-Z]\b")},
    )
    detector = Detector(settings)

    assert detector.names == ("email", "es_dni")
    assert detector.scan("DNI 12345678Z, card 4111111111111111") == ("es_dni",)


def test_text_past_max_scan_bytes_is_not_scanned() -> None:
    detector = Detector(DetectorSettings(enabled=True, max_scan_bytes=100))

    assert detector.scan("x" * 100 + " GB82WEST12345698765432") == ()
    assert detector.scan("GB82WEST12345698765432 " + "x" * 100) == ("iban",)


def test_request_text_reads_message_contents_and_text_parts_not_other_fields() -> None:
    parsed: dict[str, object] = {
        "model": "ana@example.com",
        "user": "GB82WEST12345698765432",
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hello"},
                    {"type": "image_url", "image_url": {"url": "https://x/4111111111111111"}},
                ],
            },
            {"role": "assistant", "content": None},
        ],
    }

    assert request_text(parsed) == "be brief\nhello"
    assert request_text({"prompt": ["a", "b"]}) == "a\nb"
    assert request_text({"input": "embed me"}) == "embed me"
