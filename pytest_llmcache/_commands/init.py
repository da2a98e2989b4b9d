"""``llmcache init``: set a project up for pytest-llmcache in one command.

It writes the plugin's ini keys into the file pytest reads its configuration from (``pytest.ini``,
``pyproject.toml``, ``tox.ini`` or ``setup.cfg``; a new ``pytest.ini`` when there is none), the
lines a project's ``.gitignore`` needs, and an example test with its conftest and its recorded
cassette, so ``pytest`` passes offline right away. It adds and never replaces: keys already set
stay as they are, and an existing file is never overwritten (running it twice changes nothing).
"""
from __future__ import annotations

import argparse
import configparser
import json
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pytest_llmcache import cassette as cassette_file
from pytest_llmcache._commands.common import EXIT_OK, InputError, display, emit_json
from pytest_llmcache.paths import cassette_path
from pytest_llmcache.scrubbing import Scrubber

HELP = "set a project up: ini keys, .gitignore lines, an example test that replays offline"

# The ini keys written, with the plugin's defaults made visible.
INI_KEYS = (("llm_record_mode", "none"), ("llm_cassette_dir", "cassettes"))
# What a project should not commit: pytest's cache (each session's played record lives there), the
# .bak of re-recorded cassettes, and the lock file used where a folder can't be locked itself (NFS).
GITIGNORE_LINES = (".pytest_cache/", "*.bak", ".llmcache.lock")
_GITIGNORE_COMMENT = "# pytest-llmcache: pytest's cache (the played record), previous versions of re-recorded cassettes, lock files"

EXAMPLE_TEST = "tests/test_llmcache_example.py"
EXAMPLE_CONFTEST = "tests/conftest.py"
_EXAMPLE_NAME = "test_capital"
_QUESTION = "What is the capital of France?"
_ANSWER = "The capital of France is Paris."
_MODEL = "gpt-4o-mini"

_EXAMPLE_SOURCE = f'''"""An example written by `llmcache init`: keep it as a template or delete it.

It replays its recorded exchange, so it passes offline, with no key:
    {{cassette}}
A test of your own records its calls once, with a key, into
cassettes/<test module path>/<test name>.yaml:

    OPENAI_API_KEY=sk-... pytest tests/test_yours.py --llm-record-mode=once

then replays them in every run after that (commit the cassettes).
"""
import openai


def {_EXAMPLE_NAME}(llm_cassette):
    completion = openai.OpenAI().chat.completions.create(
        model={json.dumps(_MODEL)},
        messages=[{{"role": "user", "content": {json.dumps(_QUESTION)}}}],
    )
    assert completion.choices[0].message.content == {json.dumps(_ANSWER)}
    assert llm_cassette.played == [0]  # the recorded interaction this test used
'''

_CONFTEST_SOURCE = '''"""Project fixtures. Every pytest-llmcache fixture can be overridden here (see its README)."""
import pytest


@pytest.fixture
def llm_allowed_hosts():
    """Hosts tests may still reach while replaying (record mode none), e.g. a local database."""
    return ()
'''


@dataclass(frozen=True)
class Change:
    """One file `init` looked at: what it did and why."""

    path: str
    action: str  # "created", "updated" or "kept"
    detail: str


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("init", help=HELP, description=__doc__.split("\n\n", 1)[1], parents=parents,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", nargs="?", type=Path, default=Path("."), metavar="DIR", help="the project's root folder (default: .)")
    parser.add_argument("--no-example", action="store_true", help="write the ini keys and .gitignore lines only")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    root: Path = args.dir
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    config, cassette_dir = _configure(root)
    changes = [config, _ignore(root / ".gitignore")]
    if not args.no_example:
        changes += _example(root, root / cassette_dir)
    if args.json:
        emit_json({"root": display(root), "changes": [asdict(change) for change in changes]})
        return EXIT_OK
    for change in changes:
        print(f"{change.action:>8}  {change.path}: {change.detail}")
    print("\nNext: pytest (replays offline). Record a test of your own once, with a key:")
    print("    OPENAI_API_KEY=sk-... pytest tests/test_yours.py --llm-record-mode=once")
    print("Commit the cassettes (and the files above); never commit keys.")
    return EXIT_OK


# -- the ini keys ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ConfigFile:
    path: Path
    section: str  # "[pytest]", "[tool:pytest]", "[tool.pytest.ini_options]" or "[tool.pytest]"
    toml: bool


def _config_file(root: Path) -> _ConfigFile | None:
    """The file pytest reads its configuration from in `root`, in pytest's order of precedence."""
    for name in ("pytest.ini", ".pytest.ini"):
        if (root / name).is_file():
            return _ConfigFile(root / name, "[pytest]", toml=False)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        text = _read(pyproject)
        for section in ("[tool.pytest.ini_options]", "[tool.pytest]"):
            if _header_line(text, section) is not None:
                return _ConfigFile(pyproject, section, toml=True)
    for name, section in (("tox.ini", "[pytest]"), ("setup.cfg", "[tool:pytest]")):
        path = root / name
        if path.is_file() and _header_line(_read(path), section) is not None:
            return _ConfigFile(path, section, toml=False)
    return None


def _configure(root: Path) -> tuple[Change, str]:
    """Adds the missing ini keys; returns what it did and the cassette directory the project uses."""
    found = _config_file(root)
    if found is None:
        path = root / "pytest.ini"
        text = "[pytest]\n" + "".join(f"{key} = {value}\n" for key, value in INI_KEYS)
        _create(path, text)
        return Change(display(path), "created", f"[pytest] with {', '.join(key for key, _ in INI_KEYS)}"), dict(INI_KEYS)["llm_cassette_dir"]
    text = _read(found.path)
    present = _keys(found, text)
    missing = [(key, value) for key, value in INI_KEYS if key not in present]
    cassette_dir = str(present.get("llm_cassette_dir") or dict(INI_KEYS)["llm_cassette_dir"])
    if not missing:
        return Change(display(found.path), "kept", f"{found.section} already sets {', '.join(key for key, _ in INI_KEYS)}"), cassette_dir
    lines = [f"{key} = {json.dumps(value) if found.toml else value}\n" for key, value in missing]
    updated = _insert_into_section(text, found.section, lines)
    if _keys(found, updated).keys() < {key for key, _ in INI_KEYS}:  # the edit must read back
        raise InputError(f"{display(found.path)}: could not add the keys to {found.section}; add them by hand: {''.join(lines).strip()}")
    _replace(found.path, updated)
    return Change(display(found.path), "updated", f"added {', '.join(key for key, _ in missing)} to {found.section}"), cassette_dir


def _keys(found: _ConfigFile, text: str) -> dict[str, Any]:
    """The keys already set in the section, parsed the way pytest will (a broken file is refused)."""
    section = found.section[1:-1]
    if found.toml and sys.version_info >= (3, 11):
        import tomllib

        try:
            table: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise InputError(f"{display(found.path)}: not valid TOML ({err}); nothing was changed") from None
        for part in section.split("."):
            table = table.get(part, {}) if isinstance(table, dict) else {}
        return dict(table) if isinstance(table, dict) else {}
    if found.toml:  # Python 3.10 has no TOML reader: the key names on the table's lines
        lines = text.splitlines()
        start = _header_line(text, found.section) or 0
        return {match[1]: match[2] for line in lines[start + 1 : _section_end(lines, start)] if (match := re.match(r"\s*([\w.-]+)\s*=\s*(.*)", line))}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(found.path))
    except configparser.Error as err:
        raise InputError(f"{display(found.path)}: can't be parsed ({err}); nothing was changed") from None
    return dict(parser[section]) if parser.has_section(section) else {}


def _header_line(text: str, section: str) -> int | None:
    """The index of the line that opens `section` (``[name]``, spaces and a comment allowed)."""
    pattern = re.compile(r"\s*\[\s*" + re.escape(section[1:-1].strip()) + r"\s*\]\s*(?:[#;].*)?")
    return next((number for number, line in enumerate(text.splitlines()) if pattern.fullmatch(line)), None)


def _section_end(lines: list[str], header: int) -> int:
    """The index after the last line of the section opened on line `header`, trailing blank lines
    and comments left to what follows."""
    end = next((number for number in range(header + 1, len(lines)) if lines[number].lstrip().startswith("[") and not lines[number].startswith((" ", "\t"))), len(lines))
    while end > header + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith(("#", ";"))):
        end -= 1
    return end


def _insert_into_section(text: str, section: str, new_lines: list[str]) -> str:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    header = _header_line(text, section)
    if header is None:  # a pytest.ini without its section: pytest reads it all the same
        return "".join([*lines, *(["\n"] if lines else []), f"{section}\n", *new_lines])
    end = _section_end([line.rstrip("\r\n") for line in lines], header)
    return "".join([*lines[:end], *new_lines, *lines[end:]])


# -- .gitignore ------------------------------------------------------------------------------------


def _ignore(path: Path) -> Change:
    text = _read(path) if path.exists() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in GITIGNORE_LINES if line not in present]
    if not missing:
        return Change(display(path), "kept", f"already ignores {', '.join(GITIGNORE_LINES)}")
    addition = "".join(f"{line}\n" for line in (_GITIGNORE_COMMENT, *missing))
    if not text:
        _create(path, addition)
        return Change(display(path), "created", f"ignores {', '.join(missing)}")
    separator = "" if text.endswith("\n") else "\n"
    _replace(path, text + separator + "\n" + addition)
    return Change(display(path), "updated", f"added {', '.join(missing)}")


# -- the example ------------------------------------------------------------------------------------


def _example(root: Path, cassette_dir: Path) -> list[Change]:
    test = root / EXAMPLE_TEST
    cassette = cassette_path(cassette_dir, root, test, _EXAMPLE_NAME)
    relative = cassette.relative_to(root).as_posix() if cassette.is_relative_to(root) else str(cassette)
    changes = [
        _write_new(test, _EXAMPLE_SOURCE.replace("{cassette}", relative), "an example test that replays offline"),
        _write_new(root / EXAMPLE_CONFTEST, _CONFTEST_SOURCE, "where the plugin's fixtures can be overridden"),
    ]
    if cassette.exists():
        changes.append(Change(display(cassette), "kept", "exists already"))
    else:
        cassette_file.save(cassette, [_example_interaction()])
        changes.append(Change(display(cassette), "created", "the example test's recorded exchange"))
    return changes


def _example_interaction() -> cassette_file.Interaction:
    """The exchange the example test replays, stored the way the recorder stores one."""
    scrubber = Scrubber()
    request = json.dumps({"messages": [{"role": "user", "content": _QUESTION}], "model": _MODEL}, separators=(",", ":")).encode()
    response = json.dumps(
        {
            "id": "chatcmpl-llmcache-example",
            "object": "chat.completion",
            "created": 1735689600,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": _ANSWER, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 14, "completion_tokens": 7, "total_tokens": 21},
            "system_fingerprint": "fp_llmcache",
        },
        indent=2,
    ).encode() + b"\n"
    return {
        "request": scrubber.request("POST", "https://api.openai.com/v1/chat/completions", {"content-type": "application/json"}, request),
        "response": scrubber.response({"code": 200, "message": "OK"}, {"content-type": ["application/json"]}, response),
    }


# -- files -------------------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{display(path)}: can't be read ({err}); nothing was changed") from None


def _write_new(path: Path, text: str, what: str) -> Change:
    if path.exists():
        return Change(display(path), "kept", "exists already (never overwritten)")
    _create(path, text)
    return Change(display(path), "created", what)


def _create(path: Path, text: str) -> None:
    """Writes a new file; refuses to replace one that appeared meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as err:
        raise InputError(f"{display(path)}: can't be written ({err.strerror or err})") from None


def _replace(path: Path, text: str) -> None:
    """Replaces `path` atomically (a temporary file renamed over it), keeping its permissions."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "x", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except OSError as err:
        raise InputError(f"{display(path)}: can't be written ({err.strerror or err}); it was left as it was") from None
    finally:
        temporary.unlink(missing_ok=True)
