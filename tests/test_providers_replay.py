"""Anthropic's and Google's SDKs record through the plugin and replay offline without any key: the
placeholders of the provider table let their clients build, their key headers never reach the
cassette, and each exchange is stored under its provider's placeholder host."""
from __future__ import annotations

import pytest

from conftest import OPENAI_KEY
from fakeopenai import Reply
from pytest_llmcache import cassette as cassette_file

ANTHROPIC_KEY = "sk-ant-api03-live-anthropic-key-0123456789"
GEMINI_KEY = "AIzaSy-live-gemini-key-0123456789abcdef"

ANTHROPIC_TEST = '''
import os
import anthropic

def test_anthropic(llm_cassette, out):
    client = anthropic.Anthropic(base_url=os.environ["FAKE_URL"], max_retries=0)
    message = client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    out([message.content[0].text, message.usage.input_tokens, message.usage.output_tokens])
'''

GEMINI_TEST = '''
import os
from google import genai
from google.genai import types

def test_gemini(llm_cassette, out):
    client = genai.Client(http_options=types.HttpOptions(base_url=os.environ["FAKE_URL"]))
    response = client.models.generate_content(model="gemini-2.0-flash", contents="hi")
    out([response.text, response.usage_metadata.prompt_token_count, response.usage_metadata.candidates_token_count])
'''

ANTHROPIC_REPLY = {
    "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "stop_reason": "end_turn",
    "stop_sequence": None, "content": [{"type": "text", "text": "hello from claude"}], "usage": {"input_tokens": 9, "output_tokens": 4},
}
GEMINI_REPLY = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "hello from gemini"}]}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7},
    "modelVersion": "gemini-2.0-flash",
}


@pytest.mark.parametrize(
    ("module", "source", "reply", "env", "key", "host", "expected"),
    [
        ("anthropic", ANTHROPIC_TEST, ANTHROPIC_REPLY, "ANTHROPIC_API_KEY", ANTHROPIC_KEY, "api.anthropic.test", ["hello from claude", 9, 4]),
        ("google.genai", GEMINI_TEST, GEMINI_REPLY, "GEMINI_API_KEY", GEMINI_KEY, "generativelanguage.googleapis.test", ["hello from gemini", 3, 4]),
    ],
    ids=["anthropic", "gemini"],
)
def test_records_and_replays_without_any_key(suite, module, source, reply, env, key, host, expected):
    pytest.importorskip(module)
    suite.write(source)
    suite.live()
    suite.monkeypatch.setenv(env, key)
    suite.monkeypatch.setenv("FAKE_URL", suite.server.url)
    suite.server.script(Reply.json(200, reply))
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    recorded = suite.read_outputs()
    assert list(recorded.values()) == [expected]
    [path] = suite.cassettes.rglob("*.yaml")
    [interaction] = cassette_file.load(path)
    assert interaction["request"]["uri"].split("/")[2] == host
    assert key not in suite.files_text() and OPENAI_KEY not in suite.files_text()

    suite.offline()
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        suite.monkeypatch.delenv(name, raising=False)
    suite.run().assert_outcomes(passed=1)
    assert suite.read_outputs() == recorded
