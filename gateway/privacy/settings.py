"""The ``privacy:`` section of the config and the data-class values it and others take.

``default_class`` (public) is every request's floor; ``queue_timeout_s`` (10) bounds how long
a pinned request waits for an allowed deployment; ``providers`` gives, per
``Deployment.provider`` (``anthropic``, ``openai_compatible``, ...), the classes that
provider's deployments may receive unless a deployment lists its own; ``audit_max_len`` caps
the audit log; ``detector`` configures the content check (``detector.py``). Local
deployments take every class unless they say otherwise; paid ones only ``public``.
Imports: stdlib and ``policies.model``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.model import DATA_CLASSES, DataClass

PRIVACY_KEYS = {"default_class", "queue_timeout_s", "providers", "audit_max_len", "detector"}
DETECTOR_KEYS = {"enabled", "detectors", "national_ids", "max_scan_bytes", "thread_above_bytes"}
BUILTIN_DETECTORS = ("email", "phone", "iban", "credit_card")
PAID_DEFAULT: tuple[DataClass, ...] = ("public",)

Check = Callable[[object, str], Any]


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Which content checks run, on how much text, and when in a thread."""

    enabled: bool = False
    detectors: tuple[str, ...] = BUILTIN_DETECTORS
    national_ids: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    """Name -> pattern, from the config (each counts as its own detector)."""
    max_scan_bytes: int = 1024 * 1024
    """Text past this many characters is not scanned (the request keeps its class)."""
    thread_above_bytes: int = 16 * 1024
    """Text longer than this is scanned in a worker thread, off the event loop."""


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    """How requests are classified and where each class may go."""

    default_class: DataClass = "public"
    queue_timeout_s: float = 10.0
    providers: Mapping[str, tuple[DataClass, ...]] = field(default_factory=dict)
    audit_max_len: int = 100_000
    detector: DetectorSettings = DetectorSettings()

    def classes_for(self, provider: str, local: bool) -> tuple[DataClass, ...]:
        """The classes a deployment that lists none may receive."""
        if local:
            return DATA_CLASSES
        return self.providers.get(provider, PAID_DEFAULT)


def parse_data_class(value: object, at: str) -> DataClass:
    """One of ``public``, ``internal``, ``private`` (ValueError naming ``at`` otherwise)."""
    for name in DATA_CLASSES:
        if value == name:
            return name
    raise ValueError(f"{at}: must be one of {', '.join(DATA_CLASSES)}, got {value!r}")


def parse_data_classes(value: object, at: str) -> tuple[DataClass, ...]:
    """A non-empty list of data classes, returned loosest first without repeats."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"{at}: must be a non-empty list of {', '.join(DATA_CLASSES)}")
    given = {parse_data_class(item, f"{at}[{i}]") for i, item in enumerate(value)}
    return tuple(c for c in DATA_CLASSES if c in given)


def parse_privacy(spec: Mapping[str, Any], *, number: Check, integer: Check) -> PrivacySettings:
    """Validate the section (unknown top-level fields already rejected by the caller)."""
    d = PrivacySettings()
    providers_spec = spec.get("providers") or {}
    if not isinstance(providers_spec, dict):
        raise ValueError("privacy.providers: must be a mapping of provider -> list of classes")
    providers = {
        str(name): parse_data_classes(classes, f"privacy.providers.{name}")
        for name, classes in providers_spec.items()
    }
    if "local" in providers:
        raise ValueError("privacy.providers.local: local deployments set data_classes themselves")
    return PrivacySettings(
        default_class=parse_data_class(
            spec.get("default_class", d.default_class), "privacy.default_class"
        ),
        queue_timeout_s=number(
            spec.get("queue_timeout_s", d.queue_timeout_s), "privacy.queue_timeout_s"
        ),
        providers=providers,
        audit_max_len=integer(spec.get("audit_max_len", d.audit_max_len), "privacy.audit_max_len"),
        detector=_detector(spec.get("detector") or {}, number=number, integer=integer),
    )


def _detector(spec: object, *, number: Check, integer: Check) -> DetectorSettings:
    at = "privacy.detector"
    if not isinstance(spec, dict):
        raise ValueError(f"{at}: must be a mapping")
    unknown = sorted(set(spec) - DETECTOR_KEYS)
    if unknown:
        allowed = ", ".join(sorted(DETECTOR_KEYS))
        raise ValueError(f"{at}.{unknown[0]}: unknown field (allowed: {allowed})")
    d = DetectorSettings()
    enabled = spec.get("enabled", d.enabled)
    if not isinstance(enabled, bool):
        raise ValueError(f"{at}.enabled: must be true or false")
    names = spec.get("detectors", list(d.detectors))
    if not isinstance(names, list):
        raise ValueError(f"{at}.detectors: must be a list of {', '.join(BUILTIN_DETECTORS)}")
    for i, name in enumerate(names):
        if name not in BUILTIN_DETECTORS:
            known = ", ".join(BUILTIN_DETECTORS)
            raise ValueError(f"{at}.detectors[{i}]: must be one of {known}, got {name!r}")
    return DetectorSettings(
        enabled=enabled,
        detectors=tuple(dict.fromkeys(names)),
        national_ids=_patterns(spec.get("national_ids") or {}, f"{at}.national_ids"),
        max_scan_bytes=integer(
            spec.get("max_scan_bytes", d.max_scan_bytes), f"{at}.max_scan_bytes"
        ),
        thread_above_bytes=integer(
            spec.get("thread_above_bytes", d.thread_above_bytes), f"{at}.thread_above_bytes"
        ),
    )


def _patterns(spec: object, at: str) -> dict[str, re.Pattern[str]]:
    if not isinstance(spec, dict):
        raise ValueError(f"{at}: must be a mapping of name -> regular expression")
    patterns: dict[str, re.Pattern[str]] = {}
    for name, pattern in spec.items():
        where = f"{at}.{name}"
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name):
            raise ValueError(f"{where}: a name is 1-32 of a-z, 0-9 and _ (a metric label)")
        if name in BUILTIN_DETECTORS:
            raise ValueError(f"{where}: {name!r} is a built-in detector's name")
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"{where}: must be a non-empty regular expression")
        try:
            patterns[name] = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{where}: not a valid regular expression: {exc}") from None
    return patterns
