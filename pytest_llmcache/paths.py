"""Where a test's cassette lives: ``<cassette dir>/<module path>/<Class.test_name[param-id]>.yaml``.

Every component is made a safe file name, so nothing in a test id (``..``, separators, absolute
paths, odd characters) can place a cassette outside the cassette directory. Making a name safe
never merges two tests into one cassette: a name that had to be changed (or shortened) gets a
short digest of the original, so ``test[a b]``, ``test[a/b]`` and ``test[a_b]`` stay three files.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

__all__ = ["SUFFIX", "cassette_path", "safe_name"]

_UNSAFE = re.compile(r"[^\w.\-\[\]=+,@]+")
_MAX_NAME = 120  # well below common file name limits, with room for the suffix and a digest
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
    if name == text and len(name) <= _MAX_NAME:
        return name
    return f"{name[:_MAX_NAME - _DIGEST]}-{_digest(text)}"


def _safe_file_name(name: str) -> str:
    """`name` (ending in .yaml or .yml) made safe, its suffix kept."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return safe_name(name[: -len(suffix)]) + suffix
    return safe_name(name) + SUFFIX


def cassette_path(cassette_dir: Path, rootdir: Path, module: Path, test_name: str, override: str | None = None) -> Path:
    """The cassette of test `test_name` (``Class.test[id]``) in `module`, or the marker's `override`.

    `override` is relative to `cassette_dir`; the suffix is added when it has none.
    """
    if override is not None:
        *folders, name = PurePosixPath(str(override).replace("\\", "/")).parts or ("_",)
        folders = [part for part in folders if part not in ("/", "..", ".")]
        file_name = _safe_file_name(name)
    else:
        try:
            folders = list(module.with_suffix("").relative_to(rootdir).parts)
        except ValueError:  # a test module outside the rootdir
            folders = [module.stem]
        file_name = safe_name(test_name) + SUFFIX
    return cassette_dir.joinpath(*map(safe_name, folders), file_name)
