"""The compatibility suite: each framework's tests (frameworks/<name>.py, written as a user writes
them) are recorded through the plugin against the loopback server with live-looking keys, then
replayed offline (server stopped, every key removed, the plugin's defaults) three times
in shuffled order, giving the same answers; no key reaches any file.

Anything that tries to leave the machine meets a dead end: HTTP(S)_PROXY points at a second
loopback server that answers every request (CONNECT included) with an error and notes its target,
so a framework's download or upload fails fast and the test sees which hosts were tried.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import LIVE_KEYS, InnerSuite

from fakeopenai import FakeOpenAIServer

FRAMEWORKS_DIR = Path(__file__).with_name("frameworks")
SEEDS = (1, 2, 3)
BASE_URL_VARS = ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GOOGLE_GEMINI_BASE_URL")
ORDER = "~order"  # the key under which SHUFFLE_PLUGIN leaves the order the tests ran in

# Loaded in the inner sessions with -p: shuffles the replays, and notes every session's order.
SHUFFLE_PLUGIN = '''
import json, os, random

def pytest_collection_modifyitems(items):
    seed = os.environ.get("COMPAT_SEED")
    if seed:
        random.Random(int(seed)).shuffle(items)
    with open(os.environ["LLM_OUTPUTS"], "a") as handle:
        handle.write(json.dumps({"test": "~order", "value": [item.nodeid for item in items]}) + "\\n")
'''


@dataclass(frozen=True)
class Framework:
    name: str  # its test module: frameworks/<name>.py
    module: str  # the import that tells whether it is installed
    gaps: tuple[str, ...] = field(default=())  # known gaps: the test is xfail(strict), so it fails once they close

    @property
    def source(self) -> str:
        return (FRAMEWORKS_DIR / f"{self.name}.py").read_text()

    def installed(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False

    def param(self) -> Any:
        marks = [pytest.mark.xfail(strict=True, reason="; ".join(self.gaps))] if self.gaps else []
        return pytest.param(self, id=self.name, marks=marks)


# A framework with known gaps: its test is xfail(strict) with them as the reason; remove them when they close.
FRAMEWORKS = (
    Framework("langchain_openai", "langchain_openai"),
    Framework("litellm", "litellm"),
    Framework("openai_agents", "agents"),
    Framework("pydantic_ai", "pydantic_ai"),
    Framework("instructor", "instructor"),
    Framework("llm", "llm"),
    Framework("anthropic", "anthropic"),
    Framework("google_genai", "google.genai"),
)


@pytest.fixture
def dead_end(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A second loopback server as every HTTP(S) proxy; the loopback API server is reached directly."""
    with FakeOpenAIServer() as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)
            monkeypatch.setenv(name.lower(), proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        yield proxy


def tried(proxy: FakeOpenAIServer) -> list[str]:
    """What reached the dead end: CONNECT targets, or host and path of plain HTTP requests."""
    return [request.path if request.method == "CONNECT" else f"{request.headers.get('host')}{request.path}" for request in proxy.requests]


def record_and_replay(suite: InnerSuite, proxy: FakeOpenAIServer, frameworks: list[Framework]) -> None:
    for framework in frameworks:
        suite.write(framework.source, name=f"test_{framework.name}")
    suite.write(SHUFFLE_PLUGIN, name="compat_shuffle")

    suite.live()
    base_urls = {name: os.environ[name] for name in BASE_URL_VARS}
    recorded = suite.run("-p", "compat_shuffle", "--llm-record-mode=once", subprocess=True)
    outcomes = recorded.parseoutcomes()
    assert not outcomes.get("failed") and not outcomes.get("errors"), recorded.stdout.str()
    expected = suite.read_outputs()
    first_order = expected.pop(ORDER)
    assert len(expected) == outcomes["passed"] == len(first_order), recorded.stdout.str()
    assert suite.server.hits > 0
    written = suite.files_text()
    assert [key for key in LIVE_KEYS if key in written] == []
    tried_live = tried(proxy)

    suite.offline()
    # The base URLs stay, pointing at the stopped server: a request can depend on them (litellm asks
    # OpenAI itself, and only it, for stream usage), so a replay runs with the recording's settings.
    for name in BASE_URL_VARS:
        suite.monkeypatch.setenv(name, base_urls[name])
    orders = [first_order]
    for seed in SEEDS:
        suite.monkeypatch.setenv("COMPAT_SEED", str(seed))
        replayed = suite.run("-p", "compat_shuffle", subprocess=True)
        outputs = suite.read_outputs()
        orders.append(outputs.pop(ORDER))
        replay_outcomes = replayed.parseoutcomes()
        assert replay_outcomes.get("passed") == len(expected) and not replay_outcomes.get("failed") and not replay_outcomes.get("errors"), replayed.stdout.str()
        assert outputs == expected
    if len(first_order) > 2:
        assert len({tuple(order) for order in orders}) > 1  # the shuffle did shuffle
    assert tried(proxy) == tried_live, "a replay tried to reach the internet"


@pytest.mark.parametrize("framework", [framework.param() for framework in FRAMEWORKS])
def test_framework_records_then_replays_offline_three_times_shuffled(suite: InnerSuite, dead_end: FakeOpenAIServer, framework: Framework) -> None:
    # Not imported here: litellm's import adds importlib_metadata's finder to sys.meta_path, after
    # which this process's later in-process inner sessions no longer find any plugin's metadata.
    if not framework.installed():
        pytest.skip(f"{framework.module} is not installed")
    record_and_replay(suite, dead_end, [framework])


@pytest.mark.xfail(
    any(framework.installed() and framework.gaps for framework in FRAMEWORKS),
    strict=True,
    reason="a framework has a known gap",
)
def test_all_frameworks_in_one_shuffled_suite(suite: InnerSuite, dead_end: FakeOpenAIServer) -> None:
    """Background requests (trace uploads, price lists) land in other frameworks' tests here, and
    openai-agents' trace uploads also between tests and at exit, when no cassette is active: the
    session's ignore rules refuse them there too (nothing reaches the dead-end proxy in replay)."""
    installed = [framework for framework in FRAMEWORKS if framework.installed()]
    if len(installed) < 2:
        pytest.skip("fewer than two frameworks installed")
    record_and_replay(suite, dead_end, installed)
