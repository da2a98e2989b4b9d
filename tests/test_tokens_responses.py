"""Token counts of Responses API requests (``client.responses.create``), checked by ``verify`` and
``tokens`` against ``usage.input_tokens``.

No real Responses API recording is public here, so the billed figures of the recorded calls are
the ones the chat formula gives for the equivalent chat request: only requests whose chat
equivalent is measured on real chat billing (plain messages; instructions as a system message).
What this proves is the Responses path itself: the request shapes are mapped, recorded through the
SDK, read back from JSON and event-stream cassettes, and compared with ``usage.input_tokens`` by
both commands, which flag a difference.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakeopenai import Reply
from pytest_llmcache import cassette as cassette_file
from pytest_llmcache.cli import main
from tinytroupe import tokens

MODEL = "gpt-4o-2024-08-06"
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "the city"}}, "required": ["city"]},
}


def chat_tokens(messages: list[dict], **extra) -> int:
    return tokens.count_tokens(messages, MODEL, **extra)


texts = st.text(max_size=40)


@settings(deadline=None, max_examples=40)
@given(texts, texts)
def test_string_input_and_instructions_count_as_system_and_user_messages(instructions: str, text: str) -> None:
    request = {"model": MODEL, "input": text, **({"instructions": instructions} if instructions else {})}
    chat = ([{"role": "system", "content": instructions}] if instructions else []) + [{"role": "user", "content": text}]
    assert tokens.count_responses_tokens(request, MODEL) == chat_tokens(chat)


def test_items_tools_and_format_map_to_their_chat_equivalents() -> None:
    request = {
        "model": MODEL,
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris and Rome?"}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
            {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": '{"city": "Rome"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "c2", "output": "rain"},
            {"type": "reasoning", "id": "rs_1", "summary": []},  # not billed as text
        ],
        "tools": [{"type": "function", **WEATHER}, {"type": "web_search_preview"}],
        "tool_choice": {"type": "function", "name": "get_weather"},
    }
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
    ]
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "rain"},
    ]
    expected = chat_tokens(chat, tools=[{"type": "function", "function": WEATHER}], tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert tokens.count_responses_tokens(request, MODEL) == expected

    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    formatted = {"model": MODEL, "input": "Hi", "text": {"format": {"type": "json_schema", "name": "reply", "schema": schema}}}
    response_format = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    assert tokens.count_responses_tokens(formatted, MODEL) == chat_tokens([{"role": "user", "content": "Hi"}], response_format=response_format)
    assert tokens.count_responses_tokens(formatted, MODEL) > tokens.count_responses_tokens({"input": "Hi"}, MODEL)


def _response(input_tokens: int) -> dict:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": MODEL,
        "output": [{"id": "msg_1", "type": "message", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": "Paris.", "annotations": []}]}],
        "tools": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "usage": {"input_tokens": input_tokens, "output_tokens": 2, "total_tokens": input_tokens + 2},
    }


def _stream(input_tokens: int) -> bytes:
    events = [
        {"type": "response.output_text.delta", "sequence_number": 0, "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "Paris."},
        {"type": "response.completed", "sequence_number": 1, "response": _response(input_tokens)},
    ]
    return "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events).encode()


INNER = '''
import openai

def test_plain(llm_cassette):
    openai.OpenAI().responses.create(model="gpt-4o", input="Capital of France?")

def test_instructions_and_items(llm_cassette):
    openai.OpenAI().responses.create(model="gpt-4o", instructions="Answer in one word.", input=[
        {"role": "user", "content": [{"type": "input_text", "text": "Capital of France?"}]},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
    ])

def test_streamed(llm_cassette):
    list(openai.OpenAI().responses.create(model="gpt-4o", input="Capital of France?", stream=True))
'''


def test_verify_and_tokens_check_recorded_responses_calls(suite, capsys: pytest.CaptureFixture[str]) -> None:
    plain = chat_tokens([{"role": "user", "content": "Capital of France?"}])
    items = chat_tokens(
        [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And of Italy?"},
        ]
    )
    suite.write(INNER)
    suite.live()
    suite.server.script(
        Reply.json(200, _response(plain)),
        Reply.json(200, _response(items)),
        Reply.raw(200, _stream(plain), headers={"content-type": "text/event-stream"}),
    )
    suite.run("--llm-record-mode=once").assert_outcomes(passed=3)
    suite.offline()

    capsys.readouterr()
    assert main(["verify", str(suite.cassettes), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checked"]["token_checks"] == 3
    assert main(["tokens", str(suite.cassettes), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["models"][MODEL] | {"worst": []} == {"count": 3, "exact": 3, "off_by_one": 0, "off_by_more": 0, "exact_pct": 100.0, "worst": []}

    # A count that drifts from the billed figure is reported by both, the same way.
    cassette = suite.cassettes / "test_x" / "test_streamed.yaml"
    [interaction] = cassette_file.load(cassette)
    interaction["response"]["body"] = {"sse": _stream(plain + 2).decode()}
    cassette_file.save(cassette, [interaction])
    assert main(["verify", str(cassette)]) == 1
    out = capsys.readouterr().out
    assert f"usage.input_tokens is {plain + 2} ({MODEL}); the library counts {plain} (-2)" in out
    assert main(["tokens", str(cassette), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][MODEL]["off_by_more"] == 1
