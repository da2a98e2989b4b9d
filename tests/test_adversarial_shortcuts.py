"""Inputs aimed at the shortcuts of the speed work (shared vcrpy stubs routed per request, the
running-test lookup, the collection caches, the placeholder keys, the report's caches): each test
here failed before the fix landed with it, or pins a shortcut that held up under the attack."""
from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import pytest

from conftest import OPENAI_KEY, InnerSuite
from fakeopenai import FakeOpenAIServer, Reply
from pytest_llmcache.errors import MissingRecording
from pytest_llmcache.recorder import LLMCassette

aiohttp = pytest.importorskip("aiohttp")
httpx2 = pytest.importorskip("httpx2")

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Capital of France?"}]}
AUTH = {"Authorization": f"Bearer {OPENAI_KEY}"}


def _aiohttp_post(url: str) -> tuple[int, bytes, list[int]]:
    """A POST through aiohttp, redirects followed: status, body and the statuses of the redirects."""

    async def main() -> tuple[int, bytes, list[int]]:
        async with aiohttp.ClientSession() as session, session.post(url, json=CHAT, headers=AUTH) as response:
            return response.status, await response.read(), [past.status for past in response.history]

    return asyncio.run(main())


@pytest.mark.parametrize("status", [302, 307, 308])
def test_an_aiohttp_request_that_is_redirected_records_and_replays_offline(status: int, tmp_path: Path, server: FakeOpenAIServer) -> None:
    """aiohttp follows a redirect itself, and vcrpy's aiohttp stub records the chain (the redirect's
    body-less response included) and replays it by asking where the redirect leads (with a GET, while
    a 307 or 308 keeps the POST). Before: recording failed with KeyError 'string' (the redirect's
    response has no body in vcrpy's dict), and a recorded 307 / 308 replayed with a bare KeyError."""
    path, url = tmp_path / "c.yaml", server.base_url + "/chat/completions"
    server.script(Reply.raw(status, b"", {"location": "/v1/chat/completions?hop=1"}))
    with LLMCassette.use(path=path, record_mode="once") as recording:
        live = _aiohttp_post(url)
    recording.save()
    assert live[2] == [status] and server.hits == 2 and len(recording.recorded) == 2
    assert OPENAI_KEY not in path.read_text()

    server.stop()
    with LLMCassette.use(path=path, record_mode="none") as replaying:
        assert _aiohttp_post(url) == live
    assert replaying.played == [0, 1] and not replaying.misses


def test_a_replayed_redirect_whose_target_was_not_recorded_is_a_missing_recording(tmp_path: Path, server: FakeOpenAIServer) -> None:
    """A redirect recorded without its target (httpx does not follow redirects by default), then
    replayed through aiohttp, which follows it: the test gets the missing-recording message naming
    the request it could not answer. Before: a bare KeyError from the cassette's queues."""
    path, url = tmp_path / "c.yaml", server.base_url + "/chat/completions"
    server.script(Reply.raw(307, b"", {"location": "/v1/chat/completions?hop=1"}))
    with LLMCassette.use(path=path, record_mode="once") as recording, httpx2.Client() as client:
        assert client.post(url, json=CHAT, headers=AUTH).status_code == 307
    recording.save()

    server.stop()
    with LLMCassette.use(path=path, record_mode="none") as replaying, pytest.raises(MissingRecording, match=r"/v1/chat/completions\?hop=1") as raised:
        _aiohttp_post(url)
    assert replaying.played == [0] and replaying.misses == [raised.value]
    assert "--llm-record-mode=" in str(raised.value) and OPENAI_KEY not in str(raised.value)


RERUNNING_CONFTEST = '''

from _pytest.runner import runtestprotocol


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """What pytest-rerunfailures does: a failed test's protocol run again, for the same item."""
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for attempt in range(2):
        item.attempt = attempt
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        if not any(report.failed for report in reports):
            break
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
'''

RERUN_TESTS = '''
import os
import httpx2
import pytest

def ask(question):
    httpx2.post(os.environ["SERVER"] + "/chat/completions", json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]})

@pytest.fixture
def broken_on_rerun(request):
    if request.node.attempt:
        raise RuntimeError("the fixture's own error on the rerun")

def test_assertion_on_rerun(request, llm_cassette):
    if not request.node.attempt:
        ask("first attempt only")
    assert request.node.attempt == 7, "the rerun's own failure"

def test_setup_error_on_rerun(request, broken_on_rerun, llm_cassette):
    ask("first attempt only")
'''


def test_a_rerun_test_is_reported_with_its_own_failure_not_the_last_runs_missing_recording(suite: InnerSuite) -> None:
    """A test whose protocol runs again for the same item (pytest-rerunfailures): its first run
    missed a recording, the rerun fails otherwise (an assertion; a fixture's error in setup). Each
    run is reported with its own failure. Before: what the first run's cassette refused stayed in
    the item's stash until the protocol ended, so the rerun's assertion was summarised as
    "no recording: ..." and the fixture's error in setup was replaced by the first run's miss."""
    conftest = suite.pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + RERUNNING_CONFTEST)
    suite.monkeypatch.setenv("SERVER", suite.server.base_url)
    suite.write(RERUN_TESTS)
    suite.offline()
    result = suite.run("-rA")
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(["FAILED test_x.py::test_assertion_on_rerun - AssertionError: the rerun*"])
    result.stdout.fnmatch_lines(["ERROR test_x.py::test_setup_error_on_rerun - RuntimeError: the fixture*"])
    assert "No recorded response" not in result.stdout.str()


def test_a_key_variable_that_is_not_utf8_does_not_break_recording_or_replay(tmp_path: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scrubber reads every provider's key variable (os.environ's table: bytes that are not
    UTF-8 come back with surrogates, as os.environ gives them). A stray ANTHROPIC_API_KEY in latin-1
    must not stop an OpenAI test from recording or replaying. Before: every replayed request failed
    in the scrubber with UnicodeEncodeError (URL-quoting the value to mask it), and so did the
    check before a recording is written (the value's base64 forms)."""
    import openai

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-caf\udce9-0123456789abcdef")  # the bytes b"caf\xe9": latin-1
    path = tmp_path / "c.yaml"
    client = openai.OpenAI(api_key=OPENAI_KEY, base_url=server.base_url, max_retries=0)

    def ask() -> str | None:
        return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of France?"}]).choices[0].message.content

    with LLMCassette.use(path=path, record_mode="once") as recording:
        live = ask()
    recording.save()
    server.stop()
    with LLMCassette.use(path=path, record_mode="none") as replaying:
        assert ask() == live == "echo: Capital of France?"
    assert replaying.played == [0] and "caf\udce9" not in replaying.scrubber.mask_message("key: sk-ant-caf\udce9-0123456789abcdef")


def test_an_aiohttp_session_with_a_base_url_records_the_full_url_and_replays(tmp_path: Path, server: FakeOpenAIServer) -> None:
    """``aiohttp.ClientSession(base_url=...)`` takes relative URLs (aiohttp joins them itself).
    The request is stored with the URL it went to, replays through the same code, and replays
    through httpx with the full URL. Before: the relative URL reached vcrpy's stub as written,
    was stored as ``https://api.openai.test/chat/completions`` (the ``/v1`` lost) and keyed as
    ``chat/completions``: the same code then missed its own recording."""
    path = tmp_path / "c.yaml"

    async def main() -> tuple[int, bytes]:
        async with aiohttp.ClientSession(base_url=server.base_url + "/") as session, session.post("chat/completions", json=CHAT, headers=AUTH) as response:
            return response.status, await response.read()

    with LLMCassette.use(path=path, record_mode="once") as recording:
        live = asyncio.run(main())
    recording.save()
    assert live[0] == 200 and "uri: https://api.openai.test/v1/chat/completions" in path.read_text()

    server.stop()
    with LLMCassette.use(path=path, record_mode="none") as replaying:
        assert asyncio.run(main()) == live
    with LLMCassette.use(path=path, record_mode="none") as through_httpx:
        assert httpx2.post(server.base_url + "/chat/completions", json=CHAT, headers=AUTH).content == live[1]
    assert replaying.played == through_httpx.played == [0]


def test_a_stream_opened_under_one_cassette_and_read_under_the_next_belongs_to_the_first(tmp_path: Path, server: FakeOpenAIServer) -> None:
    """Pins the routing of the shared stubs: an SSE stream the SDK opened while one cassette was
    active, read chunk by chunk only after it exited and while the next test's cassette is active,
    is recorded into and replayed from the first; the second records and plays nothing."""
    import openai

    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    client = openai.OpenAI(api_key=OPENAI_KEY, base_url=server.base_url, max_retries=0)

    def read_across(mode: str) -> tuple[str, LLMCassette, LLMCassette]:
        with LLMCassette.use(path=first, record_mode=mode) as opened_under:
            stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of France?"}], stream=True)
        with LLMCassette.use(path=second, record_mode=mode) as read_under:
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        return text, opened_under, read_under

    live, recording, other = read_across("once")
    recording.save()
    other.save()
    assert live and len(recording.recorded) == 1 and not other.recorded and not second.exists()
    server.stop()
    replayed, replaying, other = read_across("none")
    assert replayed == live and replaying.played == [0] and not other.played and not other.misses


DYNAMIC_REQUESTS = '''
import pytest

@pytest.fixture
def through_a_fixture(request):
    return request.getfixturevalue("llm_cassette")

def test_from_a_fixture(through_a_fixture, out):
    out(through_a_fixture.path.name)

def test_from_the_body(request, out):
    out(request.getfixturevalue("llm_cassette").path.name)

@pytest.fixture(scope="class")
def per_class(llm_cassette):
    return llm_cassette

class TestWider:
    def test_class_scoped(self, per_class):
        pass
'''


def test_llm_cassette_asked_for_at_run_time_is_its_own_tests_and_a_wider_scope_is_refused(suite: InnerSuite) -> None:
    """Pins the running-test lookup (llm_cassette no longer asks for pytest's request): asked for
    through getfixturevalue, from a fixture or the test body, it is the test's own cassette; a
    class-scoped fixture asking for it gets pytest's scope error naming it."""
    suite.write(DYNAMIC_REQUESTS)
    result = suite.run("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ScopeMismatch*function scoped fixture llm_cassette*"])
    assert suite.read_outputs() == {"test_x.py::test_from_a_fixture": "test_from_a_fixture.yaml", "test_x.py::test_from_the_body": "test_from_the_body.yaml"}


def test_a_projects_own_vcrpy_cassette_inside_an_llm_cassette_answers_its_own_requests(tmp_path: Path, server: FakeOpenAIServer) -> None:
    """Pins the interplay with vcrpy used directly (a project migrating from it): inside its
    ``vcr.use_cassette`` block vcrpy's own stub answers (built on the original transport, not on
    the shared dispatcher), and the LLM cassette around it records and replays only what was sent
    outside that block; afterwards the dispatcher is back in place."""
    vcr = pytest.importorskip("vcr")
    ours, theirs, url = tmp_path / "ours.yaml", tmp_path / "theirs.yaml", server.base_url + "/chat/completions"
    other = {**CHAT, "messages": [{"role": "user", "content": "Through vcrpy"}]}

    def send_both() -> tuple[bytes, bytes]:
        with vcr.use_cassette(str(theirs)):
            through_vcrpy = httpx2.post(url, json=other, headers=AUTH).content
        return through_vcrpy, httpx2.post(url, json=CHAT, headers=AUTH).content

    with LLMCassette.use(path=ours, record_mode="once") as recording:
        live = send_both()
    recording.save()
    assert server.hits == 2 and [interaction["request"]["body"]["json"] for interaction in recording.recorded] == [CHAT]
    assert "Through vcrpy" in theirs.read_text()

    server.stop()
    with LLMCassette.use(path=ours, record_mode="none") as replaying:
        assert send_both() == live
    assert replaying.played == [0] and not replaying.misses


TEARDOWN_MISS = '''
import os
import httpx2
import pytest

@pytest.fixture
def agent(llm_cassette):
    yield
    try:  # a framework's cleanup call, its failure logged and swallowed
        httpx2.post(os.environ["SERVER"] + "/chat/completions", json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "cleanup summary"}]})
    except Exception:
        pass

def test_with_cleanup(agent):
    pass
'''


def test_a_request_with_no_recording_in_a_fixtures_teardown_fails_the_test_naming_it(suite: InnerSuite) -> None:
    """A fixture using the cassette sends a request with no recording in its teardown and swallows
    the error: the test errors at teardown with the missing-recording message (the request, the
    command that records it), as it does for a miss in setup or in the test. Before: the test
    passed, and only the session summary's "1 missing" hinted at it."""
    suite.monkeypatch.setenv("SERVER", suite.server.base_url)
    suite.write(TEARDOWN_MISS)
    suite.offline()
    result = suite.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_with_cleanup*",
        "No recorded response for POST /v1/chat/completions  model='gpt-4o-mini'  last message: 'cleanup summary'*",
        "*pytest test_x.py::test_with_cleanup --llm-record-mode=once",
    ])


SCRUBBER_NONE = '''
import os
import pytest

@pytest.fixture
def llm_scrubber():
    return None  # "the defaults": LLMCassette takes None as its default Scrubber

def test_fails_showing_the_key(llm_cassette):
    assert os.environ["OPENAI_API_KEY"] == "something else"
'''


def test_a_scrubber_override_returning_none_still_masks_the_failure_output(suite: InnerSuite) -> None:
    """An llm_scrubber override returning None gets the default scrubbing in the cassette (LLMCassette
    takes None as its default Scrubber) and must get it in pytest's failure output too. Before: the
    report hooks read the fixture's None, masked nothing, and the assertion showed the live key."""
    suite.write(SCRUBBER_NONE)
    suite.live()
    result = suite.run()
    result.assert_outcomes(failed=1)
    assert OPENAI_KEY not in result.stdout.str() and "<redacted>" in result.stdout.str()


MARKED_MODE = '''
import os
import openai
import pytest

@pytest.mark.llm(record_mode="once")
def test_marked(llm_cassette):
    openai.OpenAI(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": os.environ["QUESTION"]}])
'''


def test_a_missing_recording_under_a_marked_record_mode_says_the_marker_must_change(suite: InnerSuite) -> None:
    """A test whose marker sets record_mode="once" (the marker overrides --llm-record-mode) sends a
    changed request: the message's command (--llm-record-mode=rewrite) would run it in mode once
    again and fail the same way, so the message says to change the marker first. Before: it gave
    the command alone, which does not record anything for this test."""
    suite.write(MARKED_MODE)
    suite.live()
    suite.monkeypatch.setenv("QUESTION", "Capital of France?")
    suite.run().assert_outcomes(passed=1)
    suite.offline()
    suite.monkeypatch.setenv("QUESTION", "Capital of Spain?")
    result = suite.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "    pytest test_x.py::test_marked --llm-record-mode=rewrite",
        "(first change the llm marker's record_mode='once', which sets record mode 'once' for this test whatever the command line says)",
    ])


ASKING_TEST = '''
import openai

def test_asks(llm_cassette):
    openai.OpenAI(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of France?"}])
'''


def test_the_record_command_works_from_the_folder_pytest_was_started_in(suite: InnerSuite) -> None:
    """pytest started from a sub-folder of the rootdir (``cd tests && pytest``): the missing
    recording's command names the test as pytest's own summary does there, and running that exact
    command records it (then the test replays offline). Before: the command named the test relative
    to the rootdir (tests/test_c.py::...), which pytest started in tests/ does not find."""
    suite.pytester.makeini("[pytest]\n")
    folder = suite.pytester.mkdir("tests")
    (folder / "test_c.py").write_text(ASKING_TEST)
    suite.monkeypatch.chdir(folder)
    suite.offline()
    missing = suite.run()
    missing.assert_outcomes(failed=1)
    command = [line.strip() for line in missing.outlines if line.strip().startswith("pytest ")]
    assert command == ["pytest test_c.py::test_asks --llm-record-mode=once"], missing.stdout.str()

    suite.server.start()
    suite.live()
    suite.run(*shlex.split(command[0])[1:]).assert_outcomes(passed=1)
    suite.offline()
    suite.run().assert_outcomes(passed=1)


ASKING_DOCTEST = '''
import openai

def asks():
    """
    >>> cassette = getfixture("llm_cassette")
    >>> bool(openai.OpenAI(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of France?"}]).choices)
    True
    """
'''


@pytest.mark.parametrize(
    ("given", "folder"),
    [
        (["--llm-cassette-dir=llm_tapes"], "llm_tapes"),
        (["-o", "llm_cassette_dir=ini_tapes"], "ini_tapes"),
        (["-c", "other.ini"], "other_tapes"),
        (["--doctest-modules"], "cassettes"),
    ],
)
def test_the_record_command_repeats_the_options_that_say_where_cassettes_are(suite: InnerSuite, given: list[str], folder: str) -> None:
    """A run given where its cassettes are on the command line (a CI script's --llm-cassette-dir,
    an -o override of the ini key, an ini file of its own), or --doctest-modules for a doctest: the
    missing recording's command repeats it, so running that exact command records where the run
    looks. Before: the command left it out and recorded into the default folder, which the run with
    the option never reads (a doctest's node id was not found at all)."""
    (suite.pytester.path / "other.ini").write_text("[pytest]\nllm_cassette_dir = other_tapes\n")
    suite.write(ASKING_DOCTEST if "--doctest-modules" in given else ASKING_TEST)
    suite.offline()
    missing = suite.run(*given)
    missing.assert_outcomes(failed=1)
    command = [line.strip() for line in missing.outlines if line.strip().startswith("pytest ")]
    assert len(command) == 1 and command[0].startswith("pytest test_x.py::"), missing.stdout.str()

    suite.server.start()
    suite.live()
    suite.run(*shlex.split(command[0])[1:]).assert_outcomes(passed=1)
    suite.offline()
    suite.run(*given).assert_outcomes(passed=1)
    recorded = list((suite.pytester.path / folder).rglob("*.yaml"))
    assert [path.name for path in recorded] == ["test_x.asks.yaml" if "--doctest-modules" in given else "test_asks.yaml"]
    assert folder == "cassettes" or not suite.cassettes.exists()


MARKED_NONE_CONNECTS = '''
import os
import urllib.request
import pytest

@pytest.mark.llm(record_mode="none")
def test_connects(llm_cassette):
    urllib.request.urlopen(os.environ["SERVER"] + "/models", timeout=5)
'''


def test_a_blocked_connection_under_a_marked_record_mode_says_the_marker_must_change(suite: InnerSuite) -> None:
    """The guard's hint for a blocked connection gives the record command too: under a marker's
    record_mode it says to change the marker first, as the missing-recording message does.
    Before: the command alone, which runs the test in the marker's mode none again."""
    suite.monkeypatch.setenv("SERVER", suite.server.base_url)
    suite.write(MARKED_NONE_CONNECTS)
    suite.offline()
    result = suite.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Record with: pytest test_x.py::test_connects --llm-record-mode=once (first change the llm marker's record_mode='none'*"])


MODIFYITEMS_CONFTEST = '''

def pytest_collection_modifyitems(items):
    for item in items:
        if item.name == "test_marked_by_hook":
            item.add_marker(pytest.mark.llm(cassette="by_hook.yaml", record_mode="new_episodes"))
'''

MODIFYITEMS_TESTS = '''
def test_marked_by_hook(llm_cassette, out):
    out([llm_cassette.path.name, llm_cassette.mode])

def test_sibling(llm_cassette, out):
    out([llm_cassette.path.name, llm_cassette.mode])
'''


def test_a_marker_added_by_a_collection_hook_reaches_its_test_only(suite: InnerSuite) -> None:
    """Pins the collection cache: a marker a project's pytest_collection_modifyitems adds is part of
    what collection keeps for the test (its cassette path and mode), and not of its sibling's."""
    conftest = suite.pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + MODIFYITEMS_CONFTEST)
    suite.write(MODIFYITEMS_TESTS)
    suite.run().assert_outcomes(passed=2)
    assert suite.read_outputs() == {"test_x.py::test_marked_by_hook": ["by_hook.yaml", "new_episodes"], "test_x.py::test_sibling": ["test_sibling.yaml", "none"]}
