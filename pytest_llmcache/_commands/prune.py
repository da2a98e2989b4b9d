"""``llmcache prune``: drop what the last test session did not play.

The plugin writes ``<cassette dir>/.llmcache-played.json`` after each session (see
`pytest_llmcache.report`). Prune removes the interactions it lists as not played, and the cassette
files it doesn't list at all, or of which nothing was played. A cassette whose interaction count
differs from what the session saw was changed since (re-recorded, edited) and is left alone.
Nothing is changed without ``--yes``; rewritten cassettes go through the cassette module's atomic
save (which keeps a ``.bak``), and the manifest is updated to match.
"""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

HELP = "remove interactions and cassettes the last test session did not play (dry run unless --yes)"


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("prune", help=HELP, description=__doc__.split("\n\n", 1)[1], parents=parents,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR, metavar="DIR", help="the cassette directory (default: cassettes)")
    parser.add_argument("--yes", action="store_true", help="apply the changes (default: only show them)")
    parser.set_defaults(run=run)


@dataclass
class Change:
    path: Path
    name: str  # relative to the cassette directory, as in the manifest
    total: int
    removed: list[int] = field(default_factory=list)  # all of them: the file goes

    @property
    def deletes_file(self) -> bool:
        return len(self.removed) == self.total

    def describe(self, applied: bool) -> str:
        verb = "removed" if applied else "would remove"
        if self.deletes_file:
            return f"{verb} {display(self.path)} ({self.total} interaction(s), none played)"
        indexes = ", ".join(f"#{index}" for index in self.removed)
        return f"{verb} {len(self.removed)} of {self.total} interactions from {display(self.path)} ({indexes})"


def _read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        entries = document["cassettes"]
        return {str(name): {"interactions": int(entry["interactions"]), "played": [int(i) for i in entry["played"]]} for name, entry in entries.items()}
    except FileNotFoundError:
        raise InputError(f"{display(path)} not found: run the test suite first (the plugin writes it after each session)") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise InputError(f"{display(path)} can't be used ({type(err).__name__}: {err}); run the test suite again") from None


def _write_manifest(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"version": 1, "cassettes": dict(sorted(entries.items()))}, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def run(args: argparse.Namespace) -> int:
    from pytest_llmcache.report import MANIFEST_NAME  # imports pytest: only when pruning

    root: Path = args.dir
    if not root.is_dir():
        raise InputError(f"{root}: not a directory")
    manifest_path = root / MANIFEST_NAME
    entries = _read_manifest(manifest_path)
    files = list(load_cassettes(find_cassettes([root]), args.progress))
    changes: list[Change] = []
    skipped: list[str] = []
    unknown = 0
    for file in files:
        if file.interactions is None:
            continue
        name = file.path.relative_to(root).as_posix()
        entry = entries.get(name)
        count = len(file.interactions)
        if entry is None:
            unknown += 1
            changes.append(Change(file.path, name, count, list(range(count))))
        elif entry["interactions"] != count:
            skipped.append(f"{display(file.path)}: changed since the last session ({count} interactions; the session saw {entry['interactions']})")
        else:
            unplayed = sorted(set(range(count)) - set(entry["played"]))
            if unplayed:
                changes.append(Change(file.path, name, count, unplayed))
    if args.yes:
        for change in changes:
            _apply(change, entries, next(file.interactions for file in files if file.path == change.path))
        if changes:
            _write_manifest(manifest_path, entries)
    _print(args, changes, skipped, unknown)
    return EXIT_BAD_INPUT if report_errors(files) else EXIT_OK


def _apply(change: Change, entries: dict[str, dict[str, Any]], interactions: list[cassette_file.Interaction]) -> None:
    if change.deletes_file:
        change.path.unlink()
        entries.pop(change.name, None)
        return
    removed = set(change.removed)
    kept = [interaction for index, interaction in enumerate(interactions) if index not in removed]
    cassette_file.save(change.path, kept)
    entries[change.name] = {"interactions": len(kept), "played": list(range(len(kept)))}


def _print(args: argparse.Namespace, changes: list[Change], skipped: list[str], unknown: int) -> None:
    if args.json:
        emit_json(
            {
                "applied": bool(args.yes),
                "changes": [
                    {"path": display(c.path), "interactions": c.total, "removed": c.removed, "deletes_file": c.deletes_file} for c in changes
                ],
                "skipped": skipped,
            }
        )
        return
    for change in changes:
        print(change.describe(args.yes))
    for line in skipped:
        print(f"skipped {line}")
    if unknown:
        print(f"note: {unknown} cassette(s) were not used by the last session at all; if it ran only part of the suite, run the whole suite first")
    removed = sum(len(change.removed) for change in changes)
    if not changes:
        print("nothing to prune")
    elif args.yes:
        print(f"pruned {removed} interaction(s) in {len(changes)} cassette(s)")
    else:
        print(f"{removed} interaction(s) in {len(changes)} cassette(s) would be removed; run again with --yes to apply")
