"""Atomic file writes, the one way the plugin and the CLI change a file they own.

A write goes to a temporary file in the target's own folder, is synced, and is renamed over the
target; the folder is synced too, so the rename survives a power loss. The previous content is
first copied to ``<name>.bak`` (a real copy, written the same way), so whenever a process dies
the target and its ``.bak`` are each a complete version. A symlinked target is written through
(the link stays a link; the ``.bak`` goes next to the file it points to).

Every change happens under an exclusive lock of the folder (``flock`` on the folder itself, or
on ``.llmcache.lock`` in it where a folder can't be locked; either works across threads,
processes and containers sharing the folder), and temporary
files are only ever created under that lock. So a process holding the lock knows that any
temporary file of ours it finds was left by a saver that died: it removes them without asking
whether a process id is alive (which can't be answered across PID namespaces).

A failed write raises `WriteError` naming the file (and saying when the disk is full); it
leaves no temporary file behind and the target as it was.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from pytest_llmcache.errors import WriteError

try:
    import fcntl
except ImportError:  # Windows: no lock between processes (a rename is still atomic)
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "LockedFolder", "locked", "remove", "resolve", "write"]

LOCK_NAME = ".llmcache.lock"
# Ours, and those of versions before this module (named by process id, cleaned up by a PID check).
_TEMPORARY = re.compile(r"\..+\.llmcache-[0-9a-f]{32}\.tmp|\..+\.ya?ml\.(?:bak\.)?\d+\.tmp")
_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def resolve(path: Path | str) -> Path:
    """The file a write to `path` changes: symlinks followed, made absolute."""
    return Path(os.path.realpath(path))


def _error(path: Path, err: OSError, doing: str) -> WriteError:
    reason = "the disk is full" if err.errno in _FULL else (err.strerror or str(err))
    return WriteError(path, f"{doing}: {reason}", err.errno)


class LockedFolder:
    """A folder whose lock this process holds (see `locked`); changes files in it atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _temporary(self, name: str) -> Path:
        return self.folder / f".{name}.llmcache-{uuid.uuid4().hex}.tmp"

    def _write_temporary(self, name: str, data: bytes) -> Path:
        temporary = self._temporary(name)
        try:
            with open(temporary, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return temporary

    def _copy_temporary(self, source: Path, name: str) -> Path:
        temporary = self._temporary(name)
        try:
            with open(source, "rb") as reader, open(temporary, "xb") as handle:
                shutil.copyfileobj(reader, handle, 1 << 20)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return temporary

    def replace(self, path: Path, data: bytes, backup: bool = True) -> None:
        """Replace `path` (a file in this folder, already resolved) by `data`, keeping the old
        content as ``<name>.bak`` when `backup` is true."""
        new = old = None
        try:
            new = self._write_temporary(path.name, data)  # first: a full disk fails before anything changes
            if backup and path.exists():
                old = self._copy_temporary(path, path.name + ".bak")
                os.replace(old, path.with_name(path.name + ".bak"))
            os.replace(new, path)
            new = None
            _sync_directory(self.folder)
        except OSError as err:
            raise _error(path, err, "it could not be written") from None
        finally:
            for leftover in (new, old):
                if leftover is not None:
                    leftover.unlink(missing_ok=True)

    def remove(self, path: Path, backup: bool = True) -> None:
        """Delete `path` (a file, or a symlink: the link goes, its target stays), keeping its
        content as ``<path>.bak`` when `backup` is true."""
        try:
            if backup:
                if path.is_symlink():
                    self.replace(path.with_name(path.name + ".bak"), path.read_bytes(), backup=False)
                    path.unlink()
                else:
                    os.replace(path, path.with_name(path.name + ".bak"))
            else:
                path.unlink()
            _sync_directory(self.folder)
        except OSError as err:
            raise _error(path, err, "it could not be removed") from None

    def remove_stale_temporaries(self) -> None:
        """Delete the temporary files dead savers left here (every live saver waits for the lock)."""
        try:
            names = [entry.name for entry in os.scandir(self.folder) if entry.name.endswith(".tmp")]
        except OSError:
            return
        for name in names:
            if _TEMPORARY.fullmatch(name):
                with contextlib.suppress(OSError):
                    os.unlink(self.folder / name)


@contextlib.contextmanager
def locked(folder: Path | str) -> Iterator[LockedFolder]:
    """Hold the exclusive lock of `folder` (created if missing) while the block runs."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _error(folder, err, "the folder could not be created") from None
    descriptor = _lock(folder)
    try:
        held = LockedFolder(folder)
        held.remove_stale_temporaries()
        yield held
    finally:
        os.close(descriptor)  # releases the lock


def _lock(folder: Path) -> int:
    """An open descriptor holding the lock: on the folder itself, or, where a folder can't be
    locked (NFS emulates flock with byte-range locks, which need a file open for writing), on
    ``.llmcache.lock`` in it."""
    if fcntl is None:
        return os.open(folder, os.O_RDONLY)
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError as err:
        raise _error(folder, err, "the folder could not be opened") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        return descriptor
    except OSError:
        os.close(descriptor)
    try:
        descriptor = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise _error(folder / LOCK_NAME, err, "the folder's lock file could not be created") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
    except OSError as err:
        os.close(descriptor)
        raise _error(folder / LOCK_NAME, err, "the folder could not be locked") from None
    return descriptor


def write(path: Path | str, data: bytes, backup: bool = True) -> None:
    """Replace the file at `path` (through a symlink) by `data` atomically, under its folder's lock."""
    target = resolve(path)
    with locked(target.parent) as folder:
        folder.replace(target, data, backup)


def remove(path: Path | str, backup: bool = True) -> None:
    """Delete the file at `path`, keeping its content as ``<name>.bak``, under its folder's lock."""
    path = Path(os.path.abspath(path))
    with locked(path.parent) as folder:
        folder.remove(path, backup)


def _sync_directory(folder: Path) -> None:
    """Makes the renames durable across a power loss too (POSIX; elsewhere a no-op)."""
    if os.name != "posix":
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
