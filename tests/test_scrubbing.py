"""Secrets never reach a cassette: scrubbing rules, and the final check of the bytes written."""
from __future__ import annotations

import json

import brotli
import pytest

import builders
from conftest import AZURE_KEY, OPENAI_KEY
from fakeopenai import Reply
from pytest_llmcache import cassette
from pytest_llmcache.errors import SecretLeakError
from pytest_llmcache.scrubbing import REDACTED, Scrubber


def test_request_drops_credentials_and_volatile_headers_and_hides_the_host():
    scrubber = Scrubber()
    stored = scrubber.request(
        "post",
        "https://my-resource.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21&api-key=k3y-in-the-query",
        {
            "Authorization": "Bearer sk-abcdefghijkl",
            "api-key": "azure-abcdefghijkl",
            "OpenAI-Organization": "org-123",
            "openai-project": "proj-123",
            "Cookie": "session=1",
            "x-stainless-retry-count": "1",
            "user-agent": "OpenAI/Python 3.52.0",
            "content-type": "application/json",
        },
        b'{"model":"d"}',
    )
    assert stored["uri"] == (
        "https://placeholder.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21&api-key=<redacted>"
    )
    assert stored["headers"] == {"openai-organization": [REDACTED], "openai-project": [REDACTED], "content-type": ["application/json"]}
    assert stored["method"] == "POST" and stored["body"] == {"json": {"model": "d"}, "layout": "compact"}
    assert set(scrubber.secrets) >= {"sk-abcdefghijkl", "azure-abcdefghijkl", "k3y-in-the-query"}


def test_response_drops_cookies_and_masks_organisation():
    stored = Scrubber().response(
        {"code": 200, "message": "OK"},
        {"set-cookie": ["a=b"], "openai-organization": ["user-xyz"], "content-type": ["application/json"]},
        b"{}",
    )
    assert stored["headers"] == {"openai-organization": [REDACTED], "content-type": ["application/json"]}


def test_check_refuses_text_holding_a_live_credential_and_names_where(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    scrubber = Scrubber()
    interaction = builders.interaction(None, {"string": "key: sk-from-the-environment"}, uri="https://api.openai.test/v1/x")
    path = tmp_path / "c.yaml"
    with pytest.raises(SecretLeakError, match=r"refusing to write cassette .*c\.yaml.*\$OPENAI_API_KEY on line\(s\) \d+") as error:
        cassette.save(path, [interaction], check=lambda text: scrubber.check(text, path))
    assert "sk-from-the-environment" not in str(error.value)
    assert not path.exists() and list(tmp_path.iterdir()) == []


LEAKY = '''
import openai

def test_leaky(llm_cassette):
    openai.OpenAI().chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "hi"}])
'''


def test_a_response_echoing_the_key_is_written_masked_and_replays(suite):
    suite.write(LEAKY)
    suite.live()
    suite.server.script(Reply.json(200, {"id": "x", "choices": [], "note": f"your key is {OPENAI_KEY}"}))
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    assert "your key is <redacted>" in (suite.cassettes / "test_x" / "test_leaky.yaml").read_text()
    assert OPENAI_KEY not in suite.files_text() and AZURE_KEY not in suite.files_text()
    suite.offline()
    suite.run().assert_outcomes(passed=1)


def test_a_key_echoed_in_a_brotli_compressed_response_is_written_masked_and_replays(suite):
    suite.write(LEAKY)
    suite.live()
    echoed = json.dumps({"id": "x", "choices": [], "note": f"your key is {OPENAI_KEY}"}).encode()
    suite.server.script(Reply.raw(200, brotli.compress(echoed), {"content-encoding": "br", "content-type": "application/json"}))
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    written = (suite.cassettes / "test_x" / "test_leaky.yaml").read_text()
    assert "your key is <redacted>" in written and "content-encoding" not in written  # stored decoded
    assert OPENAI_KEY not in suite.files_text()
    suite.offline()
    suite.run().assert_outcomes(passed=1)
