"""The session summary (replayed / recorded / missing) and the "played" manifest.

After each session that used cassettes, ``<cassette dir>/.llmcache-played.json`` lists, per
cassette (path relative to the cassette directory), how many interactions it held and which ones
were played::

    {"version": 1, "cassettes": {"tests/test_x/test_y.yaml": {"interactions": 3, "played": [0, 2]}}}

Tools (e.g. a prune command or a token report) read it. Under pytest-xdist, workers send their
part to the controller, which writes the file once.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_llmcache.recorder import LLMCassette

__all__ = ["MANIFEST_NAME", "Report"]

MANIFEST_NAME = ".llmcache-played.json"
_WORKER_KEY = "llmcache_report"


class Report:
    """Collects what each test's cassette did; registered as a plugin by `pytest_llmcache.plugin`."""

    def __init__(self, config: pytest.Config, cassette_dir: Path, record_mode: str) -> None:
        self.config = config
        self.cassette_dir = cassette_dir
        self.record_mode = record_mode
        self.counts = {"replayed": 0, "recorded": 0, "missing": 0}
        self.cassettes: dict[str, dict[str, Any]] = {}

    def add(self, cassette: LLMCassette) -> None:
        self._merge(
            {
                "counts": {"replayed": len(cassette.played), "recorded": len(cassette.recorded), "missing": len(cassette.misses)},
                "cassettes": {self._name(Path(cassette.path)): {"interactions": len(cassette.loaded), "played": cassette.played}},
            }
        )

    def _name(self, path: Path) -> str:
        try:
            return path.relative_to(self.cassette_dir).as_posix()
        except ValueError:
            return path.as_posix()

    def _merge(self, part: dict[str, Any]) -> None:
        for name, count in part["counts"].items():
            self.counts[name] += count
        for name, entry in part["cassettes"].items():
            known = self.cassettes.setdefault(name, {"interactions": entry["interactions"], "played": []})
            known["played"] = sorted(set(known["played"]) | set(entry["played"]))

    # -- hooks ------------------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: take a finished worker's part."""
        part = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
        if part:
            self._merge(json.loads(part))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.cassettes:
            return
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller writes the file
            self.config.workeroutput[_WORKER_KEY] = json.dumps({"counts": self.counts, "cassettes": self.cassettes})  # type: ignore[attr-defined]
            return
        manifest = self.cassette_dir / MANIFEST_NAME
        manifest.parent.mkdir(parents=True, exist_ok=True)
        temporary = manifest.with_name(f"{manifest.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"version": 1, "cassettes": dict(sorted(self.cassettes.items()))}, indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, manifest)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.cassettes:
            return
        counts = ", ".join(f"{count} {name}" for name, count in self.counts.items())
        terminalreporter.write_sep("-", "llmcache")
        terminalreporter.write_line(
            f"llmcache: {counts} in {len(self.cassettes)} cassette(s), record mode {self.record_mode!r} "
            f"(cassettes: {self.cassette_dir})"
        )
