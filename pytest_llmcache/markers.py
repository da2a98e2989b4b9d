"""The ``llm`` marker: per-test API type(s), API cache, cassette name and record mode."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

import pytest

from pytest_llmcache.errors import MarkerError
from pytest_llmcache.modes import RECORD_MODES
from tinytroupe.config import API_TYPES
from pytest_llmcache.matching import FieldPath

__all__ = ["API_TYPES", "MARKER_HELP", "LLMMarker"]

# What `pytest --markers` shows, and what a misused marker's error quotes.
MARKER_HELP = (
    "llm(api_type=None, api_types=None, cache=False, cassette=None, record_mode=None, ignore_fields=()): pytest-llmcache "
    "settings for a test using llm_client or llm_cassette. "
    "api_type='openai'|'azure': the API type of llm_client (default: the configured one). "
    "api_types=['openai', 'azure']: run the test once per API type, one cassette each. "
    "cache=True: turn the client's API cache on, in a file under the test's tmp_path. "
    "cassette='dir/name.yaml': the cassette file, relative to the cassette directory, or an absolute path "
    "(several tests may share one). "
    "record_mode='once'|...: this test's record mode, overriding --llm-record-mode. "
    "ignore_fields=['metadata.request_id', 'messages[*].content']: request body fields (JSON paths) matching ignores in this test."
)


@dataclass(frozen=True)
class LLMMarker:
    """The merged ``llm`` markers of a test (the closest marker wins for each argument)."""

    api_type: str | None = None
    api_types: tuple[str, ...] = field(default=())
    cache: bool = False
    cassette: str | None = None
    record_mode: str | None = None
    ignore_fields: tuple[FieldPath, ...] = ()

    @classmethod
    def of(cls, node: pytest.Item | pytest.Collector) -> LLMMarker:
        """The marker arguments of `node`, each checked; raises MarkerError naming the test and
        the argument."""
        test_id = node.nodeid
        arguments: dict[str, object] = {}
        for mark in node.iter_markers("llm"):
            if mark.args:
                raise MarkerError(test_id, repr(mark.args[0]), f"is positional: the llm marker takes keyword arguments only ({MARKER_HELP})")
            unknown = set(mark.kwargs) - _ARGUMENTS
            if unknown:
                raise MarkerError(test_id, ", ".join(sorted(unknown)), f"is unknown ({MARKER_HELP})")
            for name, value in mark.kwargs.items():
                arguments.setdefault(name, value)
        if not arguments:  # most tests: no marker, nothing to check (the defaults are valid)
            return _UNMARKED
        return cls(
            api_type=_api_type(test_id, "api_type", arguments.get("api_type")),
            api_types=_api_types(test_id, arguments.get("api_types", ())),
            cache=_cache(test_id, arguments.get("cache", False)),
            cassette=_cassette(test_id, arguments.get("cassette")),
            record_mode=_record_mode(test_id, arguments.get("record_mode")),
            ignore_fields=_ignore_fields(test_id, arguments.get("ignore_fields", ())),
        )


_ARGUMENTS = frozenset(f.name for f in fields(LLMMarker))
_UNMARKED = LLMMarker()  # frozen: one for every test without arguments


def _choice(test_id: str, argument: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise MarkerError(test_id, f"{argument}={value!r}", f"is not one of {', '.join(map(repr, choices))}")
    return value


def _api_type(test_id: str, argument: str, value: object) -> str | None:
    return None if value is None else _choice(test_id, argument, value, API_TYPES)


def _api_types(test_id: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        hint = f"; for one API type write api_type={value!r}" if isinstance(value, str) else ""
        raise MarkerError(test_id, f"api_types={value!r}", f"must be a list such as ['openai', 'azure']{hint}")
    types = tuple(_choice(test_id, "api_types item", item, API_TYPES) for item in value)
    if len(set(types)) != len(types):
        raise MarkerError(test_id, f"api_types={value!r}", "names an API type twice")
    return types


def _cache(test_id: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise MarkerError(test_id, f"cache={value!r}", "must be True or False")
    return value


def _cassette(test_id: str, value: object) -> str | None:
    if value is None:
        return None
    path = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(path, str):
        raise MarkerError(test_id, f"cassette={value!r}", "must be a path (a string such as 'shared/chat.yaml')")
    return path


def _record_mode(test_id: str, value: object) -> str | None:
    return None if value is None else _choice(test_id, "record_mode", value, RECORD_MODES)


def _ignore_fields(test_id: str, value: object) -> tuple[FieldPath, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise MarkerError(test_id, f"ignore_fields={value!r}", "must be a list of JSON paths such as ['metadata.request_id']")
    return tuple(_field_path(test_id, item) for item in value)


def _field_path(test_id: str, item: object) -> FieldPath:
    text = item if isinstance(item, str) else repr(item)
    try:
        return FieldPath.parse(text)
    except ValueError as err:
        raise MarkerError(test_id, f"ignore_fields item {text!r}", str(err).removeprefix(f"{text!r} ")) from None
