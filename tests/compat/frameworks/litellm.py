"""litellm as a user tests it: completion (plain and streamed) and acompletion (its aiohttp transport)."""
import asyncio

import pytest

litellm = pytest.importorskip("litellm")

CHAT = [{"role": "user", "content": "What is the capital of France?"}]


def test_completion(llm_cassette, out):
    response = litellm.completion(model="openai/gpt-4o-mini", messages=CHAT)
    assert response.choices[0].message.content == "echo: What is the capital of France?"
    out([response.choices[0].message.content, response.usage.prompt_tokens, response.usage.completion_tokens])


def test_completion_stream(llm_cassette, out):
    chunks = list(litellm.completion(model="openai/gpt-4o-mini", messages=CHAT, stream=True))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "echo: What is the capital of France?"
    out(text)


def test_acompletion(llm_cassette, out):
    response = asyncio.run(litellm.acompletion(model="openai/gpt-4o-mini", messages=CHAT))
    assert response.choices[0].message.content == "echo: What is the capital of France?"
    out([response.choices[0].message.content, response.usage.total_tokens])
