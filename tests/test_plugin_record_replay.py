"""Inner pytest sessions record from the fake server, then replay offline with identical results."""
from __future__ import annotations


from conftest import AZURE_KEY, OPENAI_KEY
from fakeopenai import Reply

EXCHANGES = '''
import asyncio, base64
import openai, pytest
from tinytroupe import openai_utils

CHAT = [{"role": "user", "content": "What is the capital of France?"}]

def raw(response):
    return {"status": response.status_code, "body": base64.b64encode(response.read()).decode(),
            "type": response.headers.get("content-type")}

def test_summary(llm_client, out):
    message = llm_client.send_message(CHAT)
    assert message["content"] == "echo: What is the capital of France?"
    out(message)

def test_embedding(llm_client, out):
    out(llm_client.get_embedding("hello"))

@pytest.mark.llm(api_types=["openai", "azure"])
def test_both(llm_client, llm_api_type, out):
    assert llm_client.api_type == llm_api_type
    out(llm_client.send_message(CHAT, model="gpt-4o-mini"))

def test_stream(llm_cassette, out):
    client = openai.OpenAI()
    with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=CHAT, stream=True) as response:
        chunks = list(response.iter_bytes())
    out(base64.b64encode(b"".join(chunks)).decode())
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == "echo: What is the capital of France?"

def test_async_and_azure_raw(llm_cassette, out):
    async def main():
        async with openai.AsyncOpenAI() as client:
            plain = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=CHAT)
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True)
            text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        async with openai.AsyncAzureOpenAI(api_version="2024-10-21") as azure:
            embedded = await azure.embeddings.with_raw_response.create(model="emb", input=["a", "b"])
        return [raw(plain.http_response), text, raw(embedded.http_response)]
    out(asyncio.run(main()))
    assert [interaction["request"]["uri"].split("/")[2] for interaction in llm_cassette.loaded + llm_cassette.recorded] == [
        "api.openai.test", "api.openai.test", "placeholder.openai.azure.com"]
'''


def test_record_then_replay_offline_gives_identical_results(suite):
    suite.write(EXCHANGES)
    suite.live()
    recorded = suite.run("--llm-record-mode=once")
    recorded.assert_outcomes(passed=6)
    record_outputs, hits = suite.read_outputs(), suite.server.hits
    assert hits == 9 and len(record_outputs) == 6

    suite.offline()
    replayed = suite.run()
    replayed.assert_outcomes(passed=6)
    assert suite.read_outputs() == record_outputs
    assert suite.server.hits == hits  # nothing reached the (stopped) server
    assert "llmcache: 9 replayed, 0 recorded, 0 missing in 6 cassette(s), record mode 'none'" in replayed.stdout.str()

    names = sorted(path.relative_to(suite.cassettes).as_posix() for path in suite.cassettes.rglob("*.yaml"))
    assert names == [
        "test_x/test_async_and_azure_raw.yaml", "test_x/test_both[azure].yaml", "test_x/test_both[openai].yaml",
        "test_x/test_embedding.yaml", "test_x/test_stream.yaml", "test_x/test_summary.yaml",
    ]
    text = suite.files_text()
    assert OPENAI_KEY not in text and AZURE_KEY not in text and "127.0.0.1" not in text
    stream = (suite.cassettes / "test_x/test_stream.yaml").read_text()
    assert "sse: |" in stream and "data: [DONE]" in stream
    assert '"test_x/test_summary.yaml": {' in (suite.pytester.path / ".pytest_cache/d/llmcache/played.json").read_text()
    assert not list(suite.cassettes.rglob(".*"))  # no lock, record or temporary file among the cassettes


def test_replay_ignores_the_configured_endpoint(suite):
    suite.write(EXCHANGES)
    suite.live()
    suite.run("--llm-record-mode=once", "-k", "both or summary").assert_outcomes(passed=3)
    suite.offline()
    # Another OpenAI-compatible base URL and another Azure resource (nothing listens there).
    suite.monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    suite.monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://other-resource.openai.azure.com")
    suite.monkeypatch.setenv("AZURE_OPENAI_KEY", "another-key-entirely")
    suite.run("-k", "both or summary").assert_outcomes(passed=3)


RETRIES = '''
import openai

CHAT = [{"role": "user", "content": "busy?"}]

def test_sdk_retry(llm_cassette, out, slept):
    response = openai.OpenAI(max_retries=2).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=CHAT)
    assert slept == ([] if llm_cassette.write_protected else llm_cassette.waits) and llm_cassette.waits
    statuses = [interaction["response"]["status"]["code"] for interaction in llm_cassette.loaded + llm_cassette.recorded]
    out([response.http_response.text, statuses, llm_cassette.waits])

def test_library_backoff(llm_client, llm_cassette, out, slept):
    message = llm_client.send_message(CHAT, waiting_time=0.05)
    assert slept == ([] if llm_cassette.write_protected else llm_cassette.waits) and llm_cassette.waits
    out([message, llm_cassette.waits])
'''


def test_429_then_200_replays_as_such_without_sleeping(suite):
    suite.write(RETRIES)
    suite.live()
    suite.server.script(Reply.error(429, retry_after=0.4), Reply(), Reply.error(429, retry_after=0.3))
    suite.run("--llm-record-mode=once").assert_outcomes(passed=2)
    recorded = suite.read_outputs()
    assert suite.server.hits == 4
    assert recorded["test_x.py::test_sdk_retry"][1:] == [[429, 200], [0.4]]
    assert recorded["test_x.py::test_library_backoff"][1] == [0.3]

    suite.offline()
    suite.run().assert_outcomes(passed=2)
    assert suite.read_outputs() == recorded


RESTORE = '''
import pytest
from tinytroupe import openai_utils

CHAT = [{"role": "user", "content": "hello"}]

@pytest.mark.llm(api_type="azure", cache=True)
def test_cached_azure_fails(llm_client, llm_cassette, tmp_path):
    assert openai_utils.client() is llm_client and llm_client.api_type == "azure"
    assert llm_client.cache_api_calls is True and llm_client.cache_file_name.startswith(str(tmp_path))
    first = llm_client.send_message(CHAT)
    assert llm_client.send_message(CHAT) == first  # the second one comes from the API cache
    assert len(llm_cassette.loaded + llm_cassette.recorded) == 1
    assert False, "failing on purpose"

def test_next_test_gets_the_defaults(llm_client):
    assert llm_client.api_type == "openai" and openai_utils.client() is llm_client
    assert llm_client.cache_api_calls is False
'''


def test_marker_settings_are_restored_after_each_test_pass_or_fail(suite):
    from tinytroupe import openai_utils

    before = (openai_utils.client(), {name: client.cache_settings() for name, client in openai_utils._clients.items()})
    suite.write(RESTORE)
    suite.live()
    result = suite.run("--llm-record-mode=once")
    result.assert_outcomes(passed=1, failed=1)
    assert "failing on purpose" in result.stdout.str()
    suite.offline()
    suite.run().assert_outcomes(passed=1, failed=1)
    assert before == (openai_utils.client(), {name: client.cache_settings() for name, client in openai_utils._clients.items()})


def test_xdist_records_and_replays_in_parallel(suite):
    suite.write(EXCHANGES)
    suite.live()
    suite.run("-n", "2", "--llm-record-mode=once", subprocess=True).assert_outcomes(passed=6)
    record_outputs = suite.read_outputs()
    suite.offline()
    replayed = suite.run("-n", "2", subprocess=True)
    replayed.assert_outcomes(passed=6)
    assert suite.read_outputs() == record_outputs
    assert "llmcache: 9 replayed, 0 recorded, 0 missing in 6 cassette(s)" in replayed.stdout.str()


def test_a_cassette_recorded_by_plain_vcrpy_replays(suite):
    import openai
    import vcr

    path = suite.cassettes / "test_x" / "test_old.yaml"
    with vcr.use_cassette(str(path)), openai.OpenAI(base_url=suite.server.base_url, api_key=OPENAI_KEY, max_retries=0) as client:
        expected = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "old"}]).to_json()
    suite.write('''
import openai

def test_old(llm_cassette, out):
    out(openai.OpenAI().chat.completions.create(model="m", messages=[{"role": "user", "content": "old"}]).to_json())
''')
    suite.offline()
    suite.run().assert_outcomes(passed=1)
    assert suite.read_outputs() == {"test_x.py::test_old": expected}
