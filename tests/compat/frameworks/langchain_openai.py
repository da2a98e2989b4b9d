"""langchain-openai as a user tests it: ChatOpenAI invoked, streamed, with a tool and structured output."""
import pytest
from pydantic import BaseModel

langchain_openai = pytest.importorskip("langchain_openai")
from langchain_core.tools import tool  # noqa: E402


class City(BaseModel):
    name: str
    population: int


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def test_invoke(llm_cassette, out):
    answer = langchain_openai.ChatOpenAI(model="gpt-4o-mini").invoke("What is the capital of France?")
    assert answer.content == "echo: What is the capital of France?"
    out([answer.content, answer.usage_metadata])


def test_stream(llm_cassette, out):
    chunks = list(langchain_openai.ChatOpenAI(model="gpt-4o-mini", stream_usage=True).stream("Name a colour."))
    assert "".join(chunk.content for chunk in chunks) == "echo: Name a colour."
    out(["".join(chunk.content for chunk in chunks), sum(chunks[1:], chunks[0]).usage_metadata])


def test_tool_call_and_structured_output(llm_cassette, out):
    chat = langchain_openai.ChatOpenAI(model="gpt-4o-mini")
    called = chat.bind_tools([weather]).invoke("Weather in Paris?")
    city = chat.with_structured_output(City).invoke("The largest city of France?")
    assert called.tool_calls[0]["name"] == "weather" and isinstance(city, City)
    out([called.tool_calls, city.model_dump()])
