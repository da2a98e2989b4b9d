"""The ``llmcache`` command: inspect, check, prune, import and price cassettes.

Each subcommand lives in ``pytest_llmcache._commands.<name>`` as `add_parser` + `run(args) -> int`.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pytest_llmcache._commands import importing, init, listing, prune, show, stats, tokens, verify
from pytest_llmcache._commands.common import EXIT_BAD_INPUT, InputError, add_common_options

__all__ = ["main"]

_EPILOG = """\
exit codes:
  0  success; for verify: no problem found
  1  problems found (verify), nothing measurable (tokens), or a write refused because it
     would store a credential (import)
  2  bad arguments, a missing path, or a cassette / played manifest that can't be read
  130  interrupted

Cassette directories default to ./cassettes, the plugin's default. Add --json to any command for
one JSON document on stdout; messages go to stderr.
"""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_common_options(common)
    parser = argparse.ArgumentParser(
        prog="llmcache",
        description="Inspect, check, prune, import and price pytest-llmcache cassettes.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (init, listing, show, verify, prune, importing, stats, tokens):
        command.add_parser(subparsers, [common])
    for subparser in subparsers.choices.values():
        subparser.epilog = _EPILOG
        subparser.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except InputError as err:
        print(f"llmcache {args.command}: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"llmcache {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `llmcache list | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
