"""The fault gateway the end-to-end fixtures start (the demo fleet is ``loadtests.fleet``).

Each ``start_*`` function enters its processes into the caller's ``ExitStack``.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from pathlib import Path

from loadtests.fleet import Service, start_emulator, start_gateway
from tests.support.services import (
    EMULATOR_TIME_SCALE,
    demo_config,
    local_deployment,
    write_config,
)

FAULT_MAX_BODY_BYTES = 65536
DIE_AFTER_REQUESTS = 3


@dataclass(frozen=True, slots=True)
class FaultGateway:
    """A gateway whose aliases put broken deployments first (see ``start_fault_gateway``)."""

    gateway: Service
    healthy: Service
    failing: Service
    dying: Service
    slow: Service
    max_body_bytes: int

    @property
    def url(self) -> str:
        """Base URL of the gateway, without /v1."""
        return self.gateway.url


def refusing_port(stack: contextlib.ExitStack) -> int:
    """A loopback port that refuses connections: bound, never listening, held until exit."""
    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    return port


def start_fault_gateway(stack: contextlib.ExitStack, log_dir: Path) -> FaultGateway:
    """A gateway with aliases whose first deployments are dead, failing, dying or slow.

    Aliases: ``dead-first`` [refused port, healthy], ``failing-first`` [--fail-rate 1, healthy],
    ``dies-midway`` [--die-after 3, healthy], ``all-down`` [two refused ports], ``slow-qwen``
    [an emulator at real-time speed]; ``server.max_body_bytes`` is 65536.
    """
    fast = EMULATOR_TIME_SCALE
    healthy = start_emulator(stack, "vllm", time_scale=fast, log_dir=log_dir)
    failing = start_emulator(stack, "vllm", "--fail-rate", "1", time_scale=fast, log_dir=log_dir)
    dying = start_emulator(
        stack, "vllm", "--die-after", str(DIE_AFTER_REQUESTS), time_scale=fast, log_dir=log_dir
    )
    slow = start_emulator(stack, "vllm", time_scale=1.0, log_dir=log_dir)
    config = demo_config()
    config["server"] = {**config.get("server", {}), "max_body_bytes": FAULT_MAX_BODY_BYTES}
    config["deployments"] = [
        local_deployment("healthy", healthy.port),
        local_deployment("dead-a", refusing_port(stack)),
        local_deployment("dead-b", refusing_port(stack)),
        local_deployment("failing", failing.port),
        local_deployment("dying", dying.port),
        local_deployment("slow", slow.port),
    ]
    config["aliases"] = {
        "dead-first": {"deployments": ["dead-a", "healthy"]},
        "failing-first": {"deployments": ["failing", "healthy"]},
        "dies-midway": {"deployments": ["dying", "healthy"]},
        "all-down": {"deployments": ["dead-a", "dead-b"]},
        "slow-qwen": {"deployments": ["slow"]},
    }
    config_path = write_config(log_dir / "faults.yaml", config)
    gateway = start_gateway(stack, config_path, {}, log_dir=log_dir)
    return FaultGateway(gateway, healthy, failing, dying, slow, FAULT_MAX_BODY_BYTES)
