"""Command-line options and ini keys. The command line wins over the ini file."""
from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmcache.recorder import RECORD_MODES

__all__ = ["add_options", "cassette_dir", "record_mode"]

_MODES_HELP = (
    "none (default): replay only, offline, a request without a recording fails the test; "
    "once: record a test's requests if it has no cassette yet, else replay only; "
    "new_episodes: replay what is recorded and record the rest; "
    "all: record every request again (keeping recordings not re-made); "
    "rewrite: record every request into a fresh cassette."
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmcache", "recording and replaying OpenAI calls (pytest-llmcache)")
    group.addoption("--llm-record-mode", choices=RECORD_MODES, default=None, help=f"Record mode. {_MODES_HELP}")
    group.addoption("--llm-cassette-dir", default=None, metavar="DIR", help="Cassette directory (default: cassettes/ under the rootdir).")
    parser.addini("llm_record_mode", f"Record mode when --llm-record-mode is not given. {_MODES_HELP}", default="none")
    parser.addini("llm_cassette_dir", "Cassette directory, relative to the rootdir (default: cassettes).", default="cassettes")


def record_mode(config: pytest.Config) -> str:
    mode = config.getoption("llm_record_mode") or str(config.getini("llm_record_mode")).strip()
    if mode not in RECORD_MODES:
        raise pytest.UsageError(f"llm_record_mode = {mode!r} is not a record mode; use one of {', '.join(RECORD_MODES)}")
    return mode


def cassette_dir(config: pytest.Config) -> Path:
    """From the command line: relative to the working directory; from the ini file: to the rootdir."""
    option = config.getoption("llm_cassette_dir")
    if option:
        return Path(option).resolve()
    return (config.rootpath / str(config.getini("llm_cassette_dir"))).resolve()
