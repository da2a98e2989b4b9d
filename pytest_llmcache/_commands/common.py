"""What every command shares: exit codes, finding and loading cassettes, progress, output."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Iterator, Sequence

from pytest_llmcache import cassette as cassette_file
from pytest_llmcache.errors import CassetteError
from pytest_llmcache.paths import display

__all__ = [
    "DEFAULT_DIR",
    "EXIT_BAD_INPUT",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "CassetteFile",
    "InputError",
    "Progress",
    "add_common_options",
    "display",
    "emit_json",
    "find_cassettes",
    "human_size",
    "load_cassettes",
    "report_errors",
    "table",
]

EXIT_OK = 0
EXIT_PROBLEMS = 1  # the command worked and found something wrong (verify), or a write was refused
EXIT_BAD_INPUT = 2  # bad arguments, a missing path, or a cassette / manifest that can't be read

DEFAULT_DIR = Path("cassettes")
_SUFFIXES = (".yaml", ".yml")


class InputError(Exception):
    """Input the command can't work with; main() prints it and exits with EXIT_BAD_INPUT."""


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout instead of text")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress on stderr (default: when stderr is a terminal)",
    )


def find_cassettes(paths: Sequence[Path], suffixes: tuple[str, ...] = _SUFFIXES) -> list[Path]:
    """The cassette files in `paths` (files as given, directories searched recursively for
    names ending in `suffixes`, sorted).

    Hidden files (an interrupted save's ``.name.tmp``) and ``.bak`` copies are not cassettes.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(
                candidate
                for candidate in path.rglob("*")
                if candidate.suffix in suffixes
                and candidate.is_file()
                and not any(part.startswith(".") for part in candidate.relative_to(path).parts)
            )
        else:
            raise InputError(f"{path}: no such file or directory")
    return found


@dataclass
class CassetteFile:
    """A cassette as read by a command: its interactions, or why they couldn't be read."""

    path: Path
    size: int
    interactions: list[cassette_file.Interaction] | None = None
    error: str | None = None


class Progress:
    """``[i/n] path`` on one rewritten stderr line while files are read."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.width = 0

    def show(self, done: int, path: Path) -> None:
        if self.enabled:
            line = f"[{done}/{self.total}] {display(path)}"[:200]
            sys.stderr.write("\r" + line.ljust(self.width))
            sys.stderr.flush()
            self.width = len(line)

    def close(self) -> None:
        if self.enabled and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()


def load_cassettes(paths: Iterable[Path], progress: bool | None) -> Iterator[CassetteFile]:
    """Each cassette in `paths`, loaded; a broken one comes back with its `error` set."""
    paths = list(paths)
    meter = Progress(len(paths), progress)
    try:
        for done, path in enumerate(paths, 1):
            meter.show(done, path)
            size = path.stat().st_size if path.exists() else 0
            try:
                yield CassetteFile(path, size, interactions=cassette_file.load(path))
            except CassetteError as err:
                yield CassetteFile(path, size, error=err.problem)
            except OSError as err:
                yield CassetteFile(path, size, error=f"it can't be read ({err.strerror or err})")
    finally:
        meter.close()


def report_errors(files: Iterable[CassetteFile]) -> int:
    """Print one stderr line per unreadable cassette; the number printed."""
    count = 0
    for file in files:
        if file.error is not None:
            print(f"llmcache: {display(file.path)}: {file.error}", file=sys.stderr)
            count += 1
    return count


def emit_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    return f"{size / 1024:.1f} kB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"


def table(rows: Sequence[Sequence[str]], right: Iterable[int] = ()) -> str:
    """`rows` (the first one a header) as aligned columns; `right`: the columns to right-align."""
    right = set(right)
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(width) if column in right else cell.ljust(width) for column, (cell, width) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
