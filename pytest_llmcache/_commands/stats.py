"""``llmcache stats``: calls, tokens and list-price cost per model."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_llmcache._commands.common import (
    DEFAULT_DIR,
    EXIT_BAD_INPUT,
    EXIT_OK,
    emit_json,
    find_cassettes,
    load_cassettes,
    report_errors,
    table,
)
from pytest_llmcache.exchange import ModelTotals, read_exchange, tally
from pytest_llmcache.pricing import load_prices, money_json, money_text, total_cost

HELP = "totals per model: calls, tokens, and their cost at list prices"
DESCRIPTION = """\
Totals per model (the model that answered, as the service named it; else the one asked for):
calls, input (prompt) and output (completion) tokens from the recorded usage of every provider,
and what they would cost at the packaged list prices (dated; standard tier, no cached-input or
batch discounts). A model not in the price table gets no price: nothing is guessed. In --json,
costs are strings holding the exact decimal amount in the table's currency (null: no price)."""


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("stats", help=HELP, description=DESCRIPTION, parents=parents)
    parser.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_DIR], metavar="PATH", help="cassette files or directories (default: cassettes)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    prices = load_prices()
    files = list(load_cassettes(find_cassettes(args.paths), args.progress))
    totals: dict[str, ModelTotals] = {}
    for file in files:
        tally((read_exchange(interaction, index) for index, interaction in enumerate(file.interactions or ())), into=totals)
    whole = ModelTotals()
    for entry in totals.values():
        whole.add(entry)
    cost, unknown = total_cost(prices, ((model, t.input_tokens, t.output_tokens) for model, t in totals.items()))
    models = []
    for model, entry in sorted(totals.items()):
        price = prices.price(model)
        models.append(
            {
                "model": model,
                "calls": entry.calls,
                "without_usage": entry.without_usage,
                "prompt_tokens": entry.input_tokens,
                "completion_tokens": entry.output_tokens,
                "priced_as": price.model if price else None,
                "cost": money_json(prices.cost(model, entry.input_tokens, entry.output_tokens)),
            }
        )
    if args.json:
        summary = {
            "calls": whole.calls,
            "prompt_tokens": whole.input_tokens,
            "completion_tokens": whole.output_tokens,
            "cost": money_json(cost), "unpriced_models": [entry["model"] for entry in models if entry["cost"] is None],
        }
        emit_json({"currency": prices.currency, "prices_as_of": prices.as_of, "models": models, "total": summary})
    else:
        rows = [["model", "calls", "prompt", "completion", "cost"]]
        for model, entry in sorted(totals.items()):
            text = money_text(prices.cost(model, entry.input_tokens, entry.output_tokens), prices.currency)
            rows.append([model, str(entry.calls), str(entry.input_tokens), str(entry.output_tokens), text])
        rows.append(["total", str(whole.calls), str(whole.input_tokens), str(whole.output_tokens), money_text(cost, prices.currency, unknown)])
        print(table(rows, right=(1, 2, 3, 4)))
        print(f"list prices of {prices.as_of} ({prices.currency}); 'unknown': no price known for that model")
    return EXIT_BAD_INPUT if report_errors(files) else EXIT_OK
