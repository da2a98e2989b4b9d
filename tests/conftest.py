"""Shared fixtures: the fake OpenAI server and inner pytest sessions that record, then replay."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any

# Imported once here, not again by every inner session (pytester drops what an inner run imports).
# httpcore2 above all: httpx2 caches its exception classes on first use, and a copy imported by an
# inner session would leave later timeouts in this process unmapped (a raw httpcore2.ReadTimeout).
import httpcore2  # noqa: F401
import hypothesis  # noqa: F401
import openai  # noqa: F401
import pytest

import tinytroupe.openai_utils  # noqa: F401
from fakeopenai import FakeOpenAIServer

OPENAI_KEY = "sk-live-openai-key-0123456789abcdef"
AZURE_KEY = "live-azure-key-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-live-anthropic-key-0123456789abcdef"
GEMINI_KEY = "AIzaLiveGeminiKey0123456789abcdefABCDEF"
LIVE_KEYS = (OPENAI_KEY, AZURE_KEY, ANTHROPIC_KEY, GEMINI_KEY)
API_VERSION = "2024-10-21"
CREDENTIAL_VARS = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION",
    "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL",
)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    """The loopback server (tests/fakeopenai), started for this test and stopped after it."""
    with FakeOpenAIServer() as loopback:
        yield loopback


class InnerSuite:
    """A test directory run by inner pytest sessions: `live()` points every provider (OpenAI, Azure,
    Anthropic, Gemini) at the fake server with live-looking keys, `offline()` stops it and removes
    every credential and base URL."""

    def __init__(self, pytester: pytest.Pytester, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pytester = pytester
        self.server = server
        self.monkeypatch = monkeypatch
        self.outputs = pytester.path / "outputs.jsonl"
        monkeypatch.setenv("LLM_OUTPUTS", str(self.outputs))
        self.offline(stop=False)

    @property
    def cassettes(self) -> Path:
        return self.pytester.path / "cassettes"

    def write(self, source: str, name: str = "test_x") -> None:
        self.pytester.makepyfile(**{name: textwrap.dedent(source)})

    def live(self) -> None:
        self.monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        self.monkeypatch.setenv("OPENAI_BASE_URL", self.server.base_url)
        self.monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", self.server.azure_endpoint)
        self.monkeypatch.setenv("AZURE_OPENAI_KEY", AZURE_KEY)
        self.monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
        self.monkeypatch.setenv("OPENAI_API_VERSION", API_VERSION)
        self.monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        self.monkeypatch.setenv("ANTHROPIC_BASE_URL", self.server.url)
        self.monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
        self.monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", self.server.url)

    def offline(self, stop: bool = True) -> None:
        if stop:
            self.server.stop()
        for name in CREDENTIAL_VARS:
            # Set, then removed: noted either way, so the test's end puts back what was there
            # before, whatever an inner test run in this process set (os.environ, os.environb).
            self.monkeypatch.setenv(name, "")
            self.monkeypatch.delenv(name)

    def run(self, *args: str, subprocess: bool = False) -> pytest.RunResult:
        self.outputs.unlink(missing_ok=True)
        run = self.pytester.runpytest_subprocess if subprocess else self.pytester.runpytest
        return run("-p", "no:cacheprovider", *args)

    def read_outputs(self) -> dict[str, Any]:
        """What the inner tests wrote with `record()` (see OUTPUT_HELPER), by test name."""
        if not self.outputs.exists():
            return {}
        lines = [json.loads(line) for line in self.outputs.read_text().splitlines()]
        return {line["test"]: line["value"] for line in sorted(lines, key=lambda line: line["test"])}

    def files_text(self) -> str:
        """Every file under the test directory except the test sources, for secret scans."""
        return "\n".join(
            path.read_text(errors="replace") for path in self.pytester.path.rglob("*") if path.is_file() and path.suffix != ".py"
        )


# Inner tests call record(value) to leave what they observed for the outer test to compare.
OUTPUT_HELPER = '''
import json, os

def record(request, value):
    with open(os.environ["LLM_OUTPUTS"], "a") as handle:
        handle.write(json.dumps({"test": request.node.nodeid, "value": value}) + "\\n")
'''


# The inner suites' conftest: `out` (see OUTPUT_HELPER), and `slept`, every real time.sleep of the
# test (recording waits as asked; replay must not wait at all).
INNER_CONFTEST = OUTPUT_HELPER + '''
import time
import pytest

@pytest.fixture
def out(request):
    return lambda value: record(request, value)

@pytest.fixture
def slept(monkeypatch):
    seconds, sleep = [], time.sleep
    monkeypatch.setattr(time, "sleep", lambda wait: (seconds.append(wait), sleep(wait))[1])
    return seconds
'''


@pytest.fixture
def suite(pytester: pytest.Pytester, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> InnerSuite:
    pytester.makeconftest(INNER_CONFTEST)
    return InnerSuite(pytester, server, monkeypatch)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``llmcache ARGS`` in-process: (exit code, stdout, stderr)."""
    from pytest_llmcache.cli import main

    def run(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()  # only this command's output
        code = main([str(arg) for arg in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run
