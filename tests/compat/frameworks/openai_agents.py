"""openai-agents as a user tests it: a Runner with a function tool and structured output (Responses API)."""
import asyncio

import openai
import pytest
from pydantic import BaseModel

agents = pytest.importorskip("agents")


class Report(BaseModel):
    city: str
    summary: str


@agents.function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def forecaster() -> agents.Agent:
    # A client per test: the SDK's shared default one would carry connections from one event loop to the next.
    model = agents.OpenAIResponsesModel("gpt-4o-mini", openai.AsyncOpenAI())
    return agents.Agent(name="forecaster", instructions="Answer with a report.", tools=[get_weather], output_type=Report, model=model)


def test_runner_with_tool_and_structured_output(llm_cassette, out):
    result = agents.Runner.run_sync(forecaster(), "What is the weather in Paris?")
    assert isinstance(result.final_output, Report) and result.final_output.city == "sunny in What is the weather in Paris?"
    out([result.final_output.model_dump(), [item.type for item in result.new_items]])
    agents.flush_traces()  # the trace upload, now, inside this test (else a background thread sends it later)


def test_runner_streamed(llm_cassette, out):
    async def main():
        streamed = agents.Runner.run_streamed(forecaster(), "What is the weather in Rome?")
        deltas = [event.data.delta async for event in streamed.stream_events() if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"]
        return streamed.final_output.model_dump(), "".join(deltas)

    report, text = asyncio.run(main())
    assert report["city"] == "sunny in What is the weather in Rome?" and text
    out([report, text])
