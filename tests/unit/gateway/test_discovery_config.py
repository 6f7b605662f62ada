"""The ``discovery:`` block of a deployment and ``server.dns_resolver``: the shape the Helm
chart renders loads (and passes ``check-config``), defaults fill in, and every bad spec names
its field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import main
from gateway.config import Config, ConfigError, load_config
from gateway.discovery.settings import Discovery, Nameserver

Raw = dict[str, Any]

CHART_SHAPE = """
server:
  dns_resolver: 127.0.0.1:5353
deployments:
  - name: qwen-7b
    kind: openai
    model: Qwen/Qwen2.5-7B-Instruct
    local: true
    gpu_hour_usd: 3.99
    gpus: 1
    gpu: h100
    max_concurrency: 256
    discovery:
      dns: qwen-7b-workers.default.svc.cluster.local
      port: 8000
      interval_s: 10
      path: /v1
  - name: dashscope-qwen-plus
    kind: openai
    base_url: https://dashscope-intl.aliyuncs.com/compatible-mode/v1
    model: qwen-plus
    price_model: dashscope/qwen-plus
aliases:
  qwen2.5-7b-instruct:
    deployments: [qwen-7b, dashscope-qwen-plus]
"""


def group(**discovery: object) -> Raw:
    """A valid config with one discovered group and one paid fallback."""
    raw: Raw = yaml.safe_load(CHART_SHAPE)
    raw["deployments"][0]["discovery"] = {"dns": "workers.svc", **discovery}
    return raw


def load(tmp_path: Path, raw: Raw) -> Config:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return load_config(path, env={})


def test_the_chart_shape_loads_with_every_field(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(CHART_SHAPE, encoding="utf-8")
    config = load_config(path, env={})
    dep = config.deployments["qwen-7b"]
    assert dep.discovery == Discovery("qwen-7b-workers.default.svc.cluster.local", 8000, 10.0)
    assert (dep.base_url, dep.local, dep.max_concurrency) == (None, True, 256)
    assert config.server.dns_resolver == Nameserver("127.0.0.1", 5353)
    assert config.aliases["qwen2.5-7b-instruct"].deployments == ("qwen-7b", "dashscope-qwen-plus")


def test_check_config_accepts_the_chart_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(CHART_SHAPE, encoding="utf-8")
    assert main(["check-config", str(path)]) == 0
    assert capsys.readouterr().out.startswith("ok:")


def test_discovery_defaults_and_no_resolver_means_the_system_one(tmp_path: Path) -> None:
    raw = group()
    del raw["server"]
    config = load(tmp_path, raw)
    assert config.deployments["qwen-7b"].discovery == Discovery("workers.svc", 8000, 10.0, "/v1")
    assert config.server.dns_resolver is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("127.0.0.1:5353", Nameserver("127.0.0.1", 5353), id="ipv4-port"),
        pytest.param("10.96.0.10", Nameserver("10.96.0.10", 53), id="ipv4-default-port"),
        pytest.param("[::1]:5353", Nameserver("::1", 5353), id="ipv6-port"),
        pytest.param("[fd00::a]", Nameserver("fd00::a", 53), id="ipv6-bracketed"),
        pytest.param("fd00::a", Nameserver("fd00::a", 53), id="ipv6-bare"),
    ],
)
def test_dns_resolver_forms(tmp_path: Path, value: str, expected: Nameserver) -> None:
    raw = group()
    raw["server"] = {"dns_resolver": value}
    assert load(tmp_path, raw).server.dns_resolver == expected


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param("/", "", id="root"),
        pytest.param("/v1/", "/v1", id="trailing-slash"),
        pytest.param("/api/v1", "/api/v1", id="deeper"),
    ],
)
def test_path_is_kept_without_trailing_slash(tmp_path: Path, path: str, value: str) -> None:
    discovery = load(tmp_path, group(path=path)).deployments["qwen-7b"].discovery
    assert discovery is not None and discovery.path == value


DISC = "deployments[0].discovery"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"discovery": {"dns": "w.svc", "ttl": 5}}, f"{DISC}.ttl", id="unknown-key"),
        pytest.param({"discovery": "w.svc"}, DISC, id="not-a-mapping"),
        pytest.param({"discovery": {"port": 8000}}, f"{DISC}.dns", id="no-dns"),
        pytest.param({"discovery": {"dns": "a b.svc"}}, f"{DISC}.dns", id="dns-with-space"),
        pytest.param({"discovery": {"dns": "a..svc"}}, f"{DISC}.dns", id="dns-empty-label"),
        pytest.param({"discovery": {"dns": "-a.svc"}}, f"{DISC}.dns", id="dns-leading-hyphen"),
        pytest.param({"discovery": {"dns": 5}}, f"{DISC}.dns", id="dns-not-a-string"),
        pytest.param({"discovery": {"dns": "w", "port": 0}}, f"{DISC}.port", id="port-zero"),
        pytest.param({"discovery": {"dns": "w", "port": 70000}}, f"{DISC}.port", id="port-big"),
        pytest.param({"discovery": {"dns": "w", "port": "80"}}, f"{DISC}.port", id="port-text"),
        pytest.param({"discovery": {"dns": "w", "port": True}}, f"{DISC}.port", id="port-bool"),
        pytest.param(
            {"discovery": {"dns": "w", "interval_s": 0}}, f"{DISC}.interval_s", id="interval-zero"
        ),
        pytest.param(
            {"discovery": {"dns": "w", "interval_s": -1}}, f"{DISC}.interval_s", id="interval-neg"
        ),
        pytest.param({"discovery": {"dns": "w", "path": "v1"}}, f"{DISC}.path", id="path-relative"),
        pytest.param({"discovery": {"dns": "w", "path": "/v1?x"}}, f"{DISC}.path", id="path-query"),
        pytest.param({"base_url": "http://w:8000/v1"}, DISC, id="base-url-and-discovery"),
        pytest.param({"kind": "litellm"}, DISC, id="litellm-discovered"),
        pytest.param({"group": "qwen"}, "deployments[0].group", id="group-is-not-a-config-key"),
    ],
)
def test_bad_discovery_is_a_config_error_naming_the_field(
    tmp_path: Path, change: Raw, field: str
) -> None:
    raw = group()
    raw["deployments"][0].update(change)
    with pytest.raises(ConfigError) as info:
        load(tmp_path, raw)
    assert str(info.value).startswith(f"{field}:"), str(info.value)


def test_openai_deployment_needs_base_url_or_discovery(tmp_path: Path) -> None:
    raw = group()
    del raw["deployments"][0]["discovery"]
    with pytest.raises(ConfigError, match=r"^deployments\[0\]\.base_url: required .*discovery"):
        load(tmp_path, raw)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("dns.svc:53", id="a-name"),
        pytest.param("127.0.0.1:0", id="port-zero"),
        pytest.param("127.0.0.1:x", id="port-text"),
        pytest.param("[::1:53", id="unclosed-bracket"),
        pytest.param("[::1]53", id="no-colon-after-bracket"),
        pytest.param("", id="empty"),
        pytest.param(5353, id="a-number"),
    ],
)
def test_bad_dns_resolver_names_the_field(tmp_path: Path, value: object) -> None:
    raw = group()
    raw["server"] = {"dns_resolver": value}
    with pytest.raises(ConfigError, match=r"^server\.dns_resolver: "):
        load(tmp_path, raw)
