"""Tool calls: the model asks for a function, the test answers, the model uses the answer.

A tool loop is several requests, each carrying the whole conversation so far; to replay, the
test must rebuild each follow-up exactly as recorded (same message fields, same call ids).
"""
from __future__ import annotations

import json

import openai
import pytest

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "The city and state, e.g. Boston, MA"}},
            "required": ["location"],
            "additionalProperties": False,
        },
    },
}
WEATHER = {"Seattle, WA": "50 degrees and raining", "San Francisco, CA": "70 degrees and sunny"}
QUESTION = [
    {"role": "system", "content": "You're a helpful assistant."},
    {"role": "user", "content": "What's the weather in Seattle and San Francisco today?"},
]
ANSWER = "Today, the weather in Seattle is 50 degrees and raining, while in San Francisco, it's 70 degrees and sunny."


def tool_results(calls: list[dict]) -> list[dict]:
    """The assistant's calls and our function's answers, as the follow-up request carries them."""
    return [{"role": "assistant", "tool_calls": calls}] + [
        {"role": "tool", "content": WEATHER[json.loads(call["function"]["arguments"])["location"]], "tool_call_id": call["id"]}
        for call in calls
    ]


@pytest.mark.llm(cassette="examples/realworld/otel-tool_calls_with_content.yaml")
def test_tool_loop_with_the_openai_sdk(llm_cassette):
    """Two parallel calls in the first answer; the second request sends both results back."""
    client = openai.OpenAI()

    first = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, tools=[WEATHER_TOOL], tool_choice="auto")
    message = first.choices[0].message
    calls = [{"id": c.id, "function": {"arguments": c.function.arguments, "name": c.function.name}, "type": "function"} for c in message.tool_calls]
    second = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION + tool_results(calls))

    assert first.choices[0].finish_reason == "tool_calls" and message.content is None
    assert [json.loads(call["function"]["arguments"]) for call in calls] == [{"location": "Seattle, WA"}, {"location": "San Francisco, CA"}]
    assert second.choices[0].message.content == ANSWER
    assert llm_cassette.played == [0, 1]


@pytest.mark.llm(cassette="examples/realworld/otel-tool_calls_with_content.yaml")
def test_tool_loop_with_tinytroupe(plain_client):
    """`send_message` passes ``tools`` and ``tool_choice`` through and returns the calls as dicts."""
    reply = plain_client.send_message(QUESTION, model="gpt-4o-mini", tools=[WEATHER_TOOL], tool_choice="auto")
    calls = [{"id": c["id"], "function": c["function"], "type": c["type"]} for c in reply["tool_calls"]]
    final = plain_client.send_message(QUESTION + tool_results(calls), model="gpt-4o-mini")

    assert [call["function"]["name"] for call in calls] == ["get_current_weather", "get_current_weather"]
    assert final["content"] == ANSWER


@pytest.mark.llm(cassette="examples/realworld/otel-multiple_tools_streaming_with_content.yaml")
def test_streamed_tool_calls(llm_cassette):
    """Tool calls arrive in pieces: the name first, the arguments spread over later chunks."""
    stream = openai.OpenAI().chat.completions.create(
        model="gpt-4o-mini",
        messages=QUESTION,
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        stream=True,
        stream_options={"include_usage": True},
    )

    calls: dict[int, dict[str, str]] = {}
    for chunk in stream:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = calls.setdefault(delta.index, {"name": "", "arguments": ""})
            call["name"] += delta.function.name or ""
            call["arguments"] += delta.function.arguments or ""

    assert list(calls.values()) == [
        {"name": "get_current_weather", "arguments": '{"location": "Seattle, WA"}'},
        {"name": "get_current_weather", "arguments": '{"location": "San Francisco, CA"}'},
    ]

