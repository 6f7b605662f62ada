"""The gateway a run loads: the demo fleet the runner starts, or one already running on
loopback; and the scenario's teams, created through the gateway's admin API.

``open_gateway`` yields a ``Gateway`` and, for the demo target, stops every process it
started when the block ends. ``provision_teams`` creates (or updates) each team and a key for
it with the master key, and ``revoke_keys`` disables those keys after the run, so a real
gateway keeps no live load-test keys. Imports: stdlib, ``gateway.admin_client``,
``loadtests``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.admin_client import MASTER_KEY_ENV, AdminClient, AdminError
from loadtests.fleet import DEMO_CONFIG, LIFETIME_S, start_demo_fleet, start_gateway
from loadtests.loadrun.scenario import DemoTarget, ScenarioError, Target

SETUP_ALLOWANCE_S = 120.0
"""Start-up, team provisioning and the after-run settling, on top of the run's bound."""


@dataclass(frozen=True, slots=True)
class Gateway:
    """The gateway under load and what the runner knows about it."""

    url: str
    pid: int | None = None
    """Its process, when the runner started it (its CPU time is measured)."""
    worker_urls: tuple[str, ...] = ()
    """The local workers' base URLs, when the runner started them (their queues are read)."""
    emulator_pids: tuple[int, ...] = ()
    """The upstream emulators' processes, when the runner started them (their CPU time)."""
    master_key: str | None = None


@dataclass(frozen=True, slots=True)
class TeamKeys:
    """One key per team: secrets for Locust, ids to revoke afterwards."""

    secrets: Mapping[str, str] = field(default_factory=dict)
    key_ids: tuple[str, ...] = ()


@contextlib.contextmanager
def open_gateway(target: Target, workdir: Path, run_time_s: float) -> Iterator[Gateway]:
    """The target's gateway for the duration of the block."""
    if not isinstance(target, DemoTarget):
        yield Gateway(target.url, master_key=os.environ.get(MASTER_KEY_ENV) or None)
        return
    if run_time_s + SETUP_ALLOWANCE_S > LIFETIME_S:
        raise ScenarioError(
            f"run_time_s: the demo fleet lives {LIFETIME_S:g} s; "
            f"at most {LIFETIME_S - SETUP_ALLOWANCE_S:g} s against target demo"
        )
    worker_args = (
        () if target.max_num_seqs is None else ("--max-num-seqs", str(target.max_num_seqs))
    )
    with contextlib.ExitStack() as stack:
        fleet = start_demo_fleet(
            stack, workdir, time_scale=target.time_scale, worker_args=worker_args
        )
        master_key = "sk-loadtest-" + secrets.token_urlsafe(16)
        env = {**fleet.env(), MASTER_KEY_ENV: master_key}
        gateway = start_gateway(stack, DEMO_CONFIG, env, log_dir=workdir)
        yield Gateway(
            url=gateway.url,
            pid=gateway.process.pid,
            worker_urls=(fleet.qwen_a.url, fleet.qwen_b.url),
            emulator_pids=tuple(
                s.process.pid for s in (fleet.qwen_a, fleet.qwen_b, fleet.openai, fleet.anthropic)
            ),
            master_key=master_key,
        )


def provision_teams(
    gateway: Gateway, teams: Mapping[str, Mapping[str, Any]], key_name: str
) -> TeamKeys:
    """Create each team (update it when it exists) and one key named ``key_name`` for it."""
    if not teams:
        return TeamKeys()
    if gateway.master_key is None:
        raise ScenarioError(f"teams: creating teams needs the master key in {MASTER_KEY_ENV}")
    admin = AdminClient(gateway.url, gateway.master_key)
    keys: dict[str, str] = {}
    ids: list[str] = []
    for team_id, settings in teams.items():
        try:
            admin.call("POST", "/admin/teams", {"team_id": team_id, **settings})
        except AdminError as exc:
            if exc.status != 409:
                raise
            admin.call("PATCH", f"/admin/teams/{team_id}", dict(settings))
        created = admin.call("POST", "/admin/keys", {"team_id": team_id, "name": key_name})
        keys[team_id] = str(created["key"])
        ids.append(str(created["key_id"]))
    return TeamKeys(keys, tuple(ids))


def revoke_keys(gateway: Gateway, keys: TeamKeys) -> None:
    """Disable the run's keys (kept for the audit trail, as the admin API does)."""
    if not keys.key_ids or gateway.master_key is None:
        return
    admin = AdminClient(gateway.url, gateway.master_key)
    for key_id in keys.key_ids:
        admin.call("POST", f"/admin/keys/{key_id}/revoke")
