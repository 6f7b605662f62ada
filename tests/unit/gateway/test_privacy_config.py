"""The ``privacy:`` section and the ``data_classes``/``data_class`` fields: defaults keep
today's behaviour, a deployment's own list wins over its provider's, errors name the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError
from tests.unit.gateway.test_config import Raw, load, minimal


def _with(raw: Raw, **privacy: Any) -> Raw:
    raw = copy.deepcopy(raw)
    raw["privacy"] = privacy
    return raw


def test_without_a_privacy_section_local_takes_every_class_and_paid_only_public(
    tmp_path: Path,
) -> None:
    config = load(tmp_path, minimal())

    assert config.privacy.default_class == "public"
    assert config.deployments["local-a"].data_classes == ("public", "internal", "private")
    assert config.deployments["paid"].data_classes == ("public",)
    assert config.aliases["chat"].data_class is None


def test_provider_default_applies_unless_the_deployment_lists_its_own(tmp_path: Path) -> None:
    raw = _with(minimal(), providers={"openai_compatible": ["internal", "public"]})
    raw["deployments"].append(
        {
            "name": "strict",
            "base_url": "https://api.example.com/v1",
            "model": "gpt-4o-mini",
            "data_classes": ["public"],
        }
    )
    config = load(tmp_path, raw)

    assert config.deployments["paid"].data_classes == ("public", "internal")
    assert config.deployments["strict"].data_classes == ("public",)


def test_alias_data_class_and_privacy_settings_are_read(tmp_path: Path) -> None:
    raw = _with(
        minimal(),
        default_class="internal",
        queue_timeout_s=2.5,
        detector={"enabled": True, "detectors": ["iban"], "national_ids": {"ssn": r"\d{3}"}},
    )
    raw["aliases"]["chat"]["data_class"] = "private"
    config = load(tmp_path, raw)

    assert config.aliases["chat"].data_class == "private"
    assert config.privacy.default_class == "internal"
    assert config.privacy.queue_timeout_s == 2.5
    assert config.privacy.detector.enabled
    assert config.privacy.detector.detectors == ("iban",)
    assert config.privacy.detector.national_ids["ssn"].pattern == r"\d{3}"


@pytest.mark.parametrize(
    ("privacy", "message"),
    [
        ({"default_class": "secret"}, "privacy.default_class: must be one of public, internal"),
        ({"queue_timeout_s": 0}, "privacy.queue_timeout_s: must be a positive"),
        ({"providers": {"anthropic": ["top"]}}, "privacy.providers.anthropic[0]: must be one"),
        ({"providers": {"anthropic": []}}, "privacy.providers.anthropic: must be a non-empty"),
        ({"providers": {"local": ["public"]}}, "privacy.providers.local: local deployments"),
        ({"detector": {"enabled": "yes"}}, "privacy.detector.enabled: must be true or false"),
        ({"detector": {"detectors": ["dna"]}}, "privacy.detector.detectors[0]: must be one of"),
        ({"detector": {"national_ids": {"x": "("}}}, "privacy.detector.national_ids.x: not a"),
        ({"detector": {"national_ids": {"Bad-Name": "x"}}}, "national_ids.Bad-Name: a name"),
        ({"detector": {"national_ids": {"iban": "x"}}}, "national_ids.iban: 'iban' is a built"),
        ({"detector": {"scan": 1}}, "privacy.detector.scan: unknown field"),
        ({"queue": 1}, "privacy.queue: unknown field"),
    ],
)
def test_bad_privacy_settings_name_the_field(
    tmp_path: Path, privacy: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load(tmp_path, _with(minimal(), **privacy))


def test_bad_deployment_and_alias_classes_name_the_field(tmp_path: Path) -> None:
    raw = minimal()
    raw["deployments"][1]["data_classes"] = ["public", "confidential"]
    with pytest.raises(ConfigError, match=r"deployments\[1\]\.data_classes\[1\]: must be one of"):
        load(tmp_path, raw)
    raw = minimal()
    raw["aliases"]["chat"]["data_class"] = "PRIVATE"
    with pytest.raises(ConfigError, match=r"aliases\.chat\.data_class: must be one of"):
        load(tmp_path, raw)
