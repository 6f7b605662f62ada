"""Scheduling and the gateway config of the overhead benchmark (overhead.py, targets.py)."""

from __future__ import annotations

from pathlib import Path

from gateway.config import load_config
from loadtests.bench.overhead import interleaved
from loadtests.bench.targets import GATEWAY_ALIAS, Target, gateway_config


def _targets(*names: str) -> list[Target]:
    return [Target(name, f"http://127.0.0.1:{i}", "m", None) for i, name in enumerate(names)]


def test_rounds_alternate_direction_so_no_target_always_runs_first() -> None:
    order = [t.name for t in interleaved(_targets("direct", "floor", "gateway"), rounds=3)]
    forward, backward = ["direct", "floor", "gateway"], ["gateway", "floor", "direct"]
    assert order == [*forward, *backward, *forward]


def test_the_written_gateway_config_loads_with_one_local_deployment_behind_the_alias(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(gateway_config("http://127.0.0.1:9", "Qwen/Qwen2.5-7B-Instruct"))
    config = load_config(path, env={})
    (deployment,) = config.deployments_for(GATEWAY_ALIAS)
    assert deployment.local
    assert deployment.model == "Qwen/Qwen2.5-7B-Instruct"
    assert deployment.base_url == "http://127.0.0.1:9/v1"


def test_the_accounting_target_config_requires_keys_and_uses_the_given_redis(
    tmp_path: Path,
) -> None:
    path = tmp_path / "accounting.yaml"
    path.write_text(gateway_config("http://127.0.0.1:9", "m", "redis://127.0.0.1:7/0"))
    config = load_config(path, env={})
    assert config.accounting.auth
    assert config.accounting.redis_url == "redis://127.0.0.1:7/0"
    open_config = tmp_path / "open.yaml"
    open_config.write_text(gateway_config("http://127.0.0.1:9", "m"))
    assert not load_config(open_config, env={}).accounting.auth
