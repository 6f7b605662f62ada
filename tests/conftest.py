"""Shared fixtures: real processes (redis-server, emulators, the gateway), bounded and stopped.

Each fixture starts its processes on free loopback ports, waits until they serve, and stops them
when its scope ends, also when a test fails; a watchdog kills anything that outlives its bound
(see ``tests/support``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtests.fleet import (
    DEMO_CONFIG,
    OFFLINE_ENV,
    REPO_ROOT,
    DemoFleet,
    Service,
    start_demo_fleet,
    start_gateway,
)
from tests.support.fleets import FaultGateway, start_fault_gateway
from tests.support.redis_server import RedisServer
from tests.support.services import EMULATOR_TIME_SCALE

# Test modules that import litellm must not make it fetch its price map from the network.
for _key, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root directory."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def python_exe() -> str:
    """The interpreter running the tests (the project's venv)."""
    return sys.executable


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh ``redis-server`` on a free loopback port, killed when the test ends."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def demo_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoFleet]:
    """Two vLLM Qwen emulators, an OpenAI and an Anthropic emulator (time scale 0.01)."""
    with contextlib.ExitStack() as stack:
        logs = tmp_path_factory.mktemp("demo-fleet")
        yield start_demo_fleet(stack, logs, time_scale=EMULATOR_TIME_SCALE)


@pytest.fixture(scope="session")
def demo_gateway(
    demo_fleet: DemoFleet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """The gateway serving configs/demo.yaml in front of ``demo_fleet``."""
    logs = tmp_path_factory.mktemp("demo-gateway")
    with contextlib.ExitStack() as stack:
        yield start_gateway(stack, DEMO_CONFIG, demo_fleet.env(), log_dir=logs)


@pytest.fixture(scope="session")
def gateway_url(demo_gateway: Service) -> str:
    """Base URL of the demo gateway (``http://127.0.0.1:PORT``, without /v1)."""
    return demo_gateway.url


@pytest.fixture(scope="session")
def fault_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultGateway]:
    """A gateway whose aliases start with dead, failing, dying or slow deployments."""
    with contextlib.ExitStack() as stack:
        yield start_fault_gateway(stack, tmp_path_factory.mktemp("fault-gateway"))
