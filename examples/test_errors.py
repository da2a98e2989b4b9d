"""Real error responses, replayed: the SDK raises its usual exceptions; tinytroupe returns None.

Errors are recorded like any answer, so the error handling of your code can be tested offline.
tinytroupe's backoff never retries 400/401/404: it logs the error and returns None at once.
"""
from __future__ import annotations

import logging

import openai
import pytest


@pytest.mark.llm(cassette="examples/realworld/mirascope-authentication_error.yaml")
def test_401_invalid_api_key(llm_cassette):
    client = openai.OpenAI()

    with pytest.raises(openai.AuthenticationError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "This should fail with AuthenticationError"}])

    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"
    assert raised.value.message.startswith("Error code: 401 - ")
    assert "Incorrect API key provided: invalid-*****2345." in raised.value.message


@pytest.mark.llm(cassette="examples/realworld/otel-chat_completion_404.yaml")
def test_404_unknown_model(llm_cassette):
    with pytest.raises(openai.NotFoundError) as raised:
        openai.OpenAI().chat.completions.create(model="this-model-does-not-exist", messages=[{"role": "user", "content": "Say this is a test"}])

    assert raised.value.code == "model_not_found"
    assert raised.value.body["message"] == "The model `this-model-does-not-exist` does not exist or you do not have access to it."


@pytest.mark.llm(cassette="examples/realworld/pydanticai-embed_error.yaml")
def test_404_unknown_embedding_model(llm_cassette):
    with pytest.raises(openai.NotFoundError) as raised:
        openai.OpenAI().embeddings.create(model="nonexistent", input=["Hello, world!"])

    assert raised.value.status_code == 404 and raised.value.code == "model_not_found"


@pytest.mark.llm(cassette="examples/realworld/crewai-stop_unsupported.yaml")
def test_400_unsupported_parameter(llm_cassette):
    """o1-mini refuses ``stop``; the error names the parameter. The retry without it succeeds."""
    client = openai.OpenAI()
    messages = [{"role": "user", "content": "What is the capital of France?"}]

    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="o1-mini", messages=messages, stop=["stop"])
    retry = client.chat.completions.create(model="o1-mini", messages=messages)

    assert (raised.value.code, raised.value.param) == ("unsupported_parameter", "stop")
    assert retry.choices[0].message.content == "The capital of France is **Paris**."
    assert retry.usage.completion_tokens_details.reasoning_tokens == 64


@pytest.mark.llm(cassette="examples/realworld/crewai-stop_unsupported.yaml")
def test_tinytroupe_returns_none_on_400(plain_client, caplog):
    """The same two requests through tinytroupe: None and a logged error, then the answer."""
    messages = [{"role": "user", "content": "What is the capital of France?"}]

    with caplog.at_level(logging.ERROR, logger="tinytroupe"):
        refused = plain_client.send_message(messages, model="o1-mini", stop=["stop"])
    answer = plain_client.send_message(messages, model="o1-mini")

    assert refused is None
    assert "BadRequestError" in caplog.text and "not retrying" in caplog.text
    assert answer["content"] == "The capital of France is **Paris**."


@pytest.mark.llm(cassette="examples/realworld/crewai-llm_call_with_error.yaml")
def test_tinytroupe_returns_none_on_404(plain_client, caplog):
    with caplog.at_level(logging.ERROR, logger="tinytroupe"):
        reply = plain_client.send_message([{"role": "user", "content": "This should fail"}], model="non-existent-model")

    assert reply is None
    assert "NotFoundError" in caplog.text and "`non-existent-model` does not exist" in caplog.text


@pytest.mark.llm(cassette="examples/realworld/pydanticai-embed_error.yaml")
def test_tinytroupe_embedding_404(llm_client):
    assert llm_client.get_embedding("Hello, world!", model="nonexistent") is None
