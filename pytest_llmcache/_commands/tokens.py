"""``llmcache tokens``: the token report of `pytest_llmcache.token_report` (its own options)."""
from __future__ import annotations

import argparse
from typing import Any

HELP = "token report: recorded usage against the library's own counts"


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    try:
        from pytest_llmcache import token_report
    except ImportError:  # the report module ships separately; without it there is no command
        return
    parser = subparsers.add_parser("tokens", help=HELP, description=HELP + ".")
    token_report.add_arguments(parser)
    parser.set_defaults(run=token_report.run)
