"""The one YAML file -> frozen, validated objects.

Unknown keys are rejected with the dotted path of the bad field, ``${NAME}`` and
``${NAME:-default}`` in strings are expanded from the environment (so a Helm chart or the
demo can fill in ports), and a paid deployment without a known price fails here instead of
being billed at a made-up default. Imports: stdlib, ``yaml``, ``policies`` and the settings
parsers of ``gateway.accounting``, ``gateway.cache``, ``gateway.discovery`` and
``gateway.privacy``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml

from gateway.accounting.pricing import Price, PriceBook
from gateway.accounting.settings import ACCOUNTING_KEYS, AccountingSettings, parse_accounting
from gateway.cache.settings import (
    ALIAS_CACHE_KEYS,
    CACHE_KEYS,
    AliasCache,
    CacheSettings,
    parse_alias_cache,
    parse_cache,
)
from gateway.discovery.settings import (
    DISCOVERY_KEYS,
    Discovery,
    Nameserver,
    parse_discovery,
    parse_nameserver,
)
from gateway.privacy.settings import (
    PRIVACY_KEYS,
    PrivacySettings,
    parse_data_class,
    parse_data_classes,
    parse_privacy,
)
from gateway.specialists import parse_specialists
from policies.compose import build_policy
from policies.model import DATA_CLASSES, DataClass
from policies.specialist import Classifier
from policies.worker_latency import PROFILES

Kind = Literal["openai", "litellm"]
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")


class ConfigError(ValueError):
    """The config file is invalid; the message names the bad field's path."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-deployment upstream timeouts, in seconds."""

    connect_s: float = 3.0
    read_s: float = 120.0


@dataclass(frozen=True, slots=True)
class Deployment:
    """One upstream that can serve requests: a local worker or a paid API model."""

    name: str
    kind: Kind
    model: str
    base_url: str | None
    api_key_env: str | None
    local: bool
    price: Price | None
    gpu_hour_usd: Decimal | None
    gpus: int
    context_window: int | None
    max_concurrency: int | None
    timeouts: Timeouts
    gpu: str | None = None
    """Local only: the GPU kind whose calibrated latency model predicts TTFT (h100, a100)."""
    discovery: Discovery | None = None
    """Set on a group: its members are found through DNS (then ``base_url`` is None)."""
    group: str | None = None
    """Set on a discovered member: the name of its group (never in the config file)."""
    data_classes: tuple[DataClass, ...] = DATA_CLASSES
    """The data classes it may receive (default: all if local, else per ``privacy``)."""

    @property
    def provider(self) -> str:
        """A bounded label for metrics: ``local`` or the provider part of the model name."""
        if self.local:
            return "local"
        if self.kind == "litellm" and "/" in self.model:
            return self.model.split("/", 1)[0]
        return "openai_compatible"

    def api_key(self) -> str | None:
        """The secret, read from the environment variable the config names."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None


@dataclass(frozen=True, slots=True)
class Alias:
    """A public model name, the deployments that may serve it, and how to choose."""

    name: str
    deployments: tuple[str, ...]
    policy: str = "ordered"
    policy_params: Mapping[str, object] = field(default_factory=dict)
    slo_ttft_s: float | None = None
    slo_total_s: float | None = None
    max_cost_usd: float | None = None
    cache: AliasCache | None = None
    specialists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Topic (code, math) -> the deployments that serve requests classified so."""
    classifier: Classifier | None = None
    """Set when the alias has specialists (only those aliases classify requests)."""
    data_class: DataClass | None = None
    """The least strict data class of every request to this alias (None: no floor)."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Process-wide limits and behaviour."""

    max_body_bytes: int = 10 * 1024 * 1024
    cooldown_s: float = 5.0
    scrape_interval_s: float = 1.0
    stale_after_s: float = 5.0
    dns_resolver: Nameserver | None = None
    """Where discovery sends DNS queries; None: the system resolver (/etc/resolv.conf)."""
    config_poll_s: float = 2.0
    """How often the config file is checked for changes (reloaded when it changed); 0: never
    (SIGHUP still reloads it)."""
    keep_alive_s: int = 75
    """How long an idle client connection is kept open. Longer than a client keeps its own
    idle connections (the openai SDK and httpx 5 s, aiohttp 15 s, a cloud load balancer 60 s),
    so no client sends a request on a connection the gateway is closing."""
    upstream_idle_s: float = 4.0
    """How long an idle upstream connection is kept for reuse. Shorter than the workers keep
    theirs (vLLM and SGLang serve with uvicorn's 5 s), so the gateway never sends a request on
    a connection the worker is closing."""


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    server: ServerSettings
    deployments: Mapping[str, Deployment]
    aliases: Mapping[str, Alias] = field(default_factory=dict)
    accounting: AccountingSettings = field(default_factory=AccountingSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)

    def deployments_for(self, alias: str) -> tuple[Deployment, ...]:
        """The alias's deployments as configured, a discovery group as itself (what serves
        is the live ``gateway.roster.Roster``, which expands groups to their members)."""
        return tuple(self.deployments[name] for name in self.aliases[alias].deployments)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate the YAML file at ``path``."""
    return config_from_bytes(Path(path).read_bytes(), str(path), env)


def config_from_bytes(data: bytes, source: str, env: Mapping[str, str] | None = None) -> Config:
    """Decode, expand and validate the YAML ``data`` read from ``source`` (named in errors)."""
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    return parse_config(_expand(raw, os.environ if env is None else env, ""), PriceBook.bundled())


def parse_config(raw: object, prices: PriceBook) -> Config:
    """Validate an already-loaded mapping (see ``configs/example.yaml`` for every field)."""
    try:
        return _parse(raw, prices)
    except ConfigError:
        raise
    except ValueError as exc:  # from a section's own parser; its message names the field
        raise ConfigError(str(exc)) from exc


def _parse(raw: object, prices: PriceBook) -> Config:
    top = _mapping(raw, "")
    _only(top, "", {"server", "deployments", "aliases", "accounting", "cache", "privacy"})
    server = _server(top.get("server", {}))
    privacy = _privacy(top.get("privacy", {}))
    accounting = _accounting(top.get("accounting", {}), prices)
    cache = CacheSettings() if "cache" not in top else _cache(top["cache"], accounting)
    deployments: dict[str, Deployment] = {}
    for i, item in enumerate(_list(top.get("deployments"), "deployments")):
        dep = _deployment(item, f"deployments[{i}]", prices, privacy)
        if dep.name in deployments:
            raise ConfigError(f"deployments[{i}].name: duplicate deployment {dep.name!r}")
        deployments[dep.name] = dep
    aliases = {
        name: _alias(name, spec, deployments)
        for name, spec in _mapping(top.get("aliases"), "aliases").items()
    }
    if not aliases:
        raise ConfigError("aliases: at least one alias is required")
    return Config(
        server=server,
        deployments=deployments,
        aliases=aliases,
        accounting=accounting,
        cache=cache,
        privacy=privacy,
    )


def _privacy(raw: object) -> PrivacySettings:
    spec = _mapping(raw, "privacy")
    _only(spec, "privacy", PRIVACY_KEYS)
    return parse_privacy(spec, number=_number, integer=_int)


def _accounting(raw: object, prices: PriceBook) -> AccountingSettings:
    spec = _mapping(raw, "accounting")
    _only(spec, "accounting", ACCOUNTING_KEYS)
    return parse_accounting(spec, prices, number=_number, integer=_int, text=_str)


def _cache(raw: object, accounting: AccountingSettings) -> CacheSettings:
    spec = _mapping(raw if raw is not None else {}, "cache")
    _only(spec, "cache", CACHE_KEYS)
    return parse_cache(spec, accounting.redis_url, number=_number, integer=_int)


def _server(raw: object) -> ServerSettings:
    spec = _mapping(raw, "server")
    default = ServerSettings()
    _only(spec, "server", set(ServerSettings.__dataclass_fields__))
    return ServerSettings(
        max_body_bytes=_int(
            spec.get("max_body_bytes", default.max_body_bytes), "server.max_body_bytes"
        ),
        cooldown_s=_number(spec.get("cooldown_s", default.cooldown_s), "server.cooldown_s"),
        scrape_interval_s=_number(
            spec.get("scrape_interval_s", default.scrape_interval_s), "server.scrape_interval_s"
        ),
        stale_after_s=_number(
            spec.get("stale_after_s", default.stale_after_s), "server.stale_after_s"
        ),
        dns_resolver=_nameserver(spec.get("dns_resolver"), "server.dns_resolver"),
        config_poll_s=_seconds_or_off(
            spec.get("config_poll_s", default.config_poll_s), "server.config_poll_s"
        ),
        keep_alive_s=_positive_int(
            spec.get("keep_alive_s", default.keep_alive_s), "server.keep_alive_s"
        ),
        upstream_idle_s=_number(
            spec.get("upstream_idle_s", default.upstream_idle_s), "server.upstream_idle_s"
        ),
    )


def _seconds_or_off(value: object, at: str) -> float:
    return 0.0 if value == 0 and not isinstance(value, bool) else _number(value, at)


def _nameserver(value: object, at: str) -> Nameserver | None:
    if value is None:
        return None
    return parse_nameserver(value, at)


DEPLOYMENT_KEYS = {*Deployment.__dataclass_fields__, "price_model"} - {"group"}
"""The keys a deployment may have (the Helm chart's schema is generated from them)."""


def _deployment(raw: object, at: str, prices: PriceBook, privacy: PrivacySettings) -> Deployment:
    spec = _mapping(raw, at)
    _only(spec, at, DEPLOYMENT_KEYS)
    name = _name(spec.get("name"), f"{at}.name")
    kind = spec.get("kind", "openai")
    if kind not in ("openai", "litellm"):
        raise ConfigError(f"{at}.kind: must be 'openai' or 'litellm', got {kind!r}")
    model = _str(spec.get("model"), f"{at}.model")
    base_url = _optional_str(spec.get("base_url"), f"{at}.base_url")
    discovery = _discovery(spec.get("discovery"), f"{at}.discovery")
    if discovery is not None and kind != "openai":
        raise ConfigError(f"{at}.discovery: only deployments of kind 'openai' are discovered")
    if discovery is not None and base_url is not None:
        raise ConfigError(f"{at}.discovery: give base_url or discovery, not both")
    if kind == "openai" and base_url is None and discovery is None:
        raise ConfigError(f"{at}.base_url: required for kind 'openai' (or discovery)")
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{at}.base_url: must start with http:// or https://")
    local = spec.get("local", False)
    if not isinstance(local, bool):
        raise ConfigError(f"{at}.local: must be true or false")
    gpu_hour = spec.get("gpu_hour_usd")
    if local and gpu_hour is None:
        raise ConfigError(f"{at}.gpu_hour_usd: required for a local deployment")
    if not local and gpu_hour is not None:
        raise ConfigError(f"{at}.gpu_hour_usd: only local deployments have a GPU cost")
    dep = Deployment(
        name=name,
        kind=kind,
        model=model,
        base_url=base_url.rstrip("/") if base_url else None,
        api_key_env=_optional_str(spec.get("api_key_env"), f"{at}.api_key_env"),
        local=local,
        price=_price(spec, at, model, local, prices),
        gpu_hour_usd=None if gpu_hour is None else _decimal(gpu_hour, f"{at}.gpu_hour_usd"),
        gpus=_int(spec.get("gpus", 1), f"{at}.gpus"),
        context_window=_optional_int(spec.get("context_window"), f"{at}.context_window"),
        max_concurrency=_optional_int(spec.get("max_concurrency"), f"{at}.max_concurrency"),
        timeouts=_timeouts(spec.get("timeouts", {}), f"{at}.timeouts"),
        gpu=_gpu(spec.get("gpu"), local, f"{at}.gpu"),
        discovery=discovery,
    )
    if "data_classes" in spec:
        classes = parse_data_classes(spec["data_classes"], f"{at}.data_classes")
    else:
        classes = privacy.classes_for(dep.provider, local)
    return dataclasses.replace(dep, data_classes=classes)


def _discovery(raw: object, at: str) -> Discovery | None:
    if raw is None:
        return None
    spec = _mapping(raw, at)
    _only(spec, at, DISCOVERY_KEYS)
    return parse_discovery(spec, at, number=_number)


def _gpu(value: object, local: bool, at: str) -> str | None:
    if value is None:
        return "h100" if local else None
    if not local:
        raise ConfigError(f"{at}: only local deployments have a GPU")
    if value not in PROFILES:
        raise ConfigError(f"{at}: must be one of {', '.join(sorted(PROFILES))}, got {value!r}")
    return str(value)


def _price(
    spec: Mapping[str, Any], at: str, model: str, local: bool, prices: PriceBook
) -> Price | None:
    if "price" in spec:
        p = _mapping(spec["price"], f"{at}.price")
        _only(p, f"{at}.price", {"input_usd_per_mtok", "output_usd_per_mtok"})
        return Price.per_million(
            _decimal(p.get("input_usd_per_mtok"), f"{at}.price.input_usd_per_mtok"),
            _decimal(p.get("output_usd_per_mtok"), f"{at}.price.output_usd_per_mtok"),
        )
    key = _optional_str(spec.get("price_model"), f"{at}.price_model") or model
    found = prices.lookup(key)
    if found is None and not local:
        raise ConfigError(
            f"{at}.price: no price known for {key!r} in litellm's price map; "
            "set price: {input_usd_per_mtok, output_usd_per_mtok} or price_model"
        )
    return found


def _timeouts(raw: object, at: str) -> Timeouts:
    spec = _mapping(raw, at)
    _only(spec, at, {"connect_s", "read_s"})
    default = Timeouts()
    return Timeouts(
        connect_s=_number(spec.get("connect_s", default.connect_s), f"{at}.connect_s"),
        read_s=_number(spec.get("read_s", default.read_s), f"{at}.read_s"),
    )


def _alias(name: str, raw: object, deployments: Mapping[str, Deployment]) -> Alias:
    at = f"aliases.{name}"
    _name(name, at)
    spec = _mapping(raw, at)
    _only(spec, at, ALIAS_KEYS)
    names = tuple(
        _str(d, f"{at}.deployments[{i}]")
        for i, d in enumerate(_list(spec.get("deployments"), f"{at}.deployments"))
    )
    if not names:
        raise ConfigError(f"{at}.deployments: at least one deployment is required")
    for i, dep in enumerate(names):
        if dep not in deployments:
            raise ConfigError(f"{at}.deployments[{i}]: unknown deployment {dep!r}")
    policy = _str(spec.get("policy", "ordered"), f"{at}.policy")
    params = dict(_mapping(spec.get("policy_params", {}), f"{at}.policy_params"))
    try:
        build_policy(policy, params)
    except ValueError as exc:
        raise ConfigError(f"{at}.policy: {exc}") from exc
    max_cost = spec.get("max_cost_usd")
    specialists, classifier = parse_specialists(
        spec.get("specialists"),
        spec.get("classifier"),
        at,
        deployments,
        mapping=_mapping,
        names=_names,
        number=_number,
        integer=_int,
    )
    return Alias(
        name=name,
        deployments=names,
        policy=policy,
        policy_params=params,
        slo_ttft_s=_optional_ms(spec.get("slo_ttft_ms"), f"{at}.slo_ttft_ms"),
        slo_total_s=_optional_ms(spec.get("slo_total_ms"), f"{at}.slo_total_ms"),
        max_cost_usd=None if max_cost is None else _number(max_cost, f"{at}.max_cost_usd"),
        cache=_alias_cache(spec.get("cache"), f"{at}.cache"),
        specialists=specialists,
        classifier=classifier,
        data_class=None
        if spec.get("data_class") is None
        else parse_data_class(spec["data_class"], f"{at}.data_class"),
    )


def _alias_cache(raw: object, at: str) -> AliasCache | None:
    if raw is None:
        return None
    spec = _mapping(raw, at)
    _only(spec, at, ALIAS_CACHE_KEYS)
    return parse_alias_cache(spec, at, number=_number)


ALIAS_KEYS = {  # the keys an alias may have (also read by the chart's schema generator)
    "deployments",
    "policy",
    "policy_params",
    "slo_ttft_ms",
    "slo_total_ms",
    "max_cost_usd",
    "cache",
    "specialists",
    "classifier",
    "data_class",
}


def _optional_ms(value: object, at: str) -> float | None:
    return None if value is None else _number(value, at) / 1000.0


def _expand(value: object, env: Mapping[str, str], at: str) -> object:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(1) in env:
                return env[m.group(1)]
            if m.group(2) is not None:
                return m.group(2)
            raise ConfigError(f"{at or '<root>'}: environment variable {m.group(1)} is not set")

        expanded = _ENV_REF.sub(sub, value)
        if _ENV_REF.fullmatch(value) and expanded.strip():
            # `gpus: ${GPUS:-1}` means the number 1, as if it had been written in the file.
            scalar = yaml.safe_load(expanded)
            return scalar if isinstance(scalar, int | float | bool | str) else expanded
        return expanded
    if isinstance(value, dict):
        return {k: _expand(v, env, f"{at}.{k}" if at else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, f"{at}[{i}]") for i, v in enumerate(value)]
    return value


def _only(spec: Mapping[str, Any], at: str, allowed: set[str]) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        where = f"{at}.{unknown[0]}" if at else unknown[0]
        raise ConfigError(f"{where}: unknown field (allowed: {', '.join(sorted(allowed))})")


def _mapping(value: object, at: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{at or '<root>'}: must be a mapping")
    return value


def _list(value: object, at: str) -> list[object]:
    if not isinstance(value, list):
        raise ConfigError(f"{at}: must be a list")
    return value


def _str(value: object, at: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{at}: must be a non-empty string")
    return value


def _name(value: object, at: str) -> str:
    name = _str(value, at)
    if not _NAME.match(name):
        raise ConfigError(f"{at}: {name!r} is not a valid name (letters, digits, ._:/-)")
    return name


def _names(value: object, at: str) -> tuple[str, ...]:
    names = tuple(_str(d, f"{at}[{i}]") for i, d in enumerate(_list(value, at)))
    if not names:
        raise ConfigError(f"{at}: at least one deployment is required")
    return names


def _optional_str(value: object, at: str) -> str | None:
    return None if value is None else _str(value, at)


def _int(value: object, at: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{at}: must be a non-negative integer")
    return value


def _positive_int(value: object, at: str) -> int:
    number = _int(value, at)
    if number == 0:
        raise ConfigError(f"{at}: must be a positive integer")
    return number


def _optional_int(value: object, at: str) -> int | None:
    return None if value is None else _int(value, at)


def _number(value: object, at: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{at}: must be a positive number")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{at}: must be a positive, finite number")
    return float(value)


def _decimal(value: object, at: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{at}: must be a number")
    try:
        amount = Decimal(str(value))
    except ArithmeticError as exc:
        raise ConfigError(f"{at}: must be a number") from exc
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{at}: must be a non-negative number")
    return amount
