"""Config loading: the demo file validates, every error names its field, ${VAR} expands,
and prices come from litellm's bundled map or from config."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.accounting.pricing import Price
from gateway.config import Config, ConfigError, load_config

DEMO = Path(__file__).resolve().parents[3] / "configs" / "demo.yaml"

Raw = dict[str, Any]


def minimal() -> Raw:
    """A valid config: one local worker and one paid model behind one alias."""
    return {
        "deployments": [
            {
                "name": "local-a",
                "base_url": "http://127.0.0.1:9001/v1",
                "model": "Qwen/Qwen2.5-7B-Instruct",
                "local": True,
                "gpu_hour_usd": 2.5,
            },
            {"name": "paid", "base_url": "https://api.example.com/v1", "model": "gpt-4o-mini"},
        ],
        "aliases": {"chat": {"deployments": ["local-a", "paid"]}},
    }


def load(tmp_path: Path, raw: Raw, env: dict[str, str] | None = None) -> Config:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return load_config(path, env={} if env is None else env)


def paid(raw: Raw) -> Raw:
    dep: Raw = raw["deployments"][1]
    return dep


def test_demo_config_validates_with_default_ports() -> None:
    config = load_config(DEMO, env={})
    assert set(config.aliases) >= {"auto", "gpt-4o-mini", "qwen2.5-7b-instruct"}
    qwen = config.deployments["qwen-7b-a"]
    assert qwen.base_url == "http://127.0.0.1:18001/v1"
    assert (qwen.local, qwen.gpu_hour_usd, qwen.price) == (True, Decimal("3.99"), None)
    assert config.deployments["anthropic-haiku-4-5"].provider == "anthropic"
    assert config.deployments["openai-gpt-4o-mini"].timeouts.read_s == 60.0


def test_minimal_config_fills_in_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, minimal())
    dep = config.deployments["paid"]
    assert (dep.kind, dep.local, dep.gpus, dep.timeouts.connect_s) == ("openai", False, 1, 3.0)
    assert config.server.max_body_bytes == 10 * 1024 * 1024
    # Idle client connections outlive the openai SDK's 5 s pool expiry; idle worker
    # connections are dropped before vLLM's 5 s keep-alive closes them.
    assert (config.server.keep_alive_s, config.server.upstream_idle_s) == (75, 4.0)


DROP = object()  # the value that deletes the key instead of setting it


def _case(keys: tuple[str | int, ...], value: object, path: str, case_id: str) -> Any:
    return pytest.param(keys, value, path, id=case_id)


D0, D1 = ("deployments", 0), ("deployments", 1)
T0 = (*D0, "timeouts")


@pytest.mark.parametrize(
    ("keys", "value", "path"),
    [
        _case(("bogus",), 1, "bogus", "unknown-top-level-key"),
        _case((*D1, "bogus"), 1, "deployments[1].bogus", "unknown-deployment-key"),
        _case(("deployments",), {}, "deployments", "deployments-not-a-list"),
        _case((*D0, "kind"), "grpc", "deployments[0].kind", "wrong-kind"),
        _case((*D0, "name"), "a b", "deployments[0].name", "bad-name"),
        _case((*D1, "name"), "local-a", "deployments[1].name", "duplicate-deployment-name"),
        _case((*D1, "model"), DROP, "deployments[1].model", "missing-model"),
        _case((*D1, "base_url"), DROP, "deployments[1].base_url", "openai-without-base-url"),
        _case((*D1, "base_url"), "ftp://h", "deployments[1].base_url", "base-url-not-http"),
        _case((*D0, "local"), "yes", "deployments[0].local", "local-not-boolean"),
        _case((*D0, "gpu_hour_usd"), DROP, "deployments[0].gpu_hour_usd", "local-without-gpu"),
        _case((*D1, "gpu_hour_usd"), 1, "deployments[1].gpu_hour_usd", "paid-with-gpu-cost"),
        _case((*D0, "gpu_hour_usd"), -1, "deployments[0].gpu_hour_usd", "negative-gpu-cost"),
        _case((*D0, "gpu_hour_usd"), True, "deployments[0].gpu_hour_usd", "boolean-gpu-cost"),
        _case((*D0, "gpus"), -1, "deployments[0].gpus", "negative-gpus"),
        _case((*D0, "gpus"), True, "deployments[0].gpus", "boolean-gpus"),
        _case((*D0, "gpus"), 1.5, "deployments[0].gpus", "fractional-gpus"),
        _case((*D0, "context_window"), False, "deployments[0].context_window", "boolean-window"),
        _case((*D0, "max_concurrency"), -4, "deployments[0].max_concurrency", "negative-limit"),
        _case(("server", "max_body_bytes"), -1, "server.max_body_bytes", "negative-body-limit"),
        _case(("server", "cooldown_s"), 0, "server.cooldown_s", "zero-cooldown"),
        _case(("server", "bogus"), 0, "server.bogus", "unknown-server-key"),
        _case(("server", "keep_alive_s"), 0, "server.keep_alive_s", "zero-keep-alive"),
        _case(("server", "keep_alive_s"), 7.5, "server.keep_alive_s", "fractional-keep-alive"),
        _case(("server", "upstream_idle_s"), 0, "server.upstream_idle_s", "zero-upstream-idle"),
        _case((*T0, "read_s"), 0, "deployments[0].timeouts.read_s", "zero-timeout"),
        _case((*T0, "connect_s"), -1, "deployments[0].timeouts.connect_s", "negative-timeout"),
        _case((*T0, "read_s"), True, "deployments[0].timeouts.read_s", "boolean-timeout"),
        _case((*T0, "read_s"), "5", "deployments[0].timeouts.read_s", "string-timeout"),
        _case((*T0, "read_s"), float("nan"), "deployments[0].timeouts.read_s", "nan-timeout"),
        _case((*T0, "total_s"), 1, "deployments[0].timeouts.total_s", "unknown-timeout-key"),
        _case(
            (*D1, "price"),
            {"input_usd_per_mtok": -1, "output_usd_per_mtok": 1},
            "deployments[1].price.input_usd_per_mtok",
            "negative-price",
        ),
        _case(
            (*D1, "price"),
            {"input_usd_per_mtok": 1},
            "deployments[1].price.output_usd_per_mtok",
            "half-a-price",
        ),
        _case(
            (*D1, "price"),
            {"input_usd_per_mtok": 1, "output_usd_per_mtok": 1, "cached": 1},
            "deployments[1].price.cached",
            "unknown-price-key",
        ),
        _case(
            ("aliases", "x"),
            {"deployments": ["nope"]},
            "aliases.x.deployments[0]",
            "alias-naming-unknown-deployment",
        ),
        _case(("aliases", "chat", "deployments"), [], "aliases.chat.deployments", "alias-empty"),
        _case(("aliases", "chat", "polcy"), "cost", "aliases.chat.polcy", "unknown-alias-key"),
        _case(("aliases", "chat", "policy"), "cheapest", "aliases.chat.policy", "unknown-policy"),
        _case(
            ("aliases", "chat", "policy_params"),
            {"bogus": 1},
            "aliases.chat.policy",
            "unknown-policy-param",
        ),
        _case(("aliases", "chat", "slo_ttft_ms"), -5, "aliases.chat.slo_ttft_ms", "bad-slo"),
        _case(("aliases", "chat", "max_cost_usd"), "x", "aliases.chat.max_cost_usd", "bad-cost"),
        _case(("aliases",), {}, "aliases", "empty-aliases"),
        _case(("aliases",), DROP, "aliases", "missing-aliases"),
    ],
)
def test_invalid_config_error_names_the_dotted_path_of_the_bad_field(
    tmp_path: Path, keys: tuple[str | int, ...], value: object, path: str
) -> None:
    raw = minimal()
    parent: Any = raw
    for key in keys[:-1]:
        parent = parent.setdefault(key, {}) if isinstance(key, str) else parent[key]
    if value is DROP:
        del parent[keys[-1]]
    else:
        parent[keys[-1]] = value
    with pytest.raises(ConfigError) as info:
        load(tmp_path, raw)
    assert str(info.value).startswith(f"{path}:"), str(info.value)


def test_a_file_that_is_not_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("deployments: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path, env={})


@pytest.mark.parametrize(
    ("template", "env", "expected"),
    [
        pytest.param("http://h:${PORT}/v1", {"PORT": "9100"}, "http://h:9100/v1", id="set"),
        pytest.param("http://h:${PORT:-18001}/v1", {}, "http://h:18001/v1", id="default"),
        pytest.param(
            "http://h:${PORT:-18001}/v1", {"PORT": "9100"}, "http://h:9100/v1", id="set-wins"
        ),
        pytest.param("http://${HOST}:${PORT}", {"HOST": "a", "PORT": "1"}, "http://a:1", id="two"),
    ],
)
def test_environment_references_expand_from_the_env_passed_in(
    tmp_path: Path, template: str, env: dict[str, str], expected: str
) -> None:
    raw = minimal()
    paid(raw)["base_url"] = template
    assert load(tmp_path, raw, env).deployments["paid"].base_url == expected


def test_expansion_ignores_the_process_environment_when_env_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "1234")
    raw = minimal()
    paid(raw)["base_url"] = "http://h:${PORT:-18001}"
    assert load(tmp_path, raw, {}).deployments["paid"].base_url == "http://h:18001"


def test_unset_variable_without_default_names_the_field_and_the_variable(tmp_path: Path) -> None:
    raw = minimal()
    paid(raw)["base_url"] = "http://h:${MISSING_PORT}/v1"
    with pytest.raises(ConfigError) as info:
        load(tmp_path, raw, {})
    assert str(info.value).startswith("deployments[1].base_url:")
    assert "MISSING_PORT" in str(info.value)


def test_paid_price_comes_from_litellm_map_as_exact_decimal(tmp_path: Path) -> None:
    price = load(tmp_path, minimal()).deployments["paid"].price
    assert price == Price.per_million(Decimal("0.15"), Decimal("0.60"))
    assert price is not None
    assert price.input_per_token * 1_000_000 == Decimal("0.15")
    assert price.output_per_token * 1_000_000 == Decimal("0.60")


def test_provider_prefixed_model_is_priced_by_its_bare_name(tmp_path: Path) -> None:
    raw = minimal()
    paid(raw).update(kind="litellm", model="anthropic/claude-haiku-4-5")
    del paid(raw)["base_url"]
    dep = load(tmp_path, raw).deployments["paid"]
    assert dep.price == Price.per_million(Decimal("1"), Decimal("5"))
    assert dep.provider == "anthropic"


def test_price_in_config_overrides_the_map(tmp_path: Path) -> None:
    raw = minimal()
    paid(raw)["price"] = {"input_usd_per_mtok": "0.1", "output_usd_per_mtok": 0.3}
    price = load(tmp_path, raw).deployments["paid"].price
    assert price == Price(Decimal("0.0000001"), Decimal("0.0000003"))


def test_price_model_prices_a_deployment_under_another_name(tmp_path: Path) -> None:
    raw = minimal()
    paid(raw).update(model="my-org/finetuned-mini", price_model="gpt-4o-mini")
    price = load(tmp_path, raw).deployments["paid"].price
    assert price == Price.per_million(Decimal("0.15"), Decimal("0.60"))


def test_paid_deployment_with_unknown_price_fails_to_load(tmp_path: Path) -> None:
    raw = minimal()
    paid(raw)["model"] = "no-such-model-anywhere"
    with pytest.raises(ConfigError) as info:
        load(tmp_path, raw)
    assert str(info.value).startswith("deployments[1].price:")
    assert "no-such-model-anywhere" in str(info.value)


def test_local_deployment_without_a_known_price_is_fine(tmp_path: Path) -> None:
    dep = load(tmp_path, minimal()).deployments["local-a"]
    assert dep.price is None
    assert dep.gpu_hour_usd == Decimal("2.5")
    assert dep.provider == "local"
