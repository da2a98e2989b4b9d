"""Adversarial tests of the session-long interception (`stacks`: patch points held by cassettes and
pytest sessions, one dispatcher per point) and of llm_cassette computing its settings directly:
inputs and lifecycles that the patch-per-cassette design handled and that this one must too."""
from __future__ import annotations

import os

from conftest import InnerSuite
from fakeopenai import Reply

LAZY_OPENAI = '''
import time
import pytest

@pytest.fixture
def slept(monkeypatch):
    """Every real time.sleep of the test."""
    seconds, sleep = [], time.sleep
    monkeypatch.setattr(time, "sleep", lambda wait: (seconds.append(wait), sleep(wait))[1])
    return seconds

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
