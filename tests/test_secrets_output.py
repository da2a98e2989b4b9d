"""No live credential reaches pytest's own output: every failing path of `llm_cassette` (a corrupt
cassette in setup; a refused write and an OSError on save in teardown; a missing recording and a
failed assertion in the call), with default options and with ``-l -vv --tb=long``, real inner
sessions against the loopback server."""
from __future__ import annotations

import base64

import pytest

from conftest import AZURE_KEY, OPENAI_KEY
from fakeopenai import Reply
from pytest_llmcache.recorder import LLMCassette
from pytest_llmcache.scrubbing import Scrubber

QUERY_KEY = "live-query-key-0123456789abcdef"

FAILING = f'''
import openai
import pytest

def ask(**options):
    return openai.OpenAI(max_retries=0, **options).chat.completions.create(model="m", messages=[{{"role": "user", "content": "hi"}}])

def test_corrupt(llm_cassette):
    pass

def test_refused(llm_cassette):
    ask()

def test_oserror(llm_cassette, llm_cassette_path):
    ask()
    llm_cassette_path.mkdir(parents=True)  # a directory where the file goes: saving it fails

@pytest.mark.llm(record_mode="none")
def test_missing(llm_cassette):
    ask(default_query={{"key": "{QUERY_KEY}"}})

def test_assertion(llm_cassette, llm_scrubber):
    ask(default_query={{"key": "{QUERY_KEY}"}})
    assert not llm_scrubber.secrets
'''


@pytest.mark.parametrize("options", [(), ("-l", "-vv", "--tb=long")], ids=["default", "showlocals"])
def test_no_failing_path_prints_a_live_credential(suite, options):
    suite.write(FAILING)
    (suite.cassettes / "test_x").mkdir(parents=True)
    (suite.cassettes / "test_x" / "test_corrupt.yaml").write_text("interactions: [{request: 3}]\n")
    suite.live()
    # The server echoes the key base64-encoded (as in a Basic auth header): the write is refused.
    echo = base64.b64encode(f"user:{OPENAI_KEY}".encode()).decode()
    suite.server.script(Reply.json(200, {"id": "x", "object": "chat.completion", "choices": [], "note": echo}))
    result = suite.run("--llm-record-mode=once", *options)
    result.assert_outcomes(passed=2, failed=2, errors=3)  # test_refused and test_oserror pass, then error in teardown
    output = result.stdout.str() + result.stderr.str()
    assert "ERROR at setup of test_corrupt" in output and "CassetteError" in output
    assert "ERROR at teardown of test_refused" in output and "refusing to write cassette" in output
    assert "ERROR at teardown of test_oserror" in output
    assert "No recorded response" in output and "assert not" in output
    for secret in (OPENAI_KEY, AZURE_KEY, QUERY_KEY):
        assert secret not in output


def test_reprs_show_no_credential(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://contoso-prod.openai.azure.com/")
    scrubber = Scrubber(extra_headers=["x-gateway-pass"])
    scrubber.learn_request(f"https://gw.example.org/v1/chat/completions?key={QUERY_KEY}", {"X-Gateway-Pass": AZURE_KEY})
    cassette = LLMCassette(tmp_path / "c.yaml", record_mode="once", scrubber=scrubber)
    texts = [repr(scrubber), str(scrubber), repr(cassette), str(cassette), repr(vars(cassette).get("scrubber"))]
    for text in texts:
        for secret in (OPENAI_KEY, AZURE_KEY, QUERY_KEY, "contoso-prod"):
            assert secret not in text
    assert "3 credential(s), 1 secret host(s)" in repr(scrubber) and "$OPENAI_API_KEY" in repr(scrubber)
