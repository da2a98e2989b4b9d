"""The API response cache: one SQLite file of JSON responses keyed by a hash of the request.

SQLite gives what a pickled dict could not: each new entry is one small transaction (O(1) in
the number of entries, no rewrite of the file), writes are atomic, several processes (pytest-xdist
workers) can share one file, and nothing is ever unpickled. A file that is not a cache of ours
is never discarded: opening it raises `CacheError` naming it.

Responses are stored with the live credentials of the environment masked (a response that
echoes the key, or the Azure resource host, is cached with ``<redacted>`` / a placeholder host).
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from pytest_llmcache.scrubbing import Scrubber
from tinytroupe.errors import CacheError

FORMAT = "tinytroupe-api-cache"
FORMAT_VERSION = "1"
_PICKLE_MAGIC = (b"\x80", b"(dp", b"}q")


def mask_secrets(text: str) -> str:
    """`text` (JSON) with the live credentials of the environment (every provider's), and the Azure
    resource host, masked: the same rules as the cassettes' scrubber."""
    return Scrubber().mask_text(text)


def request_key(model: str | None, params: dict[str, Any]) -> str:
    """A stable key for one request: SHA-256 of its canonical JSON (key order does not matter)."""
    canonical = json.dumps({"model": model, "params": params}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _disk_full(err: sqlite3.DatabaseError) -> bool:
    """Whether SQLite failed for want of space (SQLITE_FULL), which says nothing about the file."""
    return getattr(err, "sqlite_errorcode", None) == getattr(sqlite3, "SQLITE_FULL", 13) or "disk is full" in str(err)


class ApiCache:
    """A persistent map from request keys to JSON-able responses."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._check_foreign_file()
        try:
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 30000")
            # WAL: readers never block the writer; NORMAL sync stays atomic if the process is killed.
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._init_schema()
        except sqlite3.DatabaseError as err:
            if _disk_full(err):
                raise CacheError(f"{self.path}: the disk is full, so the API cache can't be opened. Free some space and run again") from err
            raise CacheError(
                f"{self.path}: not a usable API cache ({err}); move it away or delete it to start a new cache"
            ) from err

    def _check_foreign_file(self) -> None:
        if not self.path.exists():
            return
        try:
            with self.path.open("rb") as handle:
                head = handle.read(100)
            size = self.path.stat().st_size
        except OSError as err:
            raise CacheError(
                f"{self.path}: cannot read the API cache ({err.strerror or err}); check the path (CACHE_FILE_NAME) "
                "and its permissions, or delete it to start a new cache"
            ) from err
        # A 0-byte file holds no entry: it is what SQLite creates before the first write, and what
        # another process (an xdist worker) may be initialising right now. SQLite starts it anew.
        if head.startswith(b"SQLite format 3\x00") and len(head) == 100:
            self._check_size(head, size)
        if head.startswith(_PICKLE_MAGIC):
            raise CacheError(
                f"{self.path}: this looks like a pickled cache from an older TinyTroupe; it is never unpickled "
                "(unsafe). Delete it, or set CACHE_FILE_NAME to a new file"
            )

    def _check_size(self, header: bytes, size: int) -> None:
        """A database shorter than its header says was truncated (cut by a copy, a sync, a disk).

        SQLite would open it and fail on some entries only, or write into it; refuse it whole. Not
        checked while a write-ahead log is pending: recovery from it can legitimately need it.
        """
        wal = self.path.with_name(self.path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            return
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(header[28:32], "big")
        pages_valid = header[24:28] == header[92:96] and pages > 0
        if page_size < 512 or size % page_size or (pages_valid and size < pages * page_size):
            expected = f"{pages * page_size} bytes" if pages_valid else f"a multiple of {page_size} bytes"
            raise CacheError(
                f"{self.path}: the API cache file is truncated ({size} bytes, its header says {expected}); "
                "restore it from a copy, or delete it to start a new cache"
            )

    def _init_schema(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
                self._db.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?), ('version', ?)", (FORMAT, FORMAT_VERSION))
                meta = dict(self._db.execute("SELECT name, value FROM meta"))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        # Damage in pages no query has touched yet would otherwise surface only later, after new
        # entries were written into the damaged file. A structural check reads every page once
        # (about 40 ms for 40 MB).
        problems = [row[0] for row in self._db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise CacheError(
                f"{self.path}: the API cache is damaged ({'; '.join(problems)}); nothing was written to it. "
                "Restore it from a copy, or delete it to start a new cache"
            )
        if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
            raise CacheError(
                f"{self.path}: not an API cache of this version (format {meta.get('format')!r}, version "
                f"{meta.get('version')!r}); delete it or choose another CACHE_FILE_NAME"
            )

    def _query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        try:
            with self._lock:
                return self._db.execute(sql, parameters).fetchall()
        except sqlite3.DatabaseError as err:
            if _disk_full(err):
                raise CacheError(f"{self.path}: the disk is full; the API cache was not changed. Free some space and run again") from err
            raise CacheError(f"{self.path}: the API cache is damaged ({err}); move it away or delete it") from err

    def get(self, key: str) -> Any | None:
        rows = self._query("SELECT value FROM entries WHERE key = ?", (key,))
        if not rows:
            return None
        try:
            return json.loads(rows[0][0])
        except json.JSONDecodeError as err:
            raise CacheError(f"{self.path}: entry {key} is not valid JSON ({err}); delete the file") from err

    def put(self, key: str, value: Any) -> None:
        text = mask_secrets(json.dumps(value, separators=(",", ":")))
        try:
            json.loads(text)
        except ValueError:  # a credential so odd that masking broke the JSON: don't cache this one
            return
        self._query("INSERT OR REPLACE INTO entries (key, value) VALUES (?, ?)", (key, text))

    def __len__(self) -> int:
        return self._query("SELECT count(*) FROM entries")[0][0]

    def __contains__(self, key: str) -> bool:
        return bool(self._query("SELECT 1 FROM entries WHERE key = ?", (key,)))

    def close(self) -> None:
        with self._lock:
            self._db.close()
