"""Command-line options and ini keys. The command line wins over the ini file."""
from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmcache import played
from pytest_llmcache.ignoring import DEFAULT_IGNORE, IgnoreRule
from pytest_llmcache.matching import VOLATILE_FIELDS, FieldPath
from pytest_llmcache.modes import RECORD_MODES

__all__ = ["add_options", "cassette_dir", "ignore_fields", "ignore_rules", "played_path", "record_mode", "session_folder", "strict"]

_MODES_HELP = (
    "none: replay only, offline; a request with no recording fails the test. "
    "once: record the tests that have no cassette yet (needs a key), replay the others. "
    "new_episodes: replay what is recorded, record the requests that are not. "
    "all: send every request live and record it again, keeping old recordings of requests not sent. "
    "rewrite: send every request live into a fresh cassette (stale interactions go)."
)
_STRICT_HELP = (
    "Fail a test whose cassette holds recorded interactions the test did not play (a stale "
    "cassette); the failure lists them and says how to re-record or prune."
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmcache", "recording and replaying OpenAI calls (pytest-llmcache)")
    group.addoption(
        "--llm-record-mode",
        choices=RECORD_MODES,
        default=None,
        metavar="MODE",
        help=f"How tests using llm_cassette / llm_client reach the API. Default: the llm_record_mode ini key, else none. {_MODES_HELP}",
    )
    group.addoption(
        "--llm-cassette-dir",
        default=None,
        metavar="DIR",
        help="Directory of the cassettes, relative to the current directory. Default: the llm_cassette_dir ini key "
        "(relative to the rootdir), else <rootdir>/cassettes. A test's cassette is DIR/<test module path>/<test name>.yaml.",
    )
    group.addoption(
        "--llm-played",
        default=None,
        metavar="PATH",
        help="Where to write the played record (what each cassette's tests played, read by llmcache prune). "
        "Default: .pytest_cache/d/llmcache/played.json under the rootdir (pytest's cache_dir).",
    )
    group.addoption("--llm-strict", action="store_true", default=False, help=f"{_STRICT_HELP} Also: the llm_strict ini key.")
    parser.addini("llm_record_mode", f"Record mode when --llm-record-mode is not given (default: none). {_MODES_HELP}", default="none")
    parser.addini("llm_cassette_dir", "Cassette directory, relative to the rootdir, when --llm-cassette-dir is not given (default: cassettes).", default="cassettes")
    parser.addini("llm_strict", f"{_STRICT_HELP.rstrip('.')} (default: false; --llm-strict turns it on).", type="bool", default=False)
    parser.addini(
        "llm_ignore",
        "Requests that are not LLM API calls (telemetry, downloads), one '[METHOD ]HOST[PATH]' rule a line (shell-style "
        "patterns): never recorded, refused while replaying without failing the test. Added to the defaults: "
        + "; ".join(rule for rule, _ in DEFAULT_IGNORE)
        + ".",
        type="linelist",
        default=[],
    )
    parser.addini(
        "llm_ignore_fields",
        "Request body fields that never decide a match, one JSON path a line (names joined by dots, [N] or [*] for list "
        f"items, e.g. metadata.request_id or messages[*].name). Always ignored: {', '.join(VOLATILE_FIELDS)}.",
        type="linelist",
        default=[],
    )


def record_mode(config: pytest.Config) -> str:
    mode = config.getoption("llm_record_mode") or str(config.getini("llm_record_mode")).strip()
    if mode not in RECORD_MODES:
        raise pytest.UsageError(f"llm_record_mode = {mode!r} is not a record mode; use one of {', '.join(RECORD_MODES)}")
    return mode


def cassette_dir(config: pytest.Config) -> Path:
    """From the command line: relative to the working directory; from the ini file: to the rootdir."""
    option = config.getoption("llm_cassette_dir")
    source, path = ("--llm-cassette-dir", Path(option)) if option else ("llm_cassette_dir", config.rootpath / str(config.getini("llm_cassette_dir")))
    try:
        return path.resolve()
    except (OSError, RuntimeError) as err:  # RuntimeError: a symlink loop (Python < 3.13)
        raise pytest.UsageError(f"{source} = {str(path)!r} can't be used as the cassette directory: {err}") from None


def command_options(config: pytest.Config) -> tuple[str, ...]:
    """The options given on the command line that a command the plugin suggests must repeat: where
    the cassettes are and how requests match (as given, relative to where pytest was started): the
    cassette dir, an ini file or rootdir of its own, the plugin's ini keys set with -o."""
    given = config.getoption("llm_cassette_dir")
    found = [f"--llm-cassette-dir={given}"] if given else []
    found += [f"--{name}={value}" for name, value in (("config-file", config.getoption("inifilename", None)), ("rootdir", config.getoption("rootdir", None))) if value]
    found += [f"--override-ini={entry}" for entry in config.getoption("override_ini", None) or () if entry.strip().startswith("llm_")]
    if "--doctest-modules" in config.invocation_params.args:  # else a doctest's node id is not found
        found.append("--doctest-modules")
    return tuple(found)


def strict(config: pytest.Config) -> bool:
    """--llm-strict, else the llm_strict ini key."""
    return bool(config.getoption("llm_strict", False) or config.getini("llm_strict"))


def _cache_dir(config: pytest.Config) -> Path:
    try:
        configured = str(config.getini("cache_dir"))
    except ValueError:  # -p no:cacheprovider: its ini key is not registered
        configured = None
    return played.cache_dir(config.rootpath, configured)


def played_path(config: pytest.Config) -> Path:
    """--llm-played (relative to the working directory), else the default under pytest's cache directory."""
    option = config.getoption("llm_played", None)
    return Path(option).resolve() if option else _cache_dir(config) / played.DEFAULT_RELATIVE


def session_folder(config: pytest.Config) -> Path:
    """Where a session notes what it wrote into which cassette (see `recorder.RecordingSession`)."""
    return _cache_dir(config) / "d" / "llmcache" / "sessions"


def ignore_rules(config: pytest.Config) -> tuple[IgnoreRule, ...]:
    """The default rules, then the llm_ignore ini key's."""
    return (*(IgnoreRule.parse(rule) for rule, _ in DEFAULT_IGNORE), *map(_ini_rule, config.getini("llm_ignore")))


def _ini_rule(line: str) -> IgnoreRule:
    try:
        return IgnoreRule.parse(line)
    except ValueError as err:
        raise pytest.UsageError(f"ini key llm_ignore: {err}") from None


def ignore_fields(config: pytest.Config) -> tuple[FieldPath, ...]:
    """The llm_ignore_fields ini key's paths."""
    return tuple(map(_ini_field, config.getini("llm_ignore_fields")))


def _ini_field(line: str) -> FieldPath:
    try:
        return FieldPath.parse(line)
    except ValueError as err:
        raise pytest.UsageError(f"ini key llm_ignore_fields: {err}") from None
