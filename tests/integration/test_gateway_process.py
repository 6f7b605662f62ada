"""The gateway as a process: ``check-config``, and its health endpoints before any client."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from loadtests.fleet import DEMO_CONFIG, OFFLINE_ENV, REPO_ROOT, Service
from loadtests.processes import free_port, running_process
from tests.support.fleets import refusing_port
from tests.support.services import demo_config, local_deployment, write_config

pytestmark = pytest.mark.integration


def _check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, **OFFLINE_ENV},
        check=False,
    )


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response's socket
        return exc.code


def test_check_config_accepts_the_demo_config() -> None:
    result = _check_config(DEMO_CONFIG)

    assert result.returncode == 0, result.stderr


def test_check_config_rejects_a_bad_field_and_names_its_path(tmp_path: Path) -> None:
    config = demo_config()
    config["deployments"][1]["timeouts"]["read_s"] = "soon"
    result = _check_config(write_config(tmp_path / "bad.yaml", config))

    assert result.returncode != 0
    assert "deployments" in result.stderr
    assert "read_s" in result.stderr


def test_check_config_rejects_an_unknown_key(tmp_path: Path) -> None:
    config = demo_config()
    config["deployments"][0]["base_ulr"] = "http://127.0.0.1:1/v1"
    result = _check_config(write_config(tmp_path / "typo.yaml", config))

    assert result.returncode != 0
    assert "base_ulr" in result.stderr


def test_readyz_is_503_while_no_deployment_is_reachable(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        config = demo_config()
        config["deployments"] = [local_deployment("dead", refusing_port(stack))]
        config["aliases"] = {"qwen": {"deployments": ["dead"]}}
        path = write_config(tmp_path / "dead.yaml", config)
        port = free_port()
        args = [sys.executable, "-m", "gateway", "serve", "--config", str(path)]
        args += ["--host", "127.0.0.1", "--port", str(port)]
        gateway = Service(
            port,
            stack.enter_context(
                running_process(
                    args,
                    f"http://127.0.0.1:{port}/healthz",
                    timeout_s=60,
                    env=OFFLINE_ENV,
                    max_lifetime_s=120,
                    cwd=REPO_ROOT,
                )
            ),
        )

        assert _status(f"{gateway.url}/healthz") == 200
        assert _status(f"{gateway.url}/readyz") == 503
