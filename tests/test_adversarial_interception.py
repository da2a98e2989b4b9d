"""Adversarial tests of the session-long interception (`stacks`: patch points held by cassettes and
pytest sessions, one dispatcher per point) and of llm_cassette computing its settings directly:
inputs and lifecycles that the patch-per-cassette design handled and that this one must too."""
from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import httpx2
import pytest

from conftest import OPENAI_KEY, InnerSuite
from fakeopenai import FakeOpenAIServer, Reply
from pytest_llmcache import stacks
from pytest_llmcache.recorder import LLMCassette

LAZY_OPENAI = '''
def test_lazy(llm_cassette, slept, out):
    import openai  # the first import of the SDK in this process: after the patch points are held

    response = openai.OpenAI(max_retries=1).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "busy?"}])
    out([response.http_response.status_code, llm_cassette.waits, slept])
'''


def test_an_sdk_imported_inside_the_test_has_its_retry_sleeps_dispatched(suite: InnerSuite) -> None:
    """The openai SDK's retry sleep goes to the cassette even when the SDK is first imported after
    the interception was put in place (a test or library importing it lazily): recorded as asked,
    skipped on replay. (The patch-per-cassette design imported the SDK at each cassette's start.)"""
    suite.write(LAZY_OPENAI)
    suite.live()
    suite.server.script(Reply.error(429, retry_after=0.2), Reply())
    suite.run("--llm-record-mode=once", subprocess=True).assert_outcomes(passed=1)  # a process where openai is not imported yet
    assert suite.read_outputs() == {"test_x.py::test_lazy": [200, [0.2], [0.2]]}
    suite.offline()
    suite.run(subprocess=True).assert_outcomes(passed=1)
    assert suite.read_outputs() == {"test_x.py::test_lazy": [200, [0.2], []]}


PARAMETRIZED_SETTINGS = '''
import pytest

@pytest.mark.parametrize("llm_record_mode", ["all"])
def test_direct(llm_cassette, out):
    out(llm_cassette.mode)

@pytest.mark.parametrize("llm_record_mode", ["new_episodes"])
class TestOnClass:
    def test_in_class(self, llm_cassette, out):
        out(llm_cassette.mode)

@pytest.fixture
def llm_allowed_hosts(request):
    return (getattr(request, "param", "nothing.internal"),)

@pytest.mark.parametrize("llm_allowed_hosts", ["db.internal"], indirect=True)
def test_indirect(llm_cassette, request, out):
    out(request.node.callspec.params["llm_allowed_hosts"])

def test_plain(llm_cassette, request, out):
    out([llm_cassette.mode, [name for name in request.node.fixturenames if name.startswith("llm_")]])
'''


def test_a_setting_parametrized_on_a_test_that_only_requests_llm_cassette(suite: InnerSuite) -> None:
    """``@pytest.mark.parametrize("llm_record_mode", [...])`` on a test requesting llm_cassette alone
    (the setting reached through llm_cassette, as it did when llm_cassette requested it) is not a
    collection error "function uses no argument", and the cassette gets the value; a test that
    parametrizes nothing still has none of them set up by pytest."""
    suite.write(PARAMETRIZED_SETTINGS)
    suite.run("-p", "no:randomly").assert_outcomes(passed=4)
    assert suite.read_outputs() == {
        "test_x.py::TestOnClass::test_in_class[new_episodes]": "new_episodes",
        "test_x.py::test_direct[all]": "all",
        "test_x.py::test_indirect[db.internal]": "db.internal",
        "test_x.py::test_plain": ["none", ["llm_cassette"]],  # the settings were not set up by pytest
    }


PLACEHOLDER_AND_MONKEYPATCH = '''
import os

def test_sets_its_own_key(monkeypatch, llm_cassette, out):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-set-by-the-test")
    out(os.environ["OPENAI_API_KEY"])

def test_removes_the_key(monkeypatch, llm_cassette, out):
    monkeypatch.delenv("OPENAI_API_KEY")

def test_cassette_first(llm_cassette, monkeypatch, out):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-set-by-the-test")

def test_after(out):
    out(os.environ.get("OPENAI_API_KEY"))
'''


def test_placeholder_credentials_do_not_outlive_a_test_that_monkeypatches_them(suite: InnerSuite) -> None:
    """Replaying sets placeholder keys for the test; a test that changes one itself with monkeypatch
    (set up before or after llm_cassette) leaves the environment as it found it: no placeholder key
    stays for the tests that follow (they would build clients with it)."""
    suite.write(PLACEHOLDER_AND_MONKEYPATCH)
    assert "OPENAI_API_KEY" not in os.environ
    suite.run("-p", "no:randomly").assert_outcomes(passed=4)
    assert suite.read_outputs() == {"test_x.py::test_sets_its_own_key": "sk-set-by-the-test", "test_x.py::test_after": None}
    assert "OPENAI_API_KEY" not in os.environ


RUN_TIME_CLASS_MARKER = '''
import pytest

class TestMarkedAtRunTime:
    @pytest.fixture(scope="class", autouse=True)
    def recording(self, request):
        request.applymarker(pytest.mark.llm(record_mode="new_episodes", cassette="by_class.yaml"))

    def test_x(self, llm_cassette, out):
        out([llm_cassette.mode, llm_cassette.path.name])
'''


def test_a_marker_added_to_the_class_at_run_time_reaches_the_cassette(suite: InnerSuite) -> None:
    """The marker collection found is reused unless one was added since: also one added to the
    test's class (a class-scoped fixture's applymarker), not only to the test itself."""
    suite.write(RUN_TIME_CLASS_MARKER)
    suite.run().assert_outcomes(passed=1)
    assert suite.read_outputs() == {"test_x.py::TestMarkedAtRunTime::test_x": ["new_episodes", "by_class.yaml"]}


OTHER_ITEM_KINDS = '''
import unittest
import pytest

class TestCaseStyle(unittest.TestCase):
    @pytest.fixture(autouse=True)
    def _cassette(self, llm_cassette, out):
        self.cassette, self.out = llm_cassette, out

    def test_it(self):
        self.out([self.cassette.mode, self.cassette.path.name])

def doubled(x):
    """
    >>> getfixture("llm_cassette").path.name
    'test_x.doubled.yaml'
    >>> doubled(2)
    4
    """
    return 2 * x
'''


def test_unittest_cases_and_doctests_get_a_cassette(suite: InnerSuite) -> None:
    """Items that are not plain functions (a unittest.TestCase method using llm_cassette through an
    autouse fixture, a doctest asking for it) get their cassette with the default settings."""
    suite.write(OTHER_ITEM_KINDS)
    suite.run("--doctest-modules").assert_outcomes(passed=2)
    assert suite.read_outputs() == {"test_x.py::TestCaseStyle::test_it": ["none", "TestCaseStyle.test_it.yaml"]}


def test_llm_cassette_does_not_bring_pytests_request_fixture_into_a_tests_closure(pytester: pytest.Pytester) -> None:
    """pytest makes a new definition of `request`, reading its function's signature, each of the
    three times a fixture asking for it is set up (about 30 us per test): llm_cassette finds its
    test without it (the doctest and unittest cases above, and every inner suite, use it so)."""
    items = pytester.getitems("def test_it(llm_cassette):\n    pass\n")
    assert "llm_cassette" in items[0].fixturenames and "request" not in items[0].fixturenames


def _interception_state() -> tuple[object, int, object, object]:
    return stacks._outside, stacks._holders, httpx2.HTTPTransport.handle_request, aiohttp.ClientSession._request


LIFECYCLE_TESTS = '''
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("setup fails")

def test_uses_a_cassette(llm_cassette):
    assert llm_cassette.mode in ("none", "all")

def test_errors_in_setup(broken, llm_cassette):
    pass

def test_fails(llm_cassette):
    assert False

def test_plain():
    pass
'''


@pytest.mark.parametrize(
    "args",
    [(), ("--llm-record-mode=all",), ("--collect-only",), ("-x",), ("--maxfail=1", "--llm-record-mode=all"), ("-k", "plain"), ("-p", "no:llmcache")],
    ids=lambda args: " ".join(args) or "replay",
)
def test_an_inner_session_leaves_the_interception_as_it_found_it(suite: InnerSuite, args: tuple[str, ...]) -> None:
    """An in-process session (replaying or recording, collecting only, stopped early, or with the
    plugin off) puts back the outer session's policy and hold count and the patch points as they were."""
    suite.write(LIFECYCLE_TESTS)
    before = _interception_state()
    result = suite.run(*args)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    assert _interception_state() == before


def _ask(content: str) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}


def _every_stack_at_once(url: str) -> list[tuple[str, int, bytes]]:
    """httpx (sync, from a thread), httpx (async), httpx2 (async) and aiohttp, all in flight together."""
    headers = {"Authorization": f"Bearer {OPENAI_KEY}"}

    def sync_httpx() -> tuple[str, int, bytes]:
        with httpx.Client() as client:
            response = client.post(url, json=_ask("httpx sync"), headers=headers)
            return "httpx sync", response.status_code, response.content

    async def async_httpx(module: Any, name: str) -> tuple[str, int, bytes]:
        async with module.AsyncClient() as client:
            response = await client.post(url, json=_ask(name), headers=headers)
            return name, response.status_code, response.content

    async def with_aiohttp() -> tuple[str, int, bytes]:
        async with aiohttp.ClientSession() as session, session.post(url, json=_ask("aiohttp"), headers=headers) as response:
            return "aiohttp", response.status, await response.read()

    async def main() -> list[tuple[str, int, bytes]]:
        in_thread = asyncio.to_thread(sync_httpx)
        return list(await asyncio.gather(in_thread, async_httpx(httpx, "httpx async"), async_httpx(httpx2, "httpx2 async"), with_aiohttp()))

    return asyncio.run(main())


def test_every_stack_at_once_records_and_replays_each_request_in_one_cassette(tmp_path: Path, server: FakeOpenAIServer) -> None:
    path = tmp_path / "all_at_once.yaml"
    url = server.base_url + "/chat/completions"
    with LLMCassette.use(path=path, record_mode="once") as recording:
        live = _every_stack_at_once(url)
    recording.save()
    assert [status for _, status, _ in live] == [200] * 4 and len(recording.recorded) == 4
    server.stop()
    with LLMCassette.use(path=path, record_mode="none") as replaying:
        assert _every_stack_at_once(url) == live
    assert sorted(replaying.played) == [0, 1, 2, 3] and replaying.misses == []


RELEASE_WITHOUT_HOLD = """
import httpx2
from pytest_llmcache import stacks
from pytest_llmcache.recorder import LLMCassette

original = httpx2.HTTPTransport.handle_request
try:
    stacks.release()
except RuntimeError as error:
    print("refused:", error)
stacks.hold()
print("patched:", httpx2.HTTPTransport.handle_request is not original)
stacks.release()
print("restored:", httpx2.HTTPTransport.handle_request is original, stacks._holders)
"""


def test_a_release_without_a_hold_is_refused_and_the_next_hold_still_patches(pytester: pytest.Pytester) -> None:
    """A holder count gone negative would make the next hold a no-op: cassettes then answer nothing."""
    result = pytester.run(sys.executable, "-c", RELEASE_WITHOUT_HOLD)
    assert result.ret == 0, result.stderr.str()
    lines = result.stdout.lines
    assert lines[0].startswith("refused: ") and lines[1:] == ["patched: True", "restored: True 0"]


PLUGIN_MODULE = '''
import pytest

@pytest.fixture(scope="session")
def llm_record_mode():
    return "new_episodes"
'''

NESTED_OVERRIDES = '''
import pytest

class TestOuter:
    def test_outer(self, llm_cassette, out):
        out(llm_cassette.mode)

    class TestInner:
        @pytest.fixture
        def llm_record_mode(self):
            return "all"

        def test_inner(self, llm_cassette, out):
            out(llm_cassette.mode)

    def test_outer_after(self, llm_cassette, out):
        out(llm_cassette.mode)
'''

DEEP_CONFTEST = '''
import pytest

@pytest.fixture
def llm_record_mode(llm_record_mode):
    return "once" if llm_record_mode == "new_episodes" else "rewrite"
'''


def test_overrides_from_a_plugin_module_a_nested_class_and_a_deeper_conftest(suite: InnerSuite) -> None:
    """A session-scoped override from a `pytest_plugins` module applies everywhere; a class nested
    in a class overrides for its own tests only; a conftest two folders down wraps the plugin
    module's value for its tests only."""
    suite.pytester.makepyfile(settings_plugin=PLUGIN_MODULE)
    (suite.pytester.path / "conftest.py").write_text((suite.pytester.path / "conftest.py").read_text() + '\npytest_plugins = ["settings_plugin"]\n')
    suite.write(NESTED_OVERRIDES, name="test_a")
    deep = suite.pytester.mkdir("deep") / "deeper"
    deep.mkdir()
    (deep / "conftest.py").write_text(DEEP_CONFTEST)
    (deep / "test_deep.py").write_text("def test_deep(llm_cassette, out):\n    out(llm_cassette.mode)\n")
    (suite.pytester.path / "deep" / "test_shallow.py").write_text("def test_shallow(llm_cassette, out):\n    out(llm_cassette.mode)\n")
    suite.run("-p", "no:randomly").assert_outcomes(passed=5)
    assert suite.read_outputs() == {
        "deep/deeper/test_deep.py::test_deep": "once",
        "deep/test_shallow.py::test_shallow": "new_episodes",
        "test_a.py::TestOuter::TestInner::test_inner": "all",
        "test_a.py::TestOuter::test_outer": "new_episodes",
        "test_a.py::TestOuter::test_outer_after": "new_episodes",
    }


def test_cassettes_active_in_two_threads_unwind_in_any_order(tmp_path: Path) -> None:
    """Thread one enters A, thread two enters B, thread one leaves A first: B stays the active one
    (the list of active cassettes is the process's), and nothing is held once both are gone."""
    holders = stacks._holders
    entered, leave_a, left_a = threading.Event(), threading.Event(), threading.Event()
    seen: list[str] = []

    def first() -> None:
        with LLMCassette.use(path=tmp_path / "a.yaml", record_mode="none"):
            entered.set()
            leave_a.wait()
        left_a.set()

    thread = threading.Thread(target=first)
    thread.start()
    entered.wait()
    with LLMCassette.use(path=tmp_path / "b.yaml", record_mode="none") as b:
        leave_a.set()
        left_a.wait()
        current = stacks.current()
        seen.append(current.path.name if current is not None else "none")
    thread.join()
    assert seen == [b.path.name] and stacks.current() is None and stacks._holders == holders


def test_an_exception_inside_a_cassette_leaves_nothing_active_or_held(tmp_path: Path) -> None:
    holders = stacks._holders
    with pytest.raises(KeyError), LLMCassette.use(path=tmp_path / "c.yaml", record_mode="none"):
        raise KeyError("raised inside the cassette")
    assert stacks.current() is None and stacks._holders == holders


NO_CASSETTE_RUNS = '''
import httpx2
from pytest_llmcache import stacks

def test_uses_a_cassette(llm_cassette):
    pass

def test_plain(out):
    out([stacks._holders, hasattr(httpx2.HTTPTransport.handle_request, "__wrapped__")])  # a dispatcher wraps the original
'''


@pytest.mark.parametrize("args", [("-k", "plain"), ("test_x.py::test_plain",), ("--deselect", "test_x.py::test_uses_a_cassette")], ids=["-k", "node id", "--deselect"])
def test_a_session_whose_selected_tests_use_no_cassette_patches_nothing(suite: InnerSuite, args: tuple[str, ...]) -> None:
    """Only tests that run decide whether the patch points are held: with the cassette user
    deselected, nothing is patched (in a fresh process, where no earlier session holds them)."""
    suite.write(NO_CASSETTE_RUNS)
    suite.run(*args, subprocess=True).assert_outcomes(passed=1)
    assert suite.read_outputs() == {"test_x.py::test_plain": [0, False]}


INTERRUPTED = '''
import pytest

def test_interrupted(llm_cassette):
    pytest.exit("aborted inside a cassette")  # an interrupt that pytester does not pass on to the outer session

def test_never_run(llm_cassette):
    pass
'''


@pytest.mark.parametrize("mode", ["none", "all"])
def test_an_interrupted_inner_session_leaves_the_interception_as_it_found_it(suite: InnerSuite, mode: str) -> None:
    suite.write(INTERRUPTED)
    before = _interception_state()
    result = suite.run(f"--llm-record-mode={mode}")
    assert result.ret == pytest.ExitCode.INTERRUPTED and "aborted inside a cassette" in result.stdout.str()
    assert _interception_state() == before and stacks.current() is None


IN_MEMORY_TRANSPORTS = '''
import httpx2

def handler(request):
    return httpx2.Response(200, json={"mocked": request.url.host})

def test_uses_a_cassette(llm_cassette):
    pass

def test_mocks_its_own_tracing(out):
    with httpx2.Client(transport=httpx2.MockTransport(handler)) as client:
        response = client.post("https://api.smith.langchain.com/runs", json={})
    out([response.status_code, response.json()])

async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"served in memory"})

def test_asgi_app_on_an_ignored_host(out):
    import asyncio

    async def main():
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app), base_url="https://eu.posthog.com") as client:
            response = await client.post("/capture/")
            return [response.status_code, response.text]

    out(asyncio.run(main()))
'''


def test_in_memory_transports_outside_a_cassette_are_not_refused(suite: InnerSuite) -> None:
    """Between tests' cassettes the session refuses requests to ignored hosts while replaying (no
    trace upload reaches the network). A test without a cassette answering such a request itself
    (httpx's MockTransport, an ASGI app) never touches the network: it gets its own answer, as it
    did before the patch points stayed in place for the whole session."""
    suite.write(IN_MEMORY_TRANSPORTS)
    suite.run("-p", "no:randomly").assert_outcomes(passed=3)
    assert suite.read_outputs() == {
        "test_x.py::test_mocks_its_own_tracing": [200, {"mocked": "api.smith.langchain.com"}],
        "test_x.py::test_asgi_app_on_an_ignored_host": [200, "served in memory"],
    }


RELEASE_SEND_CHECKS_WITHOUT_HOLD = """
import socket
from pytest_llmcache import network

before = socket.socket.sendall
try:
    network.release_send_checks()
except RuntimeError as error:
    print("refused:", error)
network.hold_send_checks()
print("patched:", socket.socket.sendall is not before)
network.release_send_checks()
print("restored:", socket.socket.sendall is before, "sendall" in vars(socket.socket))
"""


def test_releasing_the_send_checks_without_a_hold_is_refused_and_they_still_come_off(pytester: pytest.Pytester) -> None:
    """A holder count below zero would keep the socket send checks in place for good."""
    result = pytester.run(sys.executable, "-c", RELEASE_SEND_CHECKS_WITHOUT_HOLD)
    assert result.ret == 0, result.stderr.str()
    lines = result.stdout.lines
    assert lines[0].startswith("refused: ") and lines[1:] == ["patched: True", "restored: True False"]
