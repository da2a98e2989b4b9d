"""``llmcache tokens``: offline input-token counts against the usage the service billed."""
from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_llmcache import token_report
from pytest_llmcache._commands.common import (
    DEFAULT_DIR,
    EXIT_OK,
    EXIT_PROBLEMS,
    InputError,
    Progress,
    display,
    emit_json,
    find_cassettes,
)
from pytest_llmcache.errors import CassetteError

HELP = "token report: recorded usage against the library's own counts"
DESCRIPTION = """\
Per model: how many offline input-token counts (tinytroupe.tokens) equal the billed
usage.prompt_tokens / usage.input_tokens, are off by one, or off by more, with the worst cases.
Reads cassettes and JSONL files of exchanges (one JSON object per line: uri, request_json,
status, response_json or response_body_text); directories are searched for both. Chat
completions, Responses API and embeddings calls that succeeded and carry usage are measured;
requests with image, audio or file parts are skipped (only text is counted)."""


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("tokens", help=HELP, description=DESCRIPTION, parents=parents)
    parser.add_argument(
        "paths", nargs="*", type=Path, default=[DEFAULT_DIR], metavar="PATH",
        help="cassettes, JSONL files of exchanges, or directories of them (default: cassettes)",
    )
    parser.set_defaults(run=run)


def _files(paths: list[Path]) -> list[Path]:
    return find_cassettes(paths, suffixes=(".yaml", ".yml", ".jsonl"))


def _read(files: list[Path], progress: bool | None) -> Iterator[token_report.Located]:
    meter = Progress(len(files), progress)
    try:
        for done, file in enumerate(files, 1):
            meter.show(done, file)
            yield from token_report.iter_exchanges([file])
    finally:
        meter.close()


def run(args: argparse.Namespace) -> int:
    try:
        report = token_report.measure(_read(_files(args.paths), args.progress))
    except CassetteError as err:
        raise InputError(f"{display(err.path)}: {err.problem}") from None
    except (OSError, ValueError) as err:
        raise InputError(str(err)) from None
    if args.json:
        emit_json(report.as_json())
    else:
        print(format_report(report))
    return EXIT_OK if report.models else EXIT_PROBLEMS


def format_report(report: token_report.TokenReport) -> str:
    """Per model: exact / off by one / off by more, the worst cases, what was skipped."""
    rows = [*sorted(report.models.items()), ("TOTAL", report.total())]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'model':<{width}}  {'n':>5} {'exact':>6} {'off±1':>6} {'off>1':>6} {'exact%':>7}"]
    for name, stats in rows:
        pct = f"{100.0 * stats.exact / stats.count:.1f}%" if stats.count else "-"
        lines.append(f"{name:<{width}}  {stats.count:>5} {stats.exact:>6} {stats.off_by_one:>6} {stats.off_by_more:>6} {pct:>7}")
    worst = sorted(((name, case) for name, stats in rows[:-1] for case in stats.worst()), key=lambda item: -abs(item[1].diff))
    if worst:
        lines += ["", "worst cases (counted vs billed):"]
        lines += [f"  {case.location}  {name}: counted {case.counted}, billed {case.billed} ({case.diff:+d})" for name, case in worst]
    if report.skipped:
        lines += ["", "skipped: " + ", ".join(f"{reason}: {n}" for reason, n in sorted(report.skipped.items()))]
    if report.fallback_models:
        lines.append(f"unknown models (counted with o200k_base): {', '.join(sorted(report.fallback_models))}")
    return "\n".join(lines)
