"""``llmcache prune``: drop what the tests that passed did not play.

The plugin writes a played record after each test session (see `pytest_llmcache.played`;
default ``.pytest_cache/d/llmcache/played.json``, found from the working directory upwards).
Prune removes an interaction only when every test using its cassette ran and passed and none of
them played it; a cassette used by a test that failed, errored or was skipped is left alone, and
so is one changed since the session (it holds interactions the session did not see). A cassette
no collected test uses is removed when the session collected the whole suite. ``--played FILE...``
takes the records of several sessions (e.g. CI shards) and acts on their union. Nothing is
changed without ``--yes``; every file changed or removed keeps its old content as ``<name>.bak``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmcache import atomic, played
from pytest_llmcache import cassette as cassette_file
from pytest_llmcache._commands.common import (
    DEFAULT_DIR,
    EXIT_BAD_INPUT,
    EXIT_OK,
    InputError,
    display,
    emit_json,
    find_cassettes,
    load_cassettes,
    report_errors,
)
from pytest_llmcache.errors import LLMCacheError

HELP = "remove interactions and cassettes the tests that passed did not play (dry run unless --yes)"


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("prune", help=HELP, description=__doc__.split("\n\n", 1)[1], parents=parents,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR, metavar="DIR", help="the cassette directory (default: cassettes)")
    parser.add_argument("--played", nargs="+", type=Path, default=None, metavar="FILE",
                        help="played records of the sessions to act on (default: .pytest_cache/d/llmcache/played.json of this project)")
    parser.add_argument("--yes", action="store_true", help="apply the changes (default: only show them)")
    parser.set_defaults(run=run)


@dataclass
class Change:
    path: Path
    total: int
    removed: list[int] = field(default_factory=list)  # all of them: the file goes
    kept: list[cassette_file.Entry] = field(default_factory=list)
    unused: bool = False  # no collected test uses the file

    @property
    def deletes_file(self) -> bool:
        return len(self.removed) == self.total

    def describe(self, applied: bool) -> str:
        verb = "removed" if applied else "would remove"
        if self.unused:
            return f"{verb} {display(self.path)} ({self.total} interaction(s); no collected test uses it)"
        if self.deletes_file:
            return f"{verb} {display(self.path)} ({self.total} interaction(s), none played)"
        indexes = ", ".join(f"#{index}" for index in self.removed)
        return f"{verb} {len(self.removed)} of {self.total} interactions from {display(self.path)} ({indexes})"


def _record(args: argparse.Namespace, root: Path) -> played.PlayedRecord:
    paths = args.played
    if not paths:
        found = played.find(Path.cwd()) or played.find(root)
        if found is None:
            raise InputError(
                f"no played record found (.pytest_cache/{played.DEFAULT_RELATIVE.as_posix()} here or above): run the test suite "
                "first (the plugin writes it after each session), or name records with --played FILE..."
            )
        paths = [found]
    records = []
    for path in paths:
        try:
            record = played.read(path)
        except FileNotFoundError:
            raise InputError(f"{display(path)} not found: run the test suite first (the plugin writes it after each session)") from None
        except LLMCacheError as err:
            raise InputError(str(err)) from None
        if not record.about(root):
            raise InputError(f"{display(path)} is about the cassette directory {record.cassette_dir}, not {root}")
        records.append(record)
    return played.PlayedRecord.union(records)


def run(args: argparse.Namespace) -> int:
    root: Path = args.dir
    if not root.is_dir():
        raise InputError(f"{root}: not a directory")
    record = _record(args, root)
    files = list(load_cassettes(find_cassettes([root]), args.progress))
    changes: list[Change] = []
    skipped: list[str] = []
    untouched = 0
    for file in files:
        if file.interactions is None:
            continue
        name = file.path.relative_to(root).as_posix()
        use = record.cassettes.get(name)
        count = len(file.interactions)
        if use is None:
            if record.unused is not None and name in record.unused:
                changes.append(Change(file.path, count, list(range(count)), unused=True))
            else:
                untouched += 1
            continue
        if not use.complete:
            skipped.append(f"{display(file.path)}: not every test using it ran and passed")
            continue
        entries = cassette_file.load_entries(file.path)
        digests = [entry.digest for entry in entries]
        if not set(digests) <= use.interactions:
            skipped.append(f"{display(file.path)}: changed since the session (it holds interactions the session did not see)")
            continue
        removed = [index for index, digest in enumerate(digests) if digest not in use.played]
        if removed:
            kept = [entry for entry, digest in zip(entries, digests, strict=True) if digest in use.played]
            changes.append(Change(file.path, count, removed, kept))
    if args.yes:
        for change in changes:
            if change.deletes_file:
                atomic.remove(change.path)
            else:
                cassette_file.save(change.path, change.kept)
    _print(args, changes, skipped, untouched)
    return EXIT_BAD_INPUT if report_errors(files) else EXIT_OK


def _print(args: argparse.Namespace, changes: list[Change], skipped: list[str], untouched: int) -> None:
    if args.json:
        emit_json(
            {
                "applied": bool(args.yes),
                "changes": [
                    {"path": display(c.path), "interactions": c.total, "removed": c.removed, "deletes_file": c.deletes_file, "unused": c.unused}
                    for c in changes
                ],
                "skipped": skipped,
            }
        )
        return
    for change in changes:
        print(change.describe(args.yes))
    for line in skipped:
        print(f"skipped {line}")
    if untouched:
        print(f"note: {untouched} cassette(s) were used by no test of the session(s) and are left alone")
    removed = sum(len(change.removed) for change in changes)
    if not changes:
        print("nothing to prune")
    elif args.yes:
        print(f"pruned {removed} interaction(s) in {len(changes)} cassette(s)")
    else:
        print(f"{removed} interaction(s) in {len(changes)} cassette(s) would be removed; run again with --yes to apply")
