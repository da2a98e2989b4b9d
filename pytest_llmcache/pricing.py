"""List prices for a handful of OpenAI models, from the dated table in ``prices.json``.

A model is priced only when its exact name (or one of the dated snapshots listed for it) is in
the table: prices differ between snapshots of the same family (gpt-4o-2024-05-13 cost twice what
gpt-4o-2024-08-06 does), so an unknown name gets no price rather than a guess.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["Price", "PriceTable", "load_prices"]


@dataclass(frozen=True)
class Price:
    """Per-1M-token list prices of one model."""

    model: str  # the table's name for it (a snapshot resolves to its family's entry)
    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    currency: str
    source: str
    prices: dict[str, Price]  # every known name and snapshot -> its price

    def price(self, model: str | None) -> Price | None:
        return self.prices.get(model) if model else None


def load_prices(document: dict[str, Any] | None = None) -> PriceTable:
    """The packaged table, or one given as the parsed `document` (same shape as prices.json)."""
    if document is None:
        document = json.loads(resources.files("pytest_llmcache").joinpath("prices.json").read_text(encoding="utf-8"))
    prices: dict[str, Price] = {}
    for name, entry in document["models"].items():
        price = Price(name, float(entry["input"]), float(entry["output"]))
        for alias in (name, *entry.get("snapshots", ())):
            prices[alias] = price
    return PriceTable(str(document["as_of"]), str(document.get("currency", "USD")), str(document.get("source", "")), prices)
