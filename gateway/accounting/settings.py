"""The ``accounting:`` section of the config: store, auth, reference price, fault modes.

Auth is on unless the file says ``auth: off`` (the demo does); the master key is read from the
environment variable the file names, never from the file. With no ``redis_url`` the embedded
in-process store is used (one replica only). Imports: stdlib and ``pricing``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gateway.accounting.pricing import Price, PriceBook
from gateway.redis_pool import check_url

StoreDown = Literal["open", "closed"]


@dataclass(frozen=True, slots=True)
class AccountingSettings:
    """How spend is counted and limits are enforced."""

    redis_url: str | None = None
    auth: bool = True
    master_key_env: str = "TOKEN_GATEWAY_MASTER_KEY"
    reference_model: str = "gpt-4o"
    reference_price: Price | None = None
    """The price of ``reference_model``: what every request's tokens would have cost there."""
    store_timeout_s: float = 0.2
    store_retry_s: float = 1.0
    """After a store failure, admissions skip the store for this long (one probe per interval)."""
    when_store_down: StoreDown = "open"
    """``open``: requests flow unmetered by budgets and rate limits; ``closed``: 503."""
    ledger_max_len: int = 1_000_000
    backlog_max: int = 100_000
    key_cache_s: float = 2.0
    """How long a key or team record is reused before it is read again (revocation delay)."""
    max_output_tokens: int = 16_384
    """The worst case reserved for a request without ``max_tokens`` and a context window."""

    def master_key(self) -> str | None:
        """The master key from the environment, or None when unset or empty."""
        return os.environ.get(self.master_key_env) or None


Check = Callable[[object, str], Any]


def parse_accounting(
    spec: Mapping[str, Any], prices: PriceBook, *, number: Check, integer: Check, text: Check
) -> AccountingSettings:
    """Validate the section (already checked for unknown fields by the caller's checkers)."""
    d = AccountingSettings()
    at = "accounting"
    auth = spec.get("auth", "required")
    if isinstance(auth, bool):  # YAML 1.1 reads a bare `off` as false
        auth = "required" if auth else "off"
    if auth not in ("required", "off"):
        raise ValueError(f"{at}.auth: must be 'required' or 'off', got {auth!r}")
    down = spec.get("when_store_down", d.when_store_down)
    if down not in ("open", "closed"):
        raise ValueError(f"{at}.when_store_down: must be 'open' or 'closed', got {down!r}")
    url = spec.get("redis_url") or None
    if url is not None:
        url = check_url(str(url), f"{at}.redis_url")
    reference = text(spec.get("reference_model", d.reference_model), f"{at}.reference_model")
    price = prices.lookup(reference)
    if price is None:
        raise ValueError(f"{at}.reference_model: no price known for {reference!r}")
    return AccountingSettings(
        redis_url=None if url is None else str(url),
        auth=auth == "required",
        master_key_env=text(spec.get("master_key_env", d.master_key_env), f"{at}.master_key_env"),
        reference_model=reference,
        reference_price=price,
        store_timeout_s=number(spec.get("store_timeout_ms", 200), f"{at}.store_timeout_ms") / 1000,
        store_retry_s=number(spec.get("store_retry_s", d.store_retry_s), f"{at}.store_retry_s"),
        when_store_down=down,
        ledger_max_len=integer(
            spec.get("ledger_max_len", d.ledger_max_len), f"{at}.ledger_max_len"
        ),
        backlog_max=integer(spec.get("backlog_max", d.backlog_max), f"{at}.backlog_max"),
        key_cache_s=number(spec.get("key_cache_s", d.key_cache_s), f"{at}.key_cache_s"),
        max_output_tokens=integer(
            spec.get("max_output_tokens", d.max_output_tokens), f"{at}.max_output_tokens"
        ),
    )


ACCOUNTING_KEYS = {
    "redis_url",
    "auth",
    "master_key_env",
    "reference_model",
    "store_timeout_ms",
    "store_retry_s",
    "when_store_down",
    "ledger_max_len",
    "backlog_max",
    "key_cache_s",
    "max_output_tokens",
}
