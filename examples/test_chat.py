"""Plain chat completions, replayed from real recordings.

Each test points the plugin at a recording with ``@pytest.mark.llm(cassette=...)`` (a path under
``cassettes/``); a test of your own would record into ``cassettes/<module>/<test name>.yaml``
without it. Requests match on method, path, api-version and JSON body: the test must send exactly
what was recorded, and gets the recorded answer back, with no key and no network.
"""
from __future__ import annotations

import json

import openai
import pytest


@pytest.mark.llm(cassette="examples/realworld/pydanticai-valid_response.yaml")
def test_openai_sdk_chat(llm_cassette):
    """The openai SDK, unchanged: no key is needed, the plugin supplies a placeholder in replay."""
    client = openai.OpenAI()

    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        stream=False,
    )

    assert completion.choices[0].message.content == "The capital of France is Paris."
    assert completion.model == "gpt-4o-2024-08-06"  # the snapshot that answered, as recorded
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (14, 7)
    assert llm_cassette.played == [0]  # indexes of the recorded interactions this test used


@pytest.mark.llm(cassette="examples/realworld/langsmith-wrap_openai_chat_tokens.yaml")
def test_tinytroupe_chat(plain_client):
    """tinytroupe's `send_message` returns the first choice's message as a plain dict."""
    reply = plain_client.send_message([{"role": "user", "content": "howdy"}], model="gpt-4o-mini")

    assert reply["role"] == "assistant"
    assert reply["content"] == "Howdy! How can I assist you today?"


@pytest.mark.llm(cassette="examples/realworld/langsmith-wrap_openai_chat_tokens.yaml")
def test_tinytroupe_reasoning_and_extra_parameters(plain_client, llm_cassette):
    """Reasoning models get no sampling parameters; anything else you pass is sent as is."""
    prompt = (
        "Write a bash script that takes a matrix represented as a string with format "
        "'[1,2],[3,4],[5,6]' and prints the transpose in the same format."
    )

    script = plain_client.send_message([{"role": "user", "content": prompt}], model="o4-mini")
    flex = plain_client.send_message([{"role": "user", "content": "howdy"}], model="gpt-5-nano", service_tier="flex")

    assert script["content"].startswith("Here’s a self‐contained Bash script (`transpose.sh`)")
    assert "[1,3,5],[2,4,6]" in script["content"]
    assert flex["content"].startswith("Howdy! How’s it going?")
    assert llm_cassette.played == [3, 4]


@pytest.mark.llm(cassette="examples/realworld/pydanticai-max_completion_tokens-o3-mini.yaml")
def test_tinytroupe_sends_max_tokens_as_max_completion_tokens(plain_client):
    """For o-series and gpt-5 models `max_tokens` goes out as ``max_completion_tokens``."""
    reply = plain_client.send_message([{"role": "user", "content": "hello"}], model="o3-mini", max_tokens=100, stream=False)

    assert reply["content"] == "Hello there! How can I help you today?"


@pytest.mark.llm(cassette="examples/realworld/langsmith-chat_sync_api.yaml")
def test_identical_requests_replay_in_recorded_order(llm_cassette):
    """The same request recorded twice answers twice, in order; here, then as streams."""
    client = openai.OpenAI()
    request = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "Say 'foo'"}], "seed": 42, "temperature": 0}

    answers = [client.chat.completions.create(**request, stream=False) for _ in range(2)]
    streams = [client.chat.completions.create(**request, stream=True) for _ in range(2)]

    assert [answer.choices[0].message.content for answer in answers] == ["foo", "foo"]
    assert answers[0].id != answers[1].id  # two real responses, not one replayed twice
    for stream in streams:
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == "foo"
    assert llm_cassette.played == [0, 1, 2, 3]


@pytest.mark.llm(cassette="examples/realworld/langsmith-chat_sync_api.yaml")
def test_tinytroupe_with_explicit_sampling(plain_client):
    """temperature=0 is sent (only None is left out); `seed` and `stream` pass through."""
    reply = plain_client.send_message([{"role": "user", "content": "Say 'foo'"}], model="gpt-3.5-turbo", temperature=0, seed=42, stream=False)

    assert reply["content"] == "foo"


@pytest.mark.llm(cassette="examples/realworld/mirascope-structured_output_strict.yaml")
def test_structured_output(llm_cassette):
    """A strict JSON-schema response format: the answer is JSON that fits the schema."""
    author = {
        "description": "The author of a book.",
        "properties": {
            "first_name": {"title": "First Name", "type": "string"},
            "last_name": {"title": "Last Name", "type": "string"},
        },
        "required": ["first_name", "last_name"],
        "title": "Author",
        "type": "object",
        "additionalProperties": False,
    }
    book = {
        "$defs": {"Author": author},
        "description": "A book with a rating. The title should be in all caps!",
        "properties": {
            "title": {"title": "Title", "type": "string"},
            "author": {"$ref": "#/$defs/Author"},
            "rating": {"description": "For testing purposes, the rating should be 7", "title": "Rating", "type": "integer"},
        },
        "required": ["title", "author", "rating"],
        "title": "Book",
        "type": "object",
        "additionalProperties": False,
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "Book", "schema": book, "strict": True, "description": book["description"]},
    }

    completion = openai.OpenAI().chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Please recommend the most popular book by Patrick Rothfuss"}],
        response_format=response_format,
    )

    assert json.loads(completion.choices[0].message.content) == {
        "title": "THE NAME OF THE WIND",
        "author": {"first_name": "Patrick", "last_name": "Rothfuss"},
        "rating": 7,
    }
