"""Streamed chat completions: the recorded server-sent events are replayed as they came."""
from __future__ import annotations

import openai
import pytest


@pytest.mark.llm(cassette="examples/realworld/otel-chat_completion_streaming.yaml")
def test_stream_with_usage(llm_cassette):
    """With ``include_usage`` the last chunk has no choices and carries the usage."""
    stream = openai.OpenAI().chat.completions.create(
        model="gpt-4",
        messages=[{"role": "user", "content": "Say this is a test"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == '"This is a test."'
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 5)


@pytest.mark.llm(cassette="examples/realworld/langsmith-wrap_openai_chat_tokens.yaml")
def test_stream_without_usage(llm_cassette):
    """The same prompt streamed with and without ``include_usage``: two recordings, two answers."""
    client = openai.OpenAI()
    messages = [{"role": "user", "content": "howdy"}]

    with_usage = list(client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}))
    without_usage = list(client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True))

    assert with_usage[-1].usage.total_tokens == 18
    assert all(chunk.usage is None for chunk in without_usage)
    assert "".join(c.choices[0].delta.content or "" for c in without_usage if c.choices) == "Howdy! How can I help you today?"
    assert llm_cassette.played == [0, 1]


@pytest.mark.llm(cassette="examples/realworld/crewai-azure_streaming_completion.yaml")
def test_azure_stream_starts_with_a_content_filter_chunk(llm_cassette):
    """Azure streams open with a chunk that has no choices, only ``prompt_filter_results``.

    crewAI's client sends no ``model``: the deployment in the URL chooses it. The SDK needs
    ``azure_deployment=`` for that URL and ``model=openai.omit`` to leave the field out.
    """
    client = openai.AzureOpenAI(api_version="2024-12-01-preview", azure_deployment="gpt-4o-mini")

    chunks = list(
        client.chat.completions.create(
            model=openai.omit,
            messages=[{"role": "user", "content": "Say hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert chunks[0].choices == [] and chunks[0].prompt_filter_results[0]["prompt_index"] == 0
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == "Hello! How can I assist you today?"
    assert chunks[-1].usage.total_tokens == 19
