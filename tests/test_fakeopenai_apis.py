"""The loopback server's other APIs, driven through the real SDKs over real sockets: OpenAI's
Responses API and chat tools, Anthropic Messages, Gemini generateContent; JSON and SSE."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import openai
import pytest

from fakeopenai import FakeOpenAIServer, Reply
from fakeopenai.wire import example_of

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
FORECAST = {
    "type": "object",
    "$defs": {"Day": {"type": "object", "properties": {"sunny": {"type": "boolean"}, "kind": {"enum": ["rain", "sun"]}}}},
    "properties": {"summary": {"anyOf": [{"type": "null"}, {"type": "string"}]}, "days": {"type": "array", "items": {"$ref": "#/$defs/Day"}}},
}


@pytest.fixture
def client(server: FakeOpenAIServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def test_schema_examples_follow_refs_unions_enums_and_gemini_upper_case_types() -> None:
    assert example_of(FORECAST, "t") == {"summary": "t", "days": [{"sunny": True, "kind": "rain"}]}
    gemini = {"type": "OBJECT", "properties": {"n": {"type": "NUMBER"}, "tags": {"type": "ARRAY", "items": {"type": "STRING"}}}}
    assert example_of(gemini, "t") == {"n": 1.5, "tags": ["t"]}
    assert example_of({"type": ["null", "integer"]}, "t") == 1


# -- OpenAI Responses API ------------------------------------------------------------------------


def test_responses_text_and_usage(client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-4o-mini", instructions="be brief", input="hello big world")
    assert response.output_text == "echo: hello big world"
    assert response.status == "completed" and response.model == "gpt-4o-mini"
    # (8 + 15) chars // 4 + 1 input tokens, 4 words out.
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (6, 4, 10)


def test_responses_stream_has_the_real_event_sequence(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="gpt-4o-mini", input=[{"role": "user", "content": "hello big world"}], stream=True))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert "".join(event.delta for event in events if event.type == "response.output_text.delta") == "echo: hello big world"
    assert events[-1].response.usage.output_tokens == 4 and events[0].response.usage is None


def test_responses_function_call_then_structured_output(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "name": "weather", "parameters": WEATHER, "strict": True}]
    text = {"format": {"type": "json_schema", "name": "forecast", "schema": FORECAST, "strict": False}}
    first = client.responses.create(model="gpt-4o-mini", input="Paris?", tools=tools, text=text)
    [call] = first.output
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Paris?", "days": 1}
    follow = [{"role": "user", "content": "Paris?"}, call.model_dump(exclude_none=True), {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
    with client.responses.stream(model="gpt-4o-mini", input=follow, tools=tools, text=text) as stream:
        final = stream.get_final_response()
    assert json.loads(final.output_text) == {"summary": "sunny", "days": [{"sunny": True, "kind": "rain"}]}


def test_responses_function_call_streams_its_arguments(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "name": "weather", "parameters": WEATHER}]
    events = list(client.responses.create(model="gpt-4o-mini", input="Oslo", tools=tools, stream=True))
    deltas = "".join(event.delta for event in events if event.type == "response.function_call_arguments.delta")
    done = [event for event in events if event.type == "response.function_call_arguments.done"]
    assert json.loads(deltas) == {"city": "Oslo", "days": 1} and done[0].arguments == deltas


def test_chat_tool_calls_json_and_streamed(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "weather", "parameters": WEATHER}}]
    messages = [{"role": "user", "content": "Rome"}]
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    [call] = completion.choices[0].message.tool_calls
    assert completion.choices[0].finish_reason == "tool_calls" and json.loads(call.function.arguments) == {"city": "Rome", "days": 1}
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools, stream=True))
    streamed = "".join(tool.function.arguments or "" for chunk in chunks for tool in chunk.choices[0].delta.tool_calls or ())
    assert streamed == call.function.arguments
    # Once the tool answered, the model answers in text.
    answered = [*messages, completion.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "warm"}]
    assert client.chat.completions.create(model="gpt-4o-mini", messages=answered, tools=tools).choices[0].message.content == "echo: warm"


def test_chat_forced_tool_and_none(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": name, "parameters": WEATHER}} for name in ("a", "b")]
    messages = [{"role": "user", "content": "x"}]
    forced = client.chat.completions.create(model="m", messages=messages, tools=tools, tool_choice={"type": "function", "function": {"name": "b"}})
    assert forced.choices[0].message.tool_calls[0].function.name == "b"
    assert client.chat.completions.create(model="m", messages=messages, tools=tools, tool_choice="none").choices[0].message.content == "echo: x"


# -- Anthropic Messages --------------------------------------------------------------------------


@pytest.fixture
def claude(server: FakeOpenAIServer):
    anthropic = pytest.importorskip("anthropic")
    return anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0)


def test_anthropic_message_and_stream(claude) -> None:
    message = claude.messages.create(model="claude-haiku-4-5", max_tokens=64, system="be brief", messages=[{"role": "user", "content": "hello big world"}])
    assert message.content[0].text == "echo: hello big world" and message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (6, 4)
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hello big world"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: hello big world" and final.usage.output_tokens == 4 and final.stop_reason == "end_turn"


def test_anthropic_tool_use_streamed(claude) -> None:
    tools = [{"name": "weather", "description": "w", "input_schema": WEATHER}]
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=64, tools=tools, messages=[{"role": "user", "content": "Lima"}]) as stream:
        final = stream.get_final_message()
    [use] = final.content
    assert use.type == "tool_use" and use.input == {"city": "Lima", "days": 1} and final.stop_reason == "tool_use"
    follow = [{"role": "user", "content": "Lima"}, {"role": "assistant", "content": [use.model_dump()]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "foggy"}]}]
    assert claude.messages.create(model="claude-haiku-4-5", max_tokens=64, tools=tools, messages=follow).content[0].text == "echo: foggy"


def test_anthropic_errors_are_anthropic_shaped(server: FakeOpenAIServer, claude) -> None:
    anthropic = pytest.importorskip("anthropic")
    server.script(Reply.error(429, "slow down", api="anthropic"))
    with pytest.raises(anthropic.RateLimitError) as error:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert error.value.body == {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    keyless = urllib.request.Request(f"{server.url}/v1/messages", data=b"{}", headers={"anthropic-version": "2023-06-01"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(keyless)
    assert refused.value.code == 401 and json.load(refused.value)["error"]["type"] == "authentication_error"
    assert [model.id for model in claude.models.list()] == ["claude-sonnet-4-5", "claude-haiku-4-5"]


# -- Gemini --------------------------------------------------------------------------------------


@pytest.fixture
def gemini(server: FakeOpenAIServer):
    genai = pytest.importorskip("google.genai")
    return genai.Client(api_key="gemini-test-key", http_options={"base_url": server.url})


def test_gemini_generate_and_stream(gemini) -> None:
    response = gemini.models.generate_content(model="gemini-2.5-flash", contents="hello big world")
    assert response.text == "echo: hello big world"
    assert (response.usage_metadata.prompt_token_count, response.usage_metadata.candidates_token_count) == (4, 4)
    chunks = list(gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="hello big world"))
    assert len(chunks) == 4 and "".join(chunk.text for chunk in chunks) == "echo: hello big world"
    assert chunks[-1].usage_metadata.total_token_count == 8 and chunks[-1].candidates[0].finish_reason == "STOP"


def test_gemini_function_call_and_structured_output(gemini) -> None:
    from google.genai import types

    def weather(city: str, days: int) -> str:
        """The weather."""
        return f"hail in {city} for {days} day(s)"

    config = types.GenerateContentConfig(tools=[weather])
    response = gemini.models.generate_content(model="gemini-2.5-flash", contents="Bern", config=config)
    # google-genai called the function with the model's arguments and sent its result back.
    assert response.text == 'echo: {"result": "hail in Bern for 1 day(s)"}'
    structured = gemini.models.generate_content(
        model="gemini-2.5-flash", contents="Bern",
        config=types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=WEATHER),
    )
    assert structured.parsed == {"city": "Bern", "days": 1}


def test_gemini_needs_a_key_and_lists_models(server: FakeOpenAIServer, gemini) -> None:
    from google.genai import errors

    server.script(Reply.error(429, api="gemini"))
    with pytest.raises(errors.ClientError) as error:
        gemini.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert error.value.code == 429 and error.value.status == "RESOURCE_EXHAUSTED"
    assert "models/gemini-2.5-flash" in [model.name for model in gemini.models.list()]
    keyless = urllib.request.Request(f"{server.url}/v1beta/models/gemini-2.5-flash:generateContent", data=b'{"contents": [{"parts": [{"text": "x"}]}]}')
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(keyless)
    assert refused.value.code == 403 and json.load(refused.value)["error"]["status"] == "PERMISSION_DENIED"
