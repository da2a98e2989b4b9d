"""Inputs an adversarial pass found that broke a promise: each test fails on the code before its fix.
Real inner pytest sessions, the real SDK and the loopback server; nothing of the plugin is mocked."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import builders
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import OPENAI_KEY
from fakeopenai import Reply
from pytest_llmcache._commands.common import EXIT_BAD_INPUT
from pytest_llmcache.cli import main
from pytest_llmcache.exchange import read_exchange, tally
from pytest_llmcache.paths import safe_name

PROXY_PASSWORD = "proxy-password-0123456789"

OUTCOMES = f'''
import os
import pytest

def test_skipped(llm_cassette):
    pytest.skip("proxy http://user:{PROXY_PASSWORD}@127.0.0.1:9/ refused key " + os.environ["OPENAI_API_KEY"])

def test_xfailed(llm_cassette):
    pytest.xfail("the server echoed " + os.environ["OPENAI_API_KEY"])

@pytest.mark.xfail(reason="flaky")
def test_xfail_marker(llm_cassette):
    raise ValueError("echoed " + os.environ["OPENAI_API_KEY"])
'''


@pytest.mark.parametrize("options", [("-rA",), ("-rA", "-l", "-vv", "--tb=long")], ids=["default", "showlocals"])
def test_skip_and_xfail_reasons_are_masked_and_the_summary_still_folds_skips(suite, monkeypatch, options):
    """A skip or xfail reason holding a key or a URL with a password: the report of a skip is a
    (path, line, reason) tuple pytest's summary folds; replacing it with text crashed the whole
    session with an INTERNALERROR, and the xfail reason was printed unmasked."""
    suite.write(OUTCOMES)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    result = suite.run(*options)
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    result.assert_outcomes(skipped=1, xfailed=2)
    assert "SKIPPED [1] test_x.py:5: proxy http://<redacted>@127.0.0.1:9/ refused key <redacted>" in output
    assert "XFAIL test_x.py::test_xfailed - the server echoed <redacted>" in output
    for secret in (OPENAI_KEY, PROXY_PASSWORD):
        assert secret not in output


# -- a response of an unexpected shape ------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
# A well-formed answer of each kind and the paths of its containers, to replace with anything.
ANSWERS = {
    "/v1/chat/completions": ({"model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "x", "tool_calls": [{"function": {"name": "f"}}]}}]},
                             [("choices",), ("choices", 0, "message", "tool_calls"), ("choices", 0, "message")]),
    "/v1/responses": ({"model": "m", "output": [{"type": "message", "content": [{"type": "output_text", "text": "x"}]}]},
                      [("output",), ("output", 0, "content")]),
    "/v1/messages": ({"model": "m", "content": [{"type": "text", "text": "x"}]}, [("content",)]),
    "/v1beta/models/g:generateContent": ({"candidates": [{"content": {"parts": [{"text": "x"}]}}]},
                                         [("candidates",), ("candidates", 0, "content", "parts"), ("candidates", 0, "content")]),
    "/v1/embeddings": ({"model": "m", "data": [{"embedding": [0.5]}]}, [("data",), ("data", 0)]),
}


def _replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    document = json.loads(json.dumps(document))
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return document


@settings(max_examples=300, deadline=None)
@given(route=st.sampled_from(sorted(ANSWERS)), data=st.data(), value=JSON, streamed=st.booleans())
def test_any_json_in_an_answer_is_read_without_an_exception(route, data, value, streamed):
    """The session report and every llmcache command read answers through `read_exchange`: a
    number where a list of choices (tool calls, output items, candidates, parts, data) belongs
    raised a TypeError there (`"choices": 1`)."""
    template, paths = ANSWERS[route]
    document = _replaced(template, data.draw(st.sampled_from(paths)), value)
    body = builders.sse([document]) if streamed else document
    exchange = read_exchange(builders.interaction({"model": "m"}, body, uri=f"https://api.openai.com{route}",
                                                  content_type="text/event-stream" if streamed else None))
    assert exchange.path == route
    tally([exchange])


ODD_ANSWER = {"id": "x", "object": "chat.completion", "model": "m", "choices": 1, "usage": {"prompt_tokens": 3, "completion_tokens": 1}}

ODD = '''
import openai

def test_odd(llm_cassette):
    sdk = openai.OpenAI(max_retries=0)
    raw = sdk.chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert raw.status_code == 200 and b'"choices":1' in raw.http_response.read()
'''


def test_an_answer_of_an_unexpected_shape_is_recorded_and_replayed(suite):
    """A server answering ``"choices": 1`` (a gateway, an OpenAI-compatible server): the report
    raised in teardown before the cassette was saved, so the recording was lost and the test
    errored with a bare TypeError. The report now reads it, and a failing report never costs a
    recording."""
    suite.write(ODD)
    suite.live()
    suite.server.script(Reply.json(200, ODD_ANSWER))
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    assert (suite.cassettes / "test_x" / "test_odd.yaml").is_file()
    suite.offline()
    result = suite.run()
    result.assert_outcomes(passed=1)
    assert "1 replayed, 0 recorded" in result.stdout.str()


# -- llmcache on a symlink loop -------------------------------------------------------------------


@pytest.mark.parametrize("command", ["list", "show", "verify", "stats", "tokens"])
def test_every_command_names_a_cassette_that_is_a_symlink_loop(tmp_path, monkeypatch, capsys, command):
    """``llmcache show`` on a symlink loop ended in a RuntimeError traceback (making the file's
    name relative to the working directory resolved the loop)."""
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").symlink_to("b.yaml")
    Path("b.yaml").symlink_to("a.yaml")
    assert main([command, "a.yaml"]) == EXIT_BAD_INPUT
    assert "a.yaml" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["option", "ini"])
def test_a_cassette_directory_that_is_a_symlink_loop_is_a_usage_error(pytester, where):
    """``--llm-cassette-dir`` / ``llm_cassette_dir`` naming a symlink loop crashed pytest with an
    INTERNALERROR traceback (RuntimeError from resolving the path)."""
    (pytester.path / "loop-a").symlink_to("loop-b")
    (pytester.path / "loop-b").symlink_to("loop-a")
    pytester.makepyfile(test_x="def test_x(llm_cassette):\n    pass\n")
    if where == "ini":
        pytester.makeini("[pytest]\nllm_cassette_dir = loop-a\n")
    result = pytester.runpytest("-p", "no:cacheprovider", *(["--llm-cassette-dir=loop-a"] if where == "option" else []))
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "INTERNALERROR" not in output and "loop-a" in output and "cassette directory" in output


# -- cassette names in other scripts ---------------------------------------------------------------

JAPANESE = "日本語のプロンプトを翻訳してください" * 5  # 90 characters, 270 bytes in UTF-8

UNICODE_NAME = f'''
import openai

def test_{JAPANESE}(llm_cassette):
    openai.OpenAI(max_retries=0).chat.completions.create(model="m", messages=[{{"role": "user", "content": "hi"}}])
'''


def test_a_test_named_in_another_script_records_and_replays(suite):
    """A test function (or parameter id) of 90 Japanese characters: the cassette name was bounded
    in characters, not bytes, so its 270-byte name could not be written (OSError: File name too
    long in teardown) and the recording was lost."""
    suite.write(UNICODE_NAME)
    suite.live()
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    [written] = (suite.cassettes / "test_x").glob("*.yaml")
    assert written.name.startswith("test_日本語") and len(os.fsencode(written.name)) <= 255
    suite.offline()
    result = suite.run()
    result.assert_outcomes(passed=1)
    assert "1 replayed, 0 recorded" in result.stdout.str()


@example("test_" + JAPANESE)
@given(st.text(st.sampled_from("aZ9_é日🙂.-/[] ") | st.characters(), min_size=1, max_size=300))
def test_a_cassette_name_fits_any_file_system_whatever_its_script(text):
    name = safe_name(text)
    assert 0 < len(os.fsencode(name + ".yaml.bak")) <= 255 - 20  # room for the temporary files' suffixes
    assert name == safe_name(text) and "/" not in name and not name.startswith(".")


# -- an Azure resource host written in capitals ----------------------------------------------------

MIXED_CASE_ENDPOINT = "https://Contoso-Prod.openai.azure.com/"

MIXED_CASE = '''
import logging
import os

def test_endpoint(llm_cassette):
    endpoint = os.environ["AZURE_OPENAI_ENDPOINT"]
    logging.getLogger("app").warning("calling %s", endpoint)
    assert endpoint.endswith("/v1")
'''


@pytest.mark.parametrize("options", [(), ("-l", "-vv", "--tb=long")], ids=["default", "showlocals"])
def test_an_azure_host_written_in_capitals_is_masked_in_any_case(suite, monkeypatch, options):
    """Host names are case-insensitive and the scrubber learns them lower-cased, but masked them
    case-sensitively: an endpoint written as the portal's resource name (``Contoso-Prod``) was
    printed as is in a failure's locals, its assertion and its captured log records."""
    suite.write(MIXED_CASE)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", MIXED_CASE_ENDPOINT)
    result = suite.run(*options)
    result.assert_outcomes(failed=1)
    output = result.stdout.str() + result.stderr.str()
    assert "placeholder" in output or "<redacted>" in output
    assert "contoso-prod" not in output.lower()


# -- warnings -------------------------------------------------------------------------------------

WARNING = '''
import os
import warnings

def test_warns(llm_cassette):
    warnings.warn("the server answered for " + os.environ["OPENAI_API_KEY"])
'''


@pytest.mark.parametrize("options", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_a_warning_holding_a_key_is_masked_in_the_warnings_summary(suite, monkeypatch, options):
    """A warning raised by a test (or a library under it) that quotes a live key: the failure
    report was masked, but pytest's warnings summary printed the key."""
    suite.write(WARNING)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    result = suite.run(*options)
    result.assert_outcomes(passed=1, warnings=1)
    output = result.stdout.str() + result.stderr.str()
    assert "UserWarning: the server answered for <redacted>" in output
    assert OPENAI_KEY not in output
