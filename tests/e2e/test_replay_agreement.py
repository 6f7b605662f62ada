"""Live replay agrees with the simulator, and the predictor corrects itself on a slower GPU.

One emulated H100 worker (vLLM emulator, real time) and an emulated hosted Qwen2.5-7B paid
API (the OpenAI emulator serving ``Qwen/Qwen2.5-7B-Instruct`` with paid_latency.md §4's
open-weight placeholder, priced as DeepInfra's in litellm's map) behind the alias
``vs-hosted-qwen`` (spillover, TTFT SLO 1 s), as in ``loadtests/sim/fleet.yaml``. A slice of
the Azure conv trace is replayed through the gateway with ``loadtests.replay`` and simulated
on the same fleet (the same config file) with ``loadtests.sim.simulation``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Config, load_config
from loadtests.emulators import textgen
from loadtests.fleet import REPO_ROOT, start_emulator, start_gateway
from loadtests.replay import ReplayResult, replay
from loadtests.sim.fleet import fleet_from_config
from loadtests.sim.replay import replay_slice
from loadtests.sim.simulation import RunResult, SimSettings, simulate
from loadtests.sim.trace import TraceRequest, read_trace
from policies.compose import build_policy
from tests.support.services import write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONV = REPO_ROOT.parent / "shared" / "data" / "traces" / "azure_llm_2023_conv.csv"
ALIAS = "vs-hosted-qwen"
PAID_MODEL = "Qwen/Qwen2.5-7B-Instruct"
SLO_MS = 1000
RATE_SCALE = 4.0
TOLERANCE = 0.10
MAX_SEND_LAG_P99_S = 0.1
"""Past this, the machine could not replay the trace on time (the client, the emulators and the
gateway share two cores): what ran was not the trace the simulator saw, so agreement is not
measurable. Seen on a machine where CPython ran a 10M-step loop in 1.2 s: p99 lag 250-460 ms,
at the commit before accounting as well as after."""


@dataclass(frozen=True, slots=True)
class Slice:
    """Trace seconds [start, start + duration) of the conv trace."""

    start_s: float
    duration_s: float


AGREEMENT_SLICE = Slice(1200.0, 240.0)
SLOW_GPU_SLICE = Slice(300.0, 240.0)


def fleet_config(worker_port: int, paid_port: int) -> dict[str, Any]:
    """The gateway config: one local H100 worker, one paid hosted Qwen, one spillover alias."""
    return {
        "deployments": [
            {
                "name": "qwen-7b-h100",
                "kind": "openai",
                "base_url": f"http://127.0.0.1:{worker_port}/v1",
                "model": "Qwen/Qwen2.5-7B-Instruct",
                "local": True,
                "gpu_hour_usd": 3.99,
                "gpus": 1,
                "context_window": 32768,
            },
            {
                "name": "hosted-qwen2.5-7b",
                "kind": "openai",
                "base_url": f"http://127.0.0.1:{paid_port}/v1",
                "model": PAID_MODEL,
                "price_model": "deepinfra/Qwen/Qwen2.5-7B-Instruct",
                "api_key_env": "OPENAI_API_KEY",
                "context_window": 32768,
            },
        ],
        "aliases": {
            ALIAS: {
                "deployments": ["qwen-7b-h100", "hosted-qwen2.5-7b"],
                "policy": "spillover",
                "slo_ttft_ms": SLO_MS,
            }
        },
    }


@dataclass(frozen=True, slots=True)
class LiveFleet:
    """The running gateway and the config it serves."""

    url: str
    config: Config
    config_path: Path


@contextlib.contextmanager
def live_fleet(logs: Path, worker_time_scale: float) -> Iterator[LiveFleet]:
    """Worker and paid emulators and the gateway, stopped when the block ends."""
    with contextlib.ExitStack() as stack:
        worker = start_emulator(stack, "vllm", time_scale=worker_time_scale, log_dir=logs)
        paid = start_emulator(stack, "openai", "--models", PAID_MODEL, log_dir=logs)
        path = write_config(logs / "replay.yaml", fleet_config(worker.port, paid.port))
        gateway = start_gateway(stack, path, {}, log_dir=logs, max_lifetime_s=300)
        yield LiveFleet(gateway.url, load_config(path), path)


def conv_slice(part: Slice) -> list[TraceRequest]:
    """The slice, compressed ``RATE_SCALE``-fold."""
    return replay_slice(read_trace(CONV), part.start_s, part.duration_s, RATE_SCALE)


def live(fleet: LiveFleet, requests: list[TraceRequest]) -> ReplayResult:
    """Replay through the gateway, with the paid emulator's output lengths matched."""
    lengths = textgen.load_output_lengths(textgen.DEFAULT_TRACE)
    return asyncio.run(
        replay(
            requests,
            fleet.url,
            ALIAS,
            fleet.config,
            slo_ttft_s=SLO_MS / 1000,
            natural_lengths=lengths,
        )
    )


def simulated(config: Config, requests: list[TraceRequest], slow_gpu: float = 1.0) -> RunResult:
    """The simulator on the same slice, fleet, policy and SLO."""
    alias = config.aliases[ALIAS]
    policy = build_policy(alias.policy, alias.policy_params)
    settings = SimSettings(SLO_MS / 1000, slow_gpu=slow_gpu, alias=ALIAS)
    return simulate(requests, fleet_from_config(config, ALIAS), policy, settings)


def sim_local_share(result: RunResult) -> float:
    """Share of requests the simulated local worker served."""
    local = {w.name for w in result.fleet.locals}
    served = [result.fleet.order[i] for i in result.served_by if i >= 0]
    return sum(1 for name in served if name in local) / len(result.requests)


def require_on_time(result: ReplayResult, text: str) -> None:
    """Skip, saying why, when the sender itself fell behind the trace's schedule (checked
    before errors: a client starved that long can time out; the skip message shows them)."""
    lag = result.lag_p99_s()
    if lag > MAX_SEND_LAG_P99_S:
        pytest.skip(f"the replay left {1000 * lag:.0f} ms late at p99 (machine too slow):\n{text}")


def report(label: str, result: ReplayResult, sim: RunResult, seconds: float) -> str:
    """One line per side, for the test log."""
    sim_att = sum(1 for t in sim.ttft_s if t <= SLO_MS / 1000) / len(sim.ttft_s)
    return (
        f"{label} ({len(result.sent)} requests, {seconds:.0f} s live)\n"
        f"  live: {result.summary()}\n"
        f"  sim:  local share {100 * sim_local_share(sim):.1f}%, paid $ {sim.paid_usd:.6f}, "
        f"SLO attainment {100 * sim_att:.2f}%"
    )


def test_live_replay_spends_and_stays_local_as_the_simulator_predicts(
    tmp_path: Path,
) -> None:
    requests = conv_slice(AGREEMENT_SLICE)
    with live_fleet(tmp_path, worker_time_scale=1.0) as fleet:
        started = time.monotonic()
        result = live(fleet, requests)
        seconds = time.monotonic() - started
        sim = simulated(fleet.config, requests)
    text = report("agreement", result, sim, seconds)
    print(text)
    require_on_time(result, text)
    assert result.errors == 0, text
    sim_local = sim_local_share(sim)
    assert 0.80 <= sim_local <= 0.95, "the slice should spill roughly 5-20% to paid"
    assert result.local_share == pytest.approx(sim_local, rel=TOLERANCE), text
    assert float(result.paid_usd) == pytest.approx(sim.paid_usd, rel=TOLERANCE), text


def test_predictor_keeps_the_slo_on_a_gpu_25_percent_slower_than_calibrated(
    tmp_path: Path,
) -> None:
    requests = conv_slice(SLOW_GPU_SLICE)
    with live_fleet(tmp_path, worker_time_scale=1.25) as fleet:
        started = time.monotonic()
        result = live(fleet, requests)
        seconds = time.monotonic() - started
        sim = simulated(fleet.config, requests, slow_gpu=1.25)
    warm_up = len(requests) // 5
    text = report("slow GPU x1.25", result, sim, seconds)
    text += f"\n  live SLO attainment after warm-up: {100 * result.attainment(warm_up):.2f}%"
    print(text)
    require_on_time(result, text)
    assert result.errors == 0, text
    assert result.attainment(skip=warm_up) >= 0.99, text
    assert result.local_share >= 0.8, text
