"""``llmcache import``: other tools' cassettes -> this project's format, scrubbed."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_llmcache._commands.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_PROBLEMS,
    InputError,
    Progress,
    display,
    emit_json,
    find_cassettes,
)
from pytest_llmcache.errors import CassetteError, SecretLeakError
from pytest_llmcache.importer import ImportResult, import_cassette
from pytest_llmcache.paths import SUFFIX, safe_name
from pytest_llmcache.scrubbing import Scrubber

HELP = "convert vcrpy / pytest-recording / pydantic-ai cassettes into this project's format, scrubbed"
DESCRIPTION = """\
Convert vcrpy / pytest-recording / pydantic-ai cassettes (string, !!binary, gzip and parsed_body
bodies) into this project's format. A file SRC lands as DIR/<its name>.yaml; a directory's
cassettes keep their relative paths under DIR. Every interaction is scrubbed as if just recorded
(placeholder hosts, no auth headers or cookies); calls to other services are left out. Re-running
is idempotent: unchanged output is not rewritten."""


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("import", help=HELP, description=DESCRIPTION, parents=parents)
    parser.add_argument("sources", nargs="+", type=Path, metavar="SRC", help="cassette files or directories to import")
    parser.add_argument("--to", required=True, type=Path, metavar="DIR", help="where the converted cassettes go")
    parser.set_defaults(run=run)


def _plan(sources: list[Path], target: Path) -> list[tuple[Path, Path]]:
    """(source file, destination) pairs; two sources may not land on one destination."""
    pairs: list[tuple[Path, Path]] = []
    for source in sources:
        for found in find_cassettes([source]):
            relative = found.relative_to(source).parts if source.is_dir() else (found.name,)
            *folders, name = relative
            pairs.append((found, target.joinpath(*map(safe_name, folders), safe_name(Path(name).stem) + SUFFIX)))
    seen: dict[Path, Path] = {}
    for found, destination in pairs:
        if destination in seen:
            raise InputError(f"{display(seen[destination])} and {display(found)} would both be imported as {display(destination)}")
        seen[destination] = found
    return pairs


def _describe(result: ImportResult) -> str:
    if result.status == "empty":
        line = f"empty      no OpenAI call in {display(result.source)}: nothing written"
    else:
        line = f"{result.status:9}  {result.interactions:3} interaction(s)  {display(result.source)} -> {display(result.destination)}"
    if result.skipped_hosts:
        line += f"  (left out {len(result.skipped_hosts)} call(s) to {', '.join(sorted(set(result.skipped_hosts)))})"
    return line


def run(args: argparse.Namespace) -> int:
    pairs = _plan(args.sources, args.to)
    results: list[ImportResult] = []
    failures: list[dict[str, str]] = []
    leaked = False
    meter = Progress(len(pairs), args.progress)
    try:
        for done, (source, destination) in enumerate(pairs, 1):
            meter.show(done, source)
            try:
                # One scrubber per file: a credential seen in one source must not block another's write.
                results.append(import_cassette(source, destination, Scrubber()))
            except (CassetteError, OSError) as err:
                failures.append({"source": display(source), "error": getattr(err, "problem", None) or str(err)})
            except SecretLeakError as err:
                leaked = True
                failures.append({"source": display(source), "error": str(err)})
    finally:
        meter.close()
    if args.json:
        emit_json(
            {
                "imported": [
                    {
                        "source": display(r.source),
                        "destination": display(r.destination),
                        "status": r.status,
                        "interactions": r.interactions,
                        "left_out": r.skipped_hosts,
                    }
                    for r in results
                ],
                "failed": failures,
            }
        )
    else:
        for result in results:
            print(_describe(result))
        written = sum(result.status in ("new", "updated") for result in results)
        print(f"{written} cassette(s) written, {sum(r.status == 'unchanged' for r in results)} unchanged, {len(failures)} failed")
    for failure in failures:
        print(f"llmcache import: {failure['source']}: {failure['error']}", file=sys.stderr)
    if leaked:
        return EXIT_PROBLEMS
    return EXIT_BAD_INPUT if failures else EXIT_OK
