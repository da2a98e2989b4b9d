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
from pytest_llmcache._commands.exchange import Exchange
from pytest_llmcache.pricing import load_prices

HELP = "totals per model: calls, tokens, and their cost at list prices"
DESCRIPTION = """\
Totals per model (the model that answered, as the service named it; else the one asked for):
calls, prompt and completion tokens from the recorded usage, and what they would cost at the
packaged list prices (dated; standard tier, no cached-input or batch discounts). A model not in
the price table gets no price: nothing is guessed."""


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("stats", help=HELP, description=DESCRIPTION, parents=parents)
    parser.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_DIR], metavar="PATH", help="cassette files or directories (default: cassettes)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    prices = load_prices()
    totals: dict[str, dict[str, Any]] = {}
    files = list(load_cassettes(find_cassettes(args.paths), args.progress))
    for file in files:
        for index, interaction in enumerate(file.interactions or ()):
            exchange = Exchange.of(index, interaction)
            entry = totals.setdefault(exchange.billed_model or "(unknown)", {"calls": 0, "without_usage": 0, "prompt_tokens": 0, "completion_tokens": 0})
            entry["calls"] += 1
            if exchange.prompt_tokens is None:
                entry["without_usage"] += 1  # errors, and streams recorded without include_usage
            entry["prompt_tokens"] += exchange.prompt_tokens or 0
            entry["completion_tokens"] += exchange.completion_tokens or 0
    models = []
    for model, entry in sorted(totals.items()):
        price = prices.price(model)
        cost = None if price is None else price.cost(entry["prompt_tokens"], entry["completion_tokens"])
        models.append({"model": model, **entry, "priced_as": price.model if price else None, "cost": cost})
    priced = [entry["cost"] for entry in models if entry["cost"] is not None]
    summary = {
        "calls": sum(entry["calls"] for entry in models),
        "prompt_tokens": sum(entry["prompt_tokens"] for entry in models),
        "completion_tokens": sum(entry["completion_tokens"] for entry in models),
        "cost": sum(priced),
        "unpriced_models": [entry["model"] for entry in models if entry["cost"] is None],
    }
    if args.json:
        emit_json({"currency": prices.currency, "prices_as_of": prices.as_of, "models": models, "total": summary})
    else:
        rows = [["model", "calls", "prompt", "completion", f"cost ({prices.currency})"]]
        for entry in models:
            rows.append([entry["model"], str(entry["calls"]), str(entry["prompt_tokens"]), str(entry["completion_tokens"]), _money(entry["cost"])])
        rows.append(["total", str(summary["calls"]), str(summary["prompt_tokens"]), str(summary["completion_tokens"]), _money(summary["cost"])])
        print(table(rows, right=(1, 2, 3, 4)))
        print(f"list prices as of {prices.as_of}; '-': no price known for that model (not counted in the total)")
    return EXIT_BAD_INPUT if report_errors(files) else EXIT_OK


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.6f}" if value == 0 or value >= 0.000001 else "<0.000001"
