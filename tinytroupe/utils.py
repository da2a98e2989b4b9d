"""Small helpers shared by the client layer (TinyTroupe's `tinytroupe.utils` names)."""
from __future__ import annotations

import configparser
import textwrap
from pathlib import Path

from tinytroupe.config import read_config

_config_cache: dict[Path, configparser.ConfigParser] = {}


def read_config_file(use_cache: bool = True, directory: Path | str | None = None) -> configparser.ConfigParser:
    """The packaged `config.ini` overridden key by key by `config.ini` in `directory` (default: cwd).

    Results are cached per directory; pass `use_cache=False` to read the files again.
    """
    where = Path(directory or Path.cwd()).resolve()
    if not use_cache or where not in _config_cache:
        _config_cache[where] = read_config(where)
    return _config_cache[where]


def dedent(text: str) -> str:
    """Removes common leading whitespace and surrounding blank lines, as TinyTroupe does for prompts."""
    return textwrap.dedent(text).strip()
