"""RPM and TPM limits are shared by every replica: a burst of 3N requests spread over three
gateways admits exactly N, and the rest get 429 with Retry-After and the ``x-ratelimit-*``
headers OpenAI sends.

TPM is charged at admission as the prompt's byte bound / 4 plus ``max_tokens`` and corrected
to the actual count when the request settles. So that no correction lands while the burst is
still being admitted, the admitted requests generate exactly ``max_tokens`` on a Qwen worker
at a fifth of real time (over a second each); the test checks that this held.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import pytest

from tests.support.accounting import (
    QWEN,
    AccountingFleet,
    Result,
    Shot,
    admin_of,
    run_load,
    start_accounting_fleet,
)
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

N = 6
STORE_TIMEOUT_MS = 1000  # see test_accounting_exactness.py: 2 cores, many processes
WORKER_TIME_SCALE = 0.2
TPM_OUTPUT = 1000
"""max_tokens of the TPM burst; the prompt adds under 100 tokens (a body under 400 bytes)."""
TPM_PER_REQUEST_BOUND = 1100


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccountingFleet]:
    """Three gateways on one Redis (module-wide: each test uses keys of its own)."""
    workdir = tmp_path_factory.mktemp("rate-limits")
    redis = RedisServer(workdir)
    redis.start()
    try:
        with contextlib.ExitStack() as stack:
            yield start_accounting_fleet(
                stack,
                workdir,
                redis.url,
                accounting={"store_timeout_ms": STORE_TIMEOUT_MS},
                qwen_time_scale=WORKER_TIME_SCALE,
            )
    finally:
        redis.stop()


def _burst(fleet: AccountingFleet, shots: list[Shot]) -> tuple[list[Result], float]:
    started = time.monotonic()
    results = asyncio.run(run_load(fleet.urls, shots, concurrency=len(shots)))
    return results, time.monotonic() - started


def _split(results: list[Result]) -> tuple[list[Result], list[Result]]:
    admitted = [r for r in results if r.status == 200]
    refused = [r for r in results if r.status == 429]
    assert len(admitted) + len(refused) == len(results), [r.status for r in results]
    return admitted, refused


def test_rpm_limit_admits_exactly_n_of_a_3n_burst_over_three_gateways(
    fleet: AccountingFleet,
) -> None:
    with admin_of(fleet) as admin:
        key = admin.create_key("rpm-team", rpm=N)
    gateways = len(fleet.urls)
    shots = [Shot(i % gateways, key.secret, QWEN, f"rpm burst {i}", 4) for i in range(3 * N)]

    results, elapsed = _burst(fleet, shots)
    admitted, refused = _split(results)

    print(f"rpm {N}: {len(admitted)} admitted, {len(refused)} refused in {elapsed:.2f} s")
    assert elapsed < 10.0
    assert len(admitted) == N
    # Each admission saw the window one fuller, whichever replica made it.
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in admitted)
    assert remaining == list(range(N))
    assert {r.headers["x-ratelimit-limit-requests"] for r in admitted} == {str(N)}
    for r in refused:
        assert r.error_code == "rate_limit_exceeded", r
        assert f"limit of {N} requests per minute" in r.message, r.message
        assert 1 <= int(r.headers["retry-after"]) <= 60, r.headers
    headers = [r.headers for r in refused]
    assert all(h.get("x-ratelimit-limit-requests") == str(N) for h in headers), str(headers[0])
    assert all(h.get("x-ratelimit-remaining-requests") == "0" for h in headers), str(headers[0])
    assert all("x-ratelimit-reset-requests" in h for h in headers), str(headers[0])


def test_team_tpm_limit_admits_exactly_n_of_a_3n_burst_over_three_gateways(
    fleet: AccountingFleet,
) -> None:
    """Every request counts between 1000 and 1100 tokens at admission, and the team's limit
    is N x 1100: N fit, N + 1 do not, whatever the exact body size."""
    limit = N * TPM_PER_REQUEST_BOUND
    with admin_of(fleet) as admin:
        admin.create_team("tpm-team", tpm=limit)
        keys = [admin.create_key("tpm-team", name=f"tpm-{n}") for n in range(3)]
    gateways = len(fleet.urls)
    shots = [
        Shot(i % gateways, keys[i % 3].secret, QWEN, f"tpm burst {i}", TPM_OUTPUT, ignore_eos=True)
        for i in range(3 * N)
    ]

    results, elapsed = _burst(fleet, shots)
    admitted, refused = _split(results)

    print(f"tpm {limit}: {len(admitted)} admitted, {len(refused)} refused in {elapsed:.2f} s")
    # The premise: no admitted request settled (giving tokens back) before the last
    # refusal - the refusals come back at once, each admitted answer takes over a second.
    assert max(r.ended for r in refused) < min(r.ended for r in admitted)
    assert len(admitted) == N
    used = sorted(limit - int(r.headers["x-ratelimit-remaining-tokens"]) for r in admitted)
    for n, tokens in enumerate(used, start=1):
        assert n * TPM_OUTPUT < tokens <= n * TPM_PER_REQUEST_BOUND, used
    for r in refused:
        assert r.error_code == "rate_limit_exceeded" and r.error_type == "tokens", r
        assert f"limit of {limit} tokens per minute" in r.message, r.message
        assert 1 <= int(r.headers["retry-after"]) <= 60, r.headers
    headers = [r.headers for r in refused]
    assert all(h.get("x-ratelimit-limit-tokens") == str(limit) for h in headers), str(headers[0])
    assert all("x-ratelimit-remaining-tokens" in h for h in headers), str(headers[0])
    assert all("x-ratelimit-reset-tokens" in h for h in headers), str(headers[0])
