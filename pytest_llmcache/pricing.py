"""List prices from the dated table in ``prices.json``, and how costs are written.

A model is priced only when its exact name (or one of the dated snapshots listed for it) is in
the table: prices differ between snapshots of the same family (gpt-4o-2024-05-13 cost twice what
gpt-4o-2024-08-06 does), so an unknown name gets no price rather than a guess.

Costs are exact decimals (`decimal.Decimal`; the table's prices are read as written). Text shows
them with one rule everywhere (the session report, ``llmcache list`` and ``stats``): see
`money_text`. JSON gives them as strings holding the exact decimal amount in the table's currency
(`money_json`), e.g. ``"0.0000096"``.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

__all__ = ["Price", "PriceTable", "load_prices", "money_json", "money_text", "total_cost"]

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    """Per-1M-token list prices of one model."""

    model: str  # the table's name for it (a snapshot resolves to its family's entry)
    input: Decimal
    output: Decimal

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        return (input_tokens * self.input + output_tokens * self.output) / _MILLION


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    currency: str
    source: str
    prices: dict[str, Price]  # every known name and snapshot -> its price

    def price(self, model: str | None) -> Price | None:
        return self.prices.get(model) if model else None

    def cost(self, model: str | None, input_tokens: int, output_tokens: int) -> Decimal | None:
        """The cost of these tokens of `model`, None when the model has no price."""
        price = self.price(model)
        return None if price is None else price.cost(input_tokens, output_tokens)


def load_prices(document: dict[str, Any] | None = None) -> PriceTable:
    """The packaged table, or one given as the parsed `document` (same shape as prices.json)."""
    if document is None:
        text = resources.files("pytest_llmcache").joinpath("prices.json").read_text(encoding="utf-8")
        document = json.loads(text, parse_float=Decimal)
    prices: dict[str, Price] = {}
    for name, entry in document["models"].items():
        price = Price(name, Decimal(str(entry["input"])), Decimal(str(entry["output"])))
        for alias in (name, *entry.get("snapshots", ())):
            prices[alias] = price
    return PriceTable(str(document["as_of"]), str(document.get("currency", "USD")), str(document.get("source", "")), prices)


def total_cost(table: PriceTable | None, rows: Iterable[tuple[str, int, int]]) -> tuple[Decimal, bool]:
    """(the cost of the priced (model, input tokens, output tokens) rows, whether some tokens
    belong to a model without a price)."""
    cost, unknown = Decimal(0), False
    for model, input_tokens, output_tokens in rows:
        priced = table.cost(model, input_tokens, output_tokens) if table is not None else None
        if priced is None:
            unknown = unknown or bool(input_tokens or output_tokens)
        else:
            cost += priced
    return cost, unknown


def money_text(cost: Decimal | None, currency: str = "USD", unknown: bool = False) -> str:
    """A cost for people: ``$0`` for nothing; below one unit, three significant digits
    (``$0.0000096``, ``$0.000123``); from one unit up, cents (``$12.35``). Never scientific
    notation. ``unknown`` when nothing could be priced, ``... + unknown`` when only part was."""
    if cost is None or (unknown and not cost):
        return "unknown"
    if not cost:
        digits = "0"
    elif cost >= 1:
        digits = f"{cost.quantize(Decimal('0.01')):f}"
    else:
        rounded = cost.quantize(Decimal(1).scaleb(cost.adjusted() - 2))  # three significant digits
        digits = f"{rounded.normalize():f}"
    text = f"${digits}" if currency == "USD" else f"{digits} {currency}"
    return f"{text} + unknown" if unknown else text


def money_json(cost: Decimal | None) -> str | None:
    """A cost for JSON: the exact decimal amount as a string (no float rounding), None when unknown."""
    return None if cost is None else f"{cost.normalize():f}"
