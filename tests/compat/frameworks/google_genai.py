"""google-genai as a user tests it: generate_content, its stream, automatic function calling, async."""
import asyncio

import pytest

genai = pytest.importorskip("google.genai")
from google.genai import types  # noqa: E402


def test_generate(llm_cassette, out):
    client = genai.Client()  # kept in a variable: a client that is garbage-collected closes its connections
    response = client.models.generate_content(model="gemini-2.5-flash", contents="What is the capital of France?")
    assert response.text == "echo: What is the capital of France?"
    out([response.text, response.usage_metadata.prompt_token_count, response.usage_metadata.candidates_token_count])


def test_stream(llm_cassette, out):
    client = genai.Client()
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="Name a colour."))
    assert "".join(chunk.text for chunk in chunks) == "echo: Name a colour."
    out(["".join(chunk.text for chunk in chunks), chunks[-1].usage_metadata.total_token_count])


def test_function_calling(llm_cassette, out):
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"rain in {city}"

    client = genai.Client()
    chat = client.chats.create(model="gemini-2.5-flash", config=types.GenerateContentConfig(tools=[weather]))
    response = chat.send_message("Bergen")
    assert response.text == 'echo: {"result": "rain in Bergen"}'
    out(response.text)


def test_async(llm_cassette, out):
    async def main():
        client = genai.Client()
        return await client.aio.models.generate_content(model="gemini-2.5-flash", contents="Async?")

    response = asyncio.run(main())
    assert response.text == "echo: Async?"
    out(response.text)
