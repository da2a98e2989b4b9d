"""pydantic-ai as a user tests it: an Agent on the OpenAI provider with a tool and structured output."""
import asyncio

import pytest
from pydantic import BaseModel

pydantic_ai = pytest.importorskip("pydantic_ai")
from pydantic_ai.models.openai import OpenAIChatModel  # noqa: E402
from pydantic_ai.providers.openai import OpenAIProvider  # noqa: E402


class City(BaseModel):
    name: str
    population: int


def test_agent_with_tool_and_structured_output(llm_cassette, out):
    agent = pydantic_ai.Agent(OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider()), output_type=City, instructions="Be precise.")

    @agent.tool_plain
    def population(city: str) -> int:
        """The population of a city."""
        return 2_100_000

    result = agent.run_sync("The largest city of France?")
    assert isinstance(result.output, City)
    out([result.output.model_dump(), result.usage.input_tokens, result.usage.output_tokens, result.usage.requests])


def test_agent_text_stream(llm_cassette, out):
    agent = pydantic_ai.Agent(OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider()))

    async def main():
        async with agent.run_stream("Name a colour.") as run:
            return [text async for text in run.stream_text(delta=True)]

    pieces = asyncio.run(main())
    assert "".join(pieces) == "echo: Name a colour."
    out(pieces)
