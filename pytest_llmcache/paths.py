"""Where a test's cassette lives: ``<cassette dir>/<module path>/<Class.test_name[param-id]>.yaml``.

Every component is made a safe file name, so nothing in a test id (``..``, separators, absolute
paths, odd characters) can place a cassette outside the cassette directory.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

__all__ = ["cassette_path", "safe_name"]

_UNSAFE = re.compile(r"[^\w.\-\[\]=+,@]+")
_MAX_NAME = 120  # well below common file name limits, with room for the suffix and a digest
SUFFIX = ".yaml"


def safe_name(text: str) -> str:
    """`text` as one file name: unsafe characters become '_', never hidden, never '..', bounded."""
    name = _UNSAFE.sub("_", text).lstrip(".") or "_"
    if len(name) > _MAX_NAME:
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=4).hexdigest()
        name = f"{name[:_MAX_NAME - 9]}-{digest}"
    return name


def cassette_path(cassette_dir: Path, rootdir: Path, module: Path, test_name: str, override: str | None = None) -> Path:
    """The cassette of test `test_name` (``Class.test[id]``) in `module`, or the marker's `override`.

    `override` is relative to `cassette_dir`; the suffix is added when it has none.
    """
    if override is not None:
        *folders, name = PurePosixPath(override.replace("\\", "/")).parts or ("_",)
        folders = [part for part in folders if part not in ("/", "..", ".")]
        name = name if name.endswith((".yaml", ".yml")) else name + SUFFIX
    else:
        try:
            folders = list(module.with_suffix("").relative_to(rootdir).parts)
        except ValueError:  # a test module outside the rootdir
            folders = [module.stem]
        name = test_name + SUFFIX
    return cassette_dir.joinpath(*map(safe_name, folders), safe_name(name))
