"""Inputs an adversarial pass found that broke a promise: each test fails on the code before its fix.
Real inner pytest sessions, the real SDK and the loopback server; nothing of the plugin is mocked."""
from __future__ import annotations

import pytest

from conftest import OPENAI_KEY

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
