"""The ``budget`` policy reads a key's real budget: as the team's spend nears its budget, the
alias moves from its preferred (dearer) deployment to the cheapest one, before any 429."""

from __future__ import annotations

import contextlib
from pathlib import Path

import openai
import pytest

from gateway.admin_client import AdminClient
from loadtests.fleet import DemoFleet, start_gateway
from tests.support.clients import CLIENT_TIMEOUT_S
from tests.support.services import demo_deployment, write_config

pytestmark = pytest.mark.e2e

MASTER = "sk-test-master"
DEAR, CHEAP = "anthropic-haiku-4-5", "openai-gpt-4o-mini"  # $1/$5 and $0.15/$0.60 per Mtok
BUDGET_USD = 0.01


def test_budget_policy_moves_to_the_cheapest_deployment_as_the_team_budget_runs_low(
    demo_fleet: DemoFleet, tmp_path: Path
) -> None:
    config = {
        "accounting": {"auth": "required", "reference_model": "gpt-4o"},
        "deployments": [demo_deployment(DEAR), demo_deployment(CHEAP)],
        "aliases": {
            "thrifty": {
                "deployments": [DEAR, CHEAP],
                "policy": "budget",
                "policy_params": {"inner": "ordered", "threshold": 0.2},
            }
        },
    }
    path = write_config(tmp_path / "budget.yaml", config)
    served: list[tuple[str, str]] = []
    with contextlib.ExitStack() as stack:
        env = {**demo_fleet.env(), "TOKEN_GATEWAY_MASTER_KEY": MASTER}
        gateway = start_gateway(stack, path, env, log_dir=tmp_path)
        admin = AdminClient(gateway.url, MASTER)
        admin.call("POST", "/admin/teams", {"team_id": "lab", "budget_usd": {"day": BUDGET_USD}})
        secret = admin.call("POST", "/admin/keys", {"team_id": "lab"})["key"]
        assert isinstance(secret, str)
        client = openai.OpenAI(
            base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0, timeout=CLIENT_TIMEOUT_S
        )
        with client:
            for _ in range(60):
                try:
                    raw = client.chat.completions.with_raw_response.create(
                        model="thrifty",
                        messages=[{"role": "user", "content": "count to ten"}],
                        max_tokens=100,
                    )
                except openai.RateLimitError:
                    break
                reason = raw.headers["x-gateway-route-reason"].split(";")[0]
                served.append((raw.headers["x-gateway-deployment"], reason))
    deployments = [d for d, _ in served]
    assert deployments[0] == DEAR  # budget ample: the inner (ordered) policy's choice
    switched = deployments.index(CHEAP)
    assert all(d == DEAR for d in deployments[:switched])
    assert all(r == "budget_low" for _, r in served[switched:])
    assert switched >= 3  # it took real spend to get there, not a cold start
