"""``llmcache list``: one line per cassette."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytest_llmcache._commands.common import (
    DEFAULT_DIR,
    EXIT_BAD_INPUT,
    EXIT_OK,
    display,
    emit_json,
    find_cassettes,
    human_size,
    load_cassettes,
    report_errors,
    table,
)
from pytest_llmcache.cassette import Interaction
from pytest_llmcache.exchange import read_exchange, tally
from pytest_llmcache.pricing import PriceTable, load_prices, money_json, money_text, total_cost

HELP = "one line per cassette: interactions, providers, models, streamed, tokens, cost, size"


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("list", help=HELP, description=HELP + ".", parents=parents)
    parser.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_DIR], metavar="PATH", help="cassette files or directories (default: cassettes)")
    parser.set_defaults(run=run)


def describe(path: Path, size: int, interactions: list[Interaction], prices: PriceTable) -> dict[str, Any]:
    """A cassette's totals: what `list` prints and `--json` returns (cost: None when some
    tokens belong to a model without a price)."""
    exchanges = [read_exchange(interaction, index) for index, interaction in enumerate(interactions)]
    totals = tally(exchanges)
    cost, unknown = total_cost(prices, ((model, t.input_tokens, t.output_tokens) for model, t in totals.items()))
    return {
        "path": display(path),
        "interactions": len(exchanges),
        "api_types": sorted({exchange.provider for exchange in exchanges}),
        "models": sorted({exchange.model for exchange in exchanges if exchange.model}),
        "streamed": sum(exchange.streamed for exchange in exchanges),
        "prompt_tokens": sum(t.input_tokens for t in totals.values()),
        "completion_tokens": sum(t.output_tokens for t in totals.values()),
        "cost": None if unknown else cost,
        "bytes": size,
    }


def run(args: argparse.Namespace) -> int:
    prices = load_prices()
    files = list(load_cassettes(find_cassettes(args.paths), args.progress))
    described = [describe(file.path, file.size, file.interactions, prices) for file in files if file.interactions is not None]
    errors = [{"path": display(file.path), "error": file.error} for file in files if file.error is not None]
    if args.json:
        emit_json({"currency": prices.currency, "cassettes": [{**entry, "cost": money_json(entry["cost"])} for entry in described], "errors": errors})
    elif described:
        rows = [["cassette", "calls", "api", "models", "streamed", "prompt", "completion", "cost", "size"]]
        for entry in described:
            streamed = entry["streamed"]
            rows.append(
                [
                    entry["path"],
                    str(entry["interactions"]),
                    ",".join(entry["api_types"]) or "-",
                    ",".join(entry["models"]) or "-",
                    "no" if not streamed else "yes" if streamed == entry["interactions"] else f"{streamed} of {entry['interactions']}",
                    str(entry["prompt_tokens"]),
                    str(entry["completion_tokens"]),
                    money_text(entry["cost"], prices.currency),
                    human_size(entry["bytes"]),
                ]
            )
        print(table(rows, right=(1, 5, 6, 7, 8)))
    elif not errors:
        print("no cassettes found")
    report_errors(files)
    return EXIT_BAD_INPUT if errors else EXIT_OK
