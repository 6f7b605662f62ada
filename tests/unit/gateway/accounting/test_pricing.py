"""Prices are exact Decimals per token: built per million, costed without float error."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.accounting.pricing import Price, PriceBook


def test_per_million_divides_the_published_figure_exactly() -> None:
    price = Price.per_million(Decimal("0.15"), Decimal("0.60"))
    assert price.input_per_token == Decimal("0.00000015")
    assert price.output_per_token == Decimal("0.0000006")


@pytest.mark.parametrize(
    ("per_mtok", "tokens", "expected"),
    [
        pytest.param(("0.15", "0.60"), (1_000_000, 1_000_000), "0.75", id="a-million-each"),
        pytest.param(("0.15", "0.60"), (1000, 500), "0.00045", id="gpt-4o-mini-small-call"),
        pytest.param(("3", "15"), (1234, 567), "0.012207", id="odd-token-counts"),
        pytest.param(("0.1", "0.2"), (3, 3), "0.0000009", id="float-would-round-here"),
        pytest.param(("0.02", "0"), (10, 0), "0.0000002", id="embeddings-no-output"),
        pytest.param(("2.5", "10"), (0, 0), "0", id="no-tokens-cost-nothing"),
    ],
)
def test_cost_is_exact_decimal_arithmetic(
    per_mtok: tuple[str, str], tokens: tuple[int, int], expected: str
) -> None:
    price = Price.per_million(Decimal(per_mtok[0]), Decimal(per_mtok[1]))
    cost = price.cost(*tokens)
    assert isinstance(cost, Decimal)
    assert cost == Decimal(expected)


def test_a_thousand_small_costs_add_up_to_the_exact_total() -> None:
    price = Price.per_million(Decimal("0.15"), Decimal("0.60"))
    total = sum((price.cost(7, 3) for _ in range(1_000)), Decimal(0))
    assert total == Decimal("0.00285")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        pytest.param("m", Price(Decimal("1.5E-7"), Decimal("6E-7")), id="exact-name"),
        pytest.param("openai/m", Price(Decimal("1.5E-7"), Decimal("6E-7")), id="prefix-stripped"),
        pytest.param("emb", Price(Decimal("2E-8"), Decimal("0")), id="missing-output-is-zero"),
        pytest.param("sample_spec", None, id="sample-spec-is-not-a-model"),
        pytest.param("free-text", None, id="non-numeric-cost"),
        pytest.param("unknown", None, id="unknown-model"),
    ],
)
def test_price_book_looks_models_up_by_name(model: str, expected: Price | None) -> None:
    book = PriceBook(
        {
            "m": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07},
            "emb": {"input_cost_per_token": 2e-08},
            "sample_spec": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0},
            "free-text": {"input_cost_per_token": "cheap", "output_cost_per_token": 0},
        }
    )
    assert book.lookup(model) == expected


def test_bundled_map_keeps_the_decimal_literal_not_the_binary_float() -> None:
    price = PriceBook.bundled().lookup("gpt-4o-mini")
    assert price == Price(Decimal("0.00000015"), Decimal("0.0000006"))
