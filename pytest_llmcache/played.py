"""The played record: what a test session used of each cassette, read by ``llmcache prune``.

At the end of a session in which some test used a cassette, the plugin writes (``--llm-played
PATH``, else ``<pytest cache dir>/d/llmcache/played.json``, by default under the rootdir)::

    {"version": 2, "cassette_dir": "/abs/path/cassettes", "cassette_dir_name": "cassettes",
     "cassettes": {"tests/test_x/test_y.yaml": {"interactions": ["<digest>", ...],
                                                "played": ["<digest>", ...],
                                                "tests": {"tests/test_x.py::test_y": true}}},
     "unused": ["old/test_gone.yaml"]}

Interactions are named by their digest (`pytest_llmcache.cassette.Entry.digest`, also in the
cassette's index comments), so the record stays true however the file was merged or reordered.
Per cassette (path relative to the cassette directory): the interactions the file held as the
session left it; those that tests which passed (setup, call and teardown) played or recorded;
and every collected test using it, with whether it passed (null: not run in this session). ``unused`` lists the cassettes no collected
test uses, when the whole suite was collected (else null). The cassette folder is never
written: a replay-only session on a read-only checkout leaves it alone.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_llmcache import atomic
from pytest_llmcache.errors import PlayedRecordError

__all__ = ["DEFAULT_RELATIVE", "CassetteUse", "PlayedRecord", "find", "read", "write"]

VERSION = 2
# Under pytest's cache directory (its cache_dir ini key; .pytest_cache by default).
DEFAULT_RELATIVE = Path("d", "llmcache", "played.json")
_DEFAULT_CACHE_DIR = ".pytest_cache"


@dataclass
class CassetteUse:
    """What one session did with one cassette."""

    interactions: set[str] = field(default_factory=set)  # digests of what the file held after the session
    played: set[str] = field(default_factory=set)  # digests played or recorded by tests that passed
    # every collected test using the cassette: True passed (setup, call, teardown), False ran and
    # did not pass (failed, errored, skipped), None not run in this session (deselected)
    tests: dict[str, bool | None] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether every test using the cassette ran and passed."""
        return all(self.tests.values())

    def add(self, other: CassetteUse) -> None:
        """Take in another session's use: a test that did not pass in one of them did not pass."""
        self.interactions |= other.interactions
        self.played |= other.played
        for node_id, passed in other.tests.items():
            known = self.tests.get(node_id)
            if passed is None:
                self.tests.setdefault(node_id, None)
            else:
                self.tests[node_id] = passed if known is None else known and passed


@dataclass
class PlayedRecord:
    """The played record of one session, or the union of several (`union`)."""

    cassette_dir: Path
    cassette_dir_name: str  # the cassette directory relative to the rootdir, for records from other machines
    cassettes: dict[str, CassetteUse] = field(default_factory=dict)
    unused: set[str] | None = None  # cassettes no collected test uses; None: not all of the suite was collected
    source: str = ""  # the file(s) it was read from

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": VERSION,
                "cassette_dir": str(self.cassette_dir),
                "cassette_dir_name": self.cassette_dir_name,
                "cassettes": {
                    name: {"interactions": sorted(use.interactions), "played": sorted(use.played), "tests": dict(sorted(use.tests.items()))}
                    for name, use in sorted(self.cassettes.items())
                },
                "unused": None if self.unused is None else sorted(self.unused),
            },  # no indent: the standard library indents in pure Python (7x slower for 2,000 cassettes)
        ) + "\n"

    def about(self, directory: Path) -> bool:
        """Whether this record is about the cassette directory `directory` (here, or checked out
        elsewhere: a record made on another machine ends with the same rootdir-relative path)."""
        directory = directory.resolve()
        if directory == self.cassette_dir:
            return True
        parts = Path(self.cassette_dir_name).parts
        return bool(parts) and ".." not in parts and directory.parts[-len(parts) :] == parts

    @classmethod
    def union(cls, records: Iterable[PlayedRecord]) -> PlayedRecord:
        """What several sessions (e.g. CI shards) did together: a test passed when it passed in
        one and did not fail in another; played is what any of them played; a cassette is unused
        when some record collected the whole suite without using it and no record used it."""
        records = list(records)
        merged = cls(records[0].cassette_dir, records[0].cassette_dir_name, source=", ".join(record.source for record in records))
        for record in records:
            for name, use in record.cassettes.items():
                merged.cassettes.setdefault(name, CassetteUse()).add(use)
        known = [record.unused for record in records if record.unused is not None]
        merged.unused = None if not known else set().union(*known) - set(merged.cassettes)
        return merged


def _strings(value: object, what: str) -> set[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{what} must be a list of strings")
    return set(value)


def parse(text: str, source: str) -> PlayedRecord:
    """The record in `text`; raises PlayedRecordError naming `source` when it is not one."""
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("version") != VERSION:
            version = document.get("version") if isinstance(document, dict) else None
            raise ValueError(f"it is not a played record of version {VERSION} (found version {version!r})")
        cassettes = {}
        for name, entry in document["cassettes"].items():
            tests = entry["tests"]
            if not isinstance(tests, dict) or not all(value in (True, False, None) for value in tests.values()):
                raise ValueError(f"cassette {name!r}: 'tests' must map test ids to true, false or null")
            cassettes[str(name)] = CassetteUse(
                _strings(entry["interactions"], f"cassette {name!r}: interactions"), _strings(entry["played"], f"cassette {name!r}: played"), tests
            )
        unused = document.get("unused")
        return PlayedRecord(
            Path(str(document["cassette_dir"])),
            str(document.get("cassette_dir_name", "")),
            cassettes,
            None if unused is None else _strings(unused, "unused"),
            source,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        problem = f"missing {err}" if isinstance(err, KeyError) else str(err)
        raise PlayedRecordError(source, problem) from None


def read(path: Path) -> PlayedRecord:
    """The record in the file at `path` (FileNotFoundError when there is none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as err:
        raise PlayedRecordError(path, f"it can't be read ({getattr(err, 'strerror', None) or err})") from None
    return parse(text, str(path))


def write(path: Path, record: PlayedRecord) -> None:
    """Write `record` atomically (raises `WriteError` naming the file)."""
    atomic.write(path, record.to_json().encode("utf-8"), backup=False)


def cache_dir(rootdir: Path, configured: str | None) -> Path:
    """pytest's cache directory: its cache_dir ini value (None: the default), relative to the rootdir."""
    value = Path(os.path.expandvars(os.path.expanduser(configured or _DEFAULT_CACHE_DIR)))
    return value if value.is_absolute() else rootdir / value


def find(start: Path) -> Path | None:
    """The default record of the project at `start` or above it, if there is one."""
    for folder in (start.resolve(), *start.resolve().parents):
        candidate = folder / _DEFAULT_CACHE_DIR / DEFAULT_RELATIVE
        if candidate.is_file():
            return candidate
    return None
