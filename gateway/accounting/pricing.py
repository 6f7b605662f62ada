"""Per-token prices as ``Decimal``, from litellm's bundled price map or from config.

The map is the JSON file shipped inside the pinned litellm wheel (the same table litellm
loads with ``LITELLM_LOCAL_MODEL_COST_MAP=True``), read directly so that start-up does not
pay for importing litellm and never reaches for the network. Imports: stdlib only.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

_MILLION = Decimal(1_000_000)
_BUNDLED_FILE = "model_prices_and_context_window_backup.json"


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token, input and output."""

    input_per_token: Decimal
    output_per_token: Decimal

    @classmethod
    def per_million(cls, input_usd: Decimal, output_usd: Decimal) -> Price:
        """Build from the USD-per-million-tokens figures providers publish."""
        return cls(input_usd / _MILLION, output_usd / _MILLION)

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        """The exact cost of one request's tokens."""
        return self.input_per_token * input_tokens + self.output_per_token * output_tokens


class PriceBook:
    """Looks prices up by model name in a litellm-format price map."""

    def __init__(self, entries: dict[str, dict[str, object]]) -> None:
        self._entries = entries

    @classmethod
    def bundled(cls) -> PriceBook:
        """The price map inside the installed litellm wheel (loaded once per process)."""
        return cls(_bundled_entries())

    def lookup(self, model: str) -> Price | None:
        """The price of ``model``, also trying it without a ``provider/`` prefix."""
        candidates = [model]
        if "/" in model:
            candidates.append(model.split("/", 1)[1])
        for key in candidates:
            entry = self._entries.get(key)
            if entry is None or key == "sample_spec":
                continue
            inp, out = entry.get("input_cost_per_token"), entry.get("output_cost_per_token", 0)
            if isinstance(inp, int | float) and isinstance(out, int | float):
                # str() keeps the map's decimal literal (1.5e-07), not the binary float.
                return Price(Decimal(str(inp)), Decimal(str(out)))
        return None


@cache
def _bundled_entries() -> dict[str, dict[str, object]]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("litellm is not installed; its price map is needed")
    path = Path(next(iter(spec.submodule_search_locations))) / _BUNDLED_FILE
    data: dict[str, dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))
    return data
