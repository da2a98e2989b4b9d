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
from pytest_llmcache._commands.exchange import Exchange

HELP = "one line per cassette: interactions, API types, models, streamed, tokens, size"


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("list", help=HELP, description=HELP + ".", parents=parents)
    parser.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_DIR], metavar="PATH", help="cassette files or directories (default: cassettes)")
    parser.set_defaults(run=run)


def describe(path: Path, size: int, interactions: list[Any]) -> dict[str, Any]:
    """A cassette's totals: what `list` prints and `--json` returns."""
    exchanges = [Exchange.of(index, interaction) for index, interaction in enumerate(interactions)]
    return {
        "path": display(path),
        "interactions": len(exchanges),
        "api_types": sorted({exchange.api for exchange in exchanges}),
        "models": sorted({exchange.model for exchange in exchanges if exchange.model}),
        "streamed": sum(exchange.streamed for exchange in exchanges),
        "prompt_tokens": sum(exchange.prompt_tokens or 0 for exchange in exchanges),
        "completion_tokens": sum(exchange.completion_tokens or 0 for exchange in exchanges),
        "bytes": size,
    }


def run(args: argparse.Namespace) -> int:
    files = list(load_cassettes(find_cassettes(args.paths), args.progress))
    described = [describe(file.path, file.size, file.interactions) for file in files if file.interactions is not None]
    errors = [{"path": display(file.path), "error": file.error} for file in files if file.error is not None]
    if args.json:
        emit_json({"cassettes": described, "errors": errors})
    elif described:
        rows = [["cassette", "calls", "api", "models", "streamed", "prompt", "completion", "size"]]
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
                    human_size(entry["bytes"]),
                ]
            )
        print(table(rows, right=(1, 5, 6, 7)))
    elif not errors:
        print("no cassettes found")
    report_errors(files)
    return EXIT_BAD_INPUT if errors else EXIT_OK
