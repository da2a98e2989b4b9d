"""The client library against a real HTTP server on 127.0.0.1, through the real openai SDK."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from fakeopenai import Reply
from tinytroupe import openai_utils
from tinytroupe.errors import CacheError, ConfigError

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def waits():
    """The backoff waits the client asked for; nothing really sleeps."""
    return []


@pytest.fixture
def live_env(server, waits, monkeypatch):
    """Both API types pointed at the fake server, with the backoff's sleep recorded instead of slept."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
    monkeypatch.setenv("AZURE_OPENAI_KEY", "azure-test-key")
    with openai_utils.overrides(sleep=waits.append):
        yield server


def chat_requests(server):
    return [request for request in server.requests if request.path.endswith("chat/completions")]


def test_send_message_returns_first_choice_as_plain_dict(live_env):
    message = openai_utils.client().send_message(CHAT, n=2)
    assert type(message) is dict
    assert message["role"] == "assistant"
    assert message["content"] == "echo: What is the capital of France?"
    body = live_env.requests[0].json()
    assert body["n"] == 2 and body["model"] == openai_utils.default["model"]
    assert live_env.requests[0].headers["authorization"] == "Bearer sk-test-openai"


def test_parameters_left_none_are_not_sent_and_types_are_right(live_env):
    openai_utils.client().send_message(CHAT, top_p=1, max_attempts=1)
    body = live_env.requests[0].json()
    assert not {"stop", "response_format", "timeout", "n"} & body.keys()
    assert isinstance(body["top_p"], float)
    assert isinstance(body["max_tokens"], int)


def test_defaults_resolve_at_call_time(live_env):
    openai_client = openai_utils.client()
    openai_client.send_message(CHAT)
    openai_utils.force_default_value("model", "gpt-4.1-nano")
    openai_utils.force_default_value("temperature", 0.9)
    openai_client.send_message(CHAT)
    first, second = (request.json() for request in chat_requests(live_env))
    assert first["model"] != "gpt-4.1-nano"
    assert second["model"] == "gpt-4.1-nano" and second["temperature"] == 0.9


def test_a_default_set_to_none_is_not_sent(live_env):
    for name in ("temperature", "top_p", "max_tokens", "frequency_penalty", "presence_penalty"):
        openai_utils.force_default_value(name, None)
    openai_utils.client().send_message(CHAT, model="gpt-4o")
    assert live_env.requests[0].json() == {"model": "gpt-4o", "messages": CHAT}


def test_force_default_value_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown default 'modle'"):
        openai_utils.force_default_value("modle", "x")


def test_reasoning_models_get_max_completion_tokens_and_no_sampling(live_env):
    openai_utils.client().send_message(CHAT, model="o3-mini", temperature=0.5)
    body = live_env.requests[0].json()
    assert body["max_completion_tokens"] == openai_utils.default["max_tokens"]
    assert not {"max_tokens", "temperature", "top_p"} & body.keys()


def test_messages_are_dedented_without_touching_the_callers_list(live_env):
    messages = [{"role": "user", "content": "\n    indented\n    text\n"}]
    openai_utils.client().send_message(messages)
    assert live_env.requests[0].json()["messages"][0]["content"] == "indented\ntext"
    assert messages[0]["content"] == "\n    indented\n    text\n"


def test_one_sdk_client_per_client_object(live_env):
    openai_client = openai_utils.client()
    assert openai_client.get_embedding("before any chat") is not None  # upstream crashed here
    sdk = openai_client.sdk
    openai_client.send_message(CHAT)
    openai_client.send_message(CHAT)
    assert openai_client.sdk is sdk
    assert sdk.max_retries == 0


def test_embeddings(live_env):
    vector = openai_utils.client().get_embedding("hello world", model="text-embedding-3-large")
    assert isinstance(vector, list) and len(vector) == 8 and all(isinstance(x, float) for x in vector)
    request = live_env.requests[0]
    assert request.path == "/v1/embeddings"
    assert request.json()["model"] == "text-embedding-3-large"


def test_azure_client_uses_deployment_path_key_and_api_version(live_env):
    openai_utils.force_api_type("azure")
    azure = openai_utils.client()
    assert isinstance(azure, openai_utils.AzureClient)
    message = azure.send_message(CHAT, model="my-gpt4o-deployment")
    assert message["content"].startswith("echo: ")
    request = live_env.requests[0]
    assert request.path == "/openai/deployments/my-gpt4o-deployment/chat/completions"
    assert request.query["api-version"] == openai_utils.default["azure_api_version"]
    assert request.headers["api-key"] == "azure-test-key"
    assert azure.get_embedding("x", model="emb-deployment") is not None
    assert live_env.requests[1].path == "/openai/deployments/emb-deployment/embeddings"


def test_azure_client_without_credentials_says_what_to_set(monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_KEY", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    with openai_utils.overrides(api_type="azure"), pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_KEY or AZURE_OPENAI_API_KEY"):
        openai_utils.client().send_message(CHAT)


@pytest.mark.parametrize(
    ("variables", "sent"),
    [
        ({"AZURE_OPENAI_API_KEY": "sdk-name-key"}, "sdk-name-key"),  # the openai SDK's name alone
        ({"AZURE_OPENAI_KEY": "tinytroupe-name-key", "AZURE_OPENAI_API_KEY": "sdk-name-key"}, "tinytroupe-name-key"),
        ({"AZURE_OPENAI_KEY": "", "AZURE_OPENAI_API_KEY": "sdk-name-key"}, "sdk-name-key"),  # empty is unset
    ],
)
def test_the_azure_key_is_read_under_either_name_tinytroupes_first(server, monkeypatch, variables, sent):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
    for name in ("AZURE_OPENAI_KEY", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with openai_utils.overrides(api_type="azure"):
        assert openai_utils.client().send_message(CHAT)["content"].startswith("echo: ")
    assert server.requests[0].headers["api-key"] == sent


def test_429_with_retry_after_then_200_waits_what_the_server_asked(live_env, waits):
    live_env.script(Reply.error(429, retry_after=7))
    message = openai_utils.client().send_message(CHAT, waiting_time=0.5, exponential_backoff_factor=2, max_attempts=3)
    assert message["content"].startswith("echo: ")
    assert waits == [7.0]
    assert len(chat_requests(live_env)) == 2


def test_500_then_200_waits_the_schedule(live_env, waits):
    live_env.script(Reply.error(500), Reply.error(503))
    message = openai_utils.client().send_message(CHAT, waiting_time=0.5, exponential_backoff_factor=3, max_attempts=5)
    assert message is not None
    assert waits == [0.5, 1.5]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_terminal_statuses_are_not_retried(live_env, waits, status, caplog):
    live_env.script(Reply.error(status, message="nope"))
    with caplog.at_level(logging.ERROR, logger="tinytroupe"):
        assert openai_utils.client().send_message(CHAT, max_attempts=5) is None
    assert len(chat_requests(live_env)) == 1 and waits == []
    assert "not retrying" in caplog.text


def test_timeout_is_retried(live_env, waits):
    live_env.script(Reply.delay(2.0))
    message = openai_utils.client().send_message(CHAT, timeout=0.3, waiting_time=0.1, max_attempts=2)
    assert message is not None and waits == [0.1]


def test_connection_errors_are_retried_then_give_up(live_env, waits, caplog):
    live_env.script(Reply.drop(), Reply.drop(), Reply.drop())
    with caplog.at_level(logging.ERROR, logger="tinytroupe"):
        assert openai_utils.client().send_message(CHAT, waiting_time=1, exponential_backoff_factor=2, max_attempts=3) is None
    assert waits == [1.0, 2.0]
    assert "Giving up after 3 attempts" in caplog.text


def test_keys_never_reach_the_log(live_env, caplog):
    live_env.script(Reply.error(401), Reply.error(500))
    with caplog.at_level(logging.DEBUG):
        openai_utils.client().send_message(CHAT, max_attempts=2)
        openai_utils.client().send_message(CHAT, max_attempts=2)
    assert "sk-test-openai" not in caplog.text


def test_api_cache_hit_needs_no_network(live_env, tmp_path):
    cache_file = tmp_path / "cache.sqlite3"
    openai_utils.force_api_cache(True, str(cache_file))
    first = openai_utils.client().send_message(CHAT)
    live_env.stop()
    second = openai_utils.client().send_message(CHAT)
    assert second == first
    assert len(chat_requests(live_env)) == 1


CACHE_SCRIPT = """
import json, sys
from tinytroupe import openai_utils
openai_utils.force_api_cache(True, sys.argv[1])
print(json.dumps(openai_utils.client().send_message([{"role": "user", "content": "cached?"}], max_attempts=1)))
"""


def test_api_cache_hits_across_processes_without_key_or_server(server, tmp_path):
    cache_file = str(tmp_path / "shared.sqlite3")
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": server.base_url}
    first = subprocess.run([sys.executable, "-c", CACHE_SCRIPT, cache_file], env=env, capture_output=True, text=True, check=True)
    server.stop()
    offline_env = {name: value for name, value in env.items() if name not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    second = subprocess.run([sys.executable, "-c", CACHE_SCRIPT, cache_file], env=offline_env, capture_output=True, text=True, check=True)
    assert json.loads(first.stdout)["content"] == "echo: cached?"
    assert second.stdout == first.stdout
    assert server.hits == 1


def test_corrupt_cache_file_is_reported_and_kept(live_env, tmp_path):
    cache_file = tmp_path / "cache.sqlite3"
    cache_file.write_bytes(b"this is not sqlite at all, but somebody's data" * 10)
    openai_utils.force_api_cache(True, str(cache_file))
    with pytest.raises(CacheError, match=str(cache_file)):
        openai_utils.client().send_message(CHAT)
    assert cache_file.read_bytes().startswith(b"this is not sqlite")


def test_pickled_cache_is_never_unpickled(live_env, tmp_path):
    import pickle

    cache_file = tmp_path / "openai_api_cache.pickle"
    cache_file.write_bytes(pickle.dumps({"k": "v"}))
    openai_utils.force_api_cache(True, str(cache_file))
    with pytest.raises(CacheError, match="never unpickled"):
        openai_utils.client().send_message(CHAT)


def test_overrides_restore_everything(live_env, tmp_path):
    before_type = openai_utils.client().api_type
    before_caches = {name: c.cache_settings() for name, c in openai_utils._clients.items()}
    with pytest.raises(RuntimeError), openai_utils.overrides(api_type="azure", api_cache=True, cache_file_name=str(tmp_path / "c.sqlite3")):
        openai_utils.force_default_value("model", "changed")
        assert openai_utils.client().api_type == "azure"
        assert openai_utils.client().cache_settings() == (True, str(tmp_path / "c.sqlite3"))
        raise RuntimeError("test failure inside")
    assert openai_utils.client().api_type == before_type
    assert {name: c.cache_settings() for name, c in openai_utils._clients.items()} == before_caches
    assert openai_utils.default["model"] != "changed"


def test_force_api_type_validates_and_none_returns_to_config(live_env):
    with pytest.raises(ConfigError, match="unknown API type 'azur'"):
        openai_utils.force_api_type("azur")
    openai_utils.force_api_type("azure")
    assert openai_utils.client().api_type == "azure"
    openai_utils.force_api_type(None)
    assert openai_utils.client().api_type == openai_utils.default["api_type"]


def test_register_client_adds_a_custom_api_type(live_env):
    class EchoClient(openai_utils.OpenAIClient):
        api_type = "custom"

    custom = EchoClient()
    openai_utils.register_client("custom", custom)
    try:
        openai_utils.force_api_type("custom")
        assert openai_utils.client() is custom
        assert custom.send_message(CHAT)["content"].startswith("echo:")
    finally:
        openai_utils._clients.pop("custom")


def test_llm_call_renders_packaged_templates(live_env):
    call = openai_utils.LLMCall("summary.system.mustache", "summary.user.mustache", temperature=0.0)
    content = call.call(max_words=12, audience="engineers", text="Paris is the capital of France.")
    body = live_env.requests[0].json()
    assert "at most 12 words" in body["messages"][0]["content"]
    assert "Write for engineers." in body["messages"][0]["content"]
    assert body["messages"][1]["content"].endswith("Paris is the capital of France.")
    assert body["temperature"] == 0.0
    assert content == "echo: " + body["messages"][1]["content"]


def test_llm_call_returns_none_and_logs_when_model_returns_nothing(live_env, caplog):
    call = openai_utils.LLMCall("summary.system.mustache", "summary.user.mustache")
    with caplog.at_level(logging.ERROR, logger="tinytroupe"):
        assert call.call(max_words=3, text="[[empty]]") is None
    assert "returned no content" in caplog.text


def test_llm_call_missing_template_names_the_path():
    with pytest.raises(FileNotFoundError, match=r"nope\.mustache"):
        openai_utils.LLMCall("nope.mustache").call()


def test_count_tokens_is_an_int_for_every_model_family():
    client = openai_utils.client()
    for model in ("gpt-3.5-turbo", "gpt-4", "gpt-4o", "gpt-4.1-mini", "gpt-5", "o3-mini", "o1"):
        assert isinstance(client._count_tokens(CHAT, model), int)
