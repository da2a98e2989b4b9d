"""The ``llm`` marker: per-test API type(s), API cache, cassette name and record mode."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import pytest

from pytest_llmcache.recorder import RECORD_MODES

__all__ = ["API_TYPES", "MARKER_HELP", "LLMMarker"]

API_TYPES = ("openai", "azure")
# What `pytest --markers` shows, and what a misused marker's error quotes.
MARKER_HELP = (
    "llm(api_type=None, api_types=None, cache=False, cassette=None, record_mode=None): pytest-llmcache "
    "settings for a test using llm_client or llm_cassette. "
    "api_type='openai'|'azure': the API type of llm_client (default: the configured one). "
    "api_types=['openai', 'azure']: run the test once per API type, one cassette each. "
    "cache=True: turn the client's API cache on, in a file under the test's tmp_path. "
    "cassette='dir/name.yaml': the cassette file, relative to the cassette directory (several tests may share one). "
    "record_mode='once'|...: this test's record mode, overriding --llm-record-mode."
)


@dataclass(frozen=True)
class LLMMarker:
    """The merged ``llm`` markers of a test (the closest marker wins for each argument)."""

    api_type: str | None = None
    api_types: tuple[str, ...] = field(default=())
    cache: bool = False
    cassette: str | None = None
    record_mode: str | None = None

    @classmethod
    def of(cls, node: pytest.Item | pytest.Collector) -> LLMMarker:
        arguments: dict[str, object] = {}
        known = {f.name for f in fields(cls)}
        for marker in node.iter_markers("llm"):
            if marker.args:
                raise pytest.UsageError(f"{node.nodeid}: the llm marker takes keyword arguments only ({MARKER_HELP})")
            unknown = set(marker.kwargs) - known
            if unknown:
                raise pytest.UsageError(f"{node.nodeid}: unknown llm marker argument(s) {', '.join(sorted(unknown))} ({MARKER_HELP})")
            for name, value in marker.kwargs.items():
                arguments.setdefault(name, value)
        if "api_types" in arguments:
            arguments["api_types"] = tuple(arguments["api_types"])  # type: ignore[arg-type]
        marker = cls(**arguments)  # type: ignore[arg-type]
        for api_type in (marker.api_type, *marker.api_types):
            if api_type is not None and api_type not in API_TYPES:
                raise pytest.UsageError(f"{node.nodeid}: llm marker api type {api_type!r} is not one of {', '.join(API_TYPES)}")
        if marker.record_mode is not None and marker.record_mode not in RECORD_MODES:
            raise pytest.UsageError(f"{node.nodeid}: llm marker record_mode {marker.record_mode!r} is not one of {', '.join(RECORD_MODES)}")
        return marker
