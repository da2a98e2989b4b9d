"""Where a test's cassette lives: ``<cassette dir>/<module path>/<Class.test_name[param-id]>.yaml``.

Names derived from a test id: every component is made a safe file name, so nothing in a test id
(``..``, separators, absolute paths, odd characters) can place a cassette outside the cassette
directory. Making a name safe never merges two tests into one cassette: a name that had to be
changed (or shortened) gets a short digest of the original, so ``test[a b]``, ``test[a/b]`` and
``test[a_b]`` stay three files.

A path the user wrote (the marker's ``cassette=``) is used as written: an absolute path as it is,
a relative one under the cassette directory; it is never renamed or shortened (an imported
cassette keeps its long name). Where it can't be used, `BadCassettePath` says why.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

__all__ = ["SUFFIX", "BadCassettePath", "cassette_path", "explicit_cassette_path", "safe_name"]

_UNSAFE = re.compile(r"[^\w.\-\[\]=+,@]+")
_MAX_NAME = 120  # bytes in UTF-8 (file systems count bytes): well below their limits, with room for suffixes and a digest
_DIGEST = 9  # "-" and 8 hex digits
SUFFIX = ".yaml"
_SUFFIXES = (".yaml", ".yml")


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()


def safe_name(text: str) -> str:
    """`text` as one file name: unsafe characters become '_', never hidden, never '..', bounded.

    When `text` had to be changed, a digest of it is appended, so distinct texts keep distinct names.
    """
    name = _UNSAFE.sub("_", text).lstrip(".") or "_"
    encoded = name.encode("utf-8")  # \w keeps letters of every script: up to 4 bytes each
    if name == text and len(encoded) <= _MAX_NAME:
        return name
    return f"{encoded[:_MAX_NAME - _DIGEST].decode('utf-8', 'ignore')}-{_digest(text)}"


class BadCassettePath(ValueError):
    """A cassette path written by the user can't be used; the message says why."""


def explicit_cassette_path(cassette_dir: Path, written: str | os.PathLike[str]) -> Path:
    """The cassette file a user named: absolute as it is, relative under `cassette_dir` (where it
    must stay), with ``.yaml`` added when it has neither suffix and no such file exists. Nothing is
    renamed or shortened.

    Raises BadCassettePath when the path can't name a cassette file.
    """
    text = os.fspath(written)
    if not text.strip():
        raise BadCassettePath("it is empty")
    if "\0" in text:
        raise BadCassettePath("it contains a NUL character")
    if os.sep == "/":
        text = text.replace("\\", "/")  # either separator, so one test file works on every OS
    if text.endswith(("/", os.sep)) or Path(text).name in ("", ".", ".."):
        raise BadCassettePath("it names a folder, not a file")
    if Path(text).name in _SUFFIXES:
        raise BadCassettePath("it has no file name before its suffix")
    if os.path.isabs(text):
        path = Path(os.path.normpath(text))
    else:
        path = Path(os.path.normpath(cassette_dir / text))
        if not path.is_relative_to(os.path.normpath(cassette_dir)):
            raise BadCassettePath(f"it leaves the cassette directory {cassette_dir} (write an absolute path for a file elsewhere)")
    if not path.name.endswith(_SUFFIXES) and not path.is_file():  # an existing file is used whatever its name
        path = path.with_name(path.name + SUFFIX)
    limit = _name_limit(path.parent)
    too_long = [part for part in path.parts if len(os.fsencode(part)) > limit]
    if too_long:
        raise BadCassettePath(f"{too_long[0][:40]}... is longer than the file system allows ({limit} bytes)")
    if path.is_dir():
        raise BadCassettePath(f"{path} is a folder")
    return path


def _name_limit(folder: Path) -> int:
    """The longest file name the file system of `folder` (or its closest existing parent) takes."""
    existing = next((candidate for candidate in (folder, *folder.parents) if candidate.exists()), None)
    try:
        return os.pathconf(existing or "/", "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or no such setting
        return 255


def cassette_path(cassette_dir: Path, rootdir: Path, module: Path, test_name: str, override: str | os.PathLike[str] | None = None) -> Path:
    """The cassette of test `test_name` (``Class.test[id]``) in `module`, or the marker's `override`
    (see `explicit_cassette_path`)."""
    if override is not None:
        return explicit_cassette_path(cassette_dir, override)
    try:
        folders = list(module.with_suffix("").relative_to(rootdir).parts)
    except ValueError:  # a test module outside the rootdir
        folders = [module.stem]
    return cassette_dir.joinpath(*map(safe_name, folders), safe_name(test_name) + SUFFIX)


def display(path: Path) -> str:
    """`path` relative to the working directory when it is below it: what a user would type."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return str(path)


def command_node_id(node_id: str, rootdir: Path, where: Path) -> str:
    """`node_id` (its file relative to `rootdir`) as a pytest command run in folder `where` takes it,
    as pytest's own summary shows it."""
    path, separator, rest = node_id.partition("::")
    return Path(os.path.relpath(rootdir / path, where)).as_posix() + separator + rest
