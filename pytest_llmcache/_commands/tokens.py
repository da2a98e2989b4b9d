"""``llmcache tokens``: the token report of `pytest_llmcache.token_report` (its own options)."""
from __future__ import annotations

import argparse
from typing import Any

from pytest_llmcache import token_report

HELP = "token report: recorded usage against the library's own counts"


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    # token_report declares its own --json; the common options would clash with it.
    parser = subparsers.add_parser(
        "tokens",
        help=HELP,
        description=token_report.__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    token_report.add_arguments(parser)
    parser.set_defaults(run=token_report.run)
