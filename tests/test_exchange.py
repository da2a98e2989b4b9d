"""`pytest_llmcache.exchange`: one reading of every kind of recorded call, JSON or streamed,
with or without response headers, and nothing a cassette holds makes it fail.

The Anthropic and Gemini bodies follow the shapes those APIs document (the loopback server does not
speak them yet); the OpenAI ones are also recorded through the SDK in test_report_stats_agree.
"""
from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from builders import interaction, sse
from pytest_llmcache.exchange import ANTHROPIC_MESSAGES, CHAT, GEMINI_GENERATE, RESPONSES, Answer, ToolCall, Usage, read_exchange

ANTHROPIC_URI = "https://api.anthropic.test/v1/messages"
GEMINI_URI = "https://generativelanguage.googleapis.test/v1beta/models/gemini-2.0-flash:generateContent"
GEMINI_STREAM_URI = "https://generativelanguage.googleapis.test/v1beta/models/gemini-2.0-flash:streamGenerateContent"


def _events(events: list[dict]) -> str:
    return "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events)


def test_anthropic_message_json_and_stream_read_the_same() -> None:
    request = {"model": "claude-sonnet-4-5", "max_tokens": 100, "system": "Be brief.", "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Let me check."}, {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {"city": "Paris"}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 25, "output_tokens": 12},
    }
    stream = _events(
        [
            {"type": "message_start", "message": {**message, "content": [], "stop_reason": None, "usage": {"input_tokens": 25, "output_tokens": 1}}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "check."}},
            {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {}}},
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}},
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}},
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 12}},
            {"type": "message_stop"},
        ]
    )
    plain = read_exchange(interaction(request, message, uri=ANTHROPIC_URI, content_type="application/json"))
    streamed = read_exchange(interaction({**request, "stream": True}, stream, uri=ANTHROPIC_URI, response_headers={}))
    for exchange in (plain, streamed):
        assert (exchange.provider, exchange.kind, exchange.model, exchange.billed_model) == ("anthropic", ANTHROPIC_MESSAGES, "claude-sonnet-4-5", "claude-sonnet-4-5-20250929")
        assert exchange.usage == Usage(25, 12)
        assert exchange.answer.text == "Let me check." and exchange.answer.finish_reason == "tool_use"
        [call] = exchange.answer.tool_calls
        assert (call.name, json.loads(call.arguments), call.id) == ("weather", {"city": "Paris"}, "tu_1")
    assert streamed.streamed and not plain.streamed


def test_gemini_json_array_and_sse_streams() -> None:
    request = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}

    def chunk(text: str, usage: dict | None = None, finish: str | None = None) -> dict:
        candidate: dict = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "modelVersion": "gemini-2.0-flash-001", **({"usageMetadata": usage} if usage else {})}

    usage = {"promptTokenCount": 3, "candidatesTokenCount": 5, "totalTokenCount": 8}
    chunks = [chunk("Hello"), chunk(" there", usage, "STOP")]
    whole = read_exchange(interaction(request, chunk("Hello there", usage, "STOP"), uri=GEMINI_URI))
    array = read_exchange(interaction(request, chunks, uri=GEMINI_STREAM_URI))
    events = read_exchange(interaction(request, sse(chunks, done=False), uri=GEMINI_STREAM_URI + "?alt=sse"))
    for exchange in (whole, array, events):
        assert (exchange.provider, exchange.kind, exchange.model) == ("gemini", GEMINI_GENERATE, "gemini-2.0-flash")
        assert exchange.billed_model == "gemini-2.0-flash-001" and exchange.usage == Usage(3, 5)
        assert exchange.answer.text == "Hello there" and exchange.answer.finish_reason == "STOP"
        assert [part["parts"] for part in exchange.messages] == [[{"text": "Hi"}]]
    assert not whole.streamed and array.streamed and events.streamed


def test_responses_function_calls_json_and_a_stream_cut_before_completion() -> None:
    request = {"model": "gpt-4o", "input": "Weather?", "tools": [{"type": "function", "name": "weather", "parameters": {}}]}
    output = [{"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "weather", "arguments": '{"city":"Paris"}', "status": "completed"}]
    body = {"object": "response", "status": "completed", "model": "gpt-4o-2024-08-06", "output": output, "usage": {"input_tokens": 40, "output_tokens": 9}}
    uri = "https://api.openai.test/v1/responses"
    exchange = read_exchange(interaction(request, body, uri=uri))
    assert exchange.kind == RESPONSES and exchange.usage == Usage(40, 9) and exchange.input == "Weather?"
    assert exchange.answer == Answer("assistant", None, None, (ToolCall("weather", '{"city":"Paris"}', "call_1"),), "completed")

    cut = _events(
        [
            {"type": "response.created", "response": {**body, "status": "in_progress", "output": [], "usage": None}},
            {"type": "response.output_item.added", "output_index": 0, "item": {**output[0], "arguments": ""}},
            {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": '{"city":'},
            {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": '"Paris"}'},
        ]
    )
    streamed = read_exchange(interaction({**request, "stream": True}, cut, uri=uri))
    assert streamed.streamed and streamed.usage is None and streamed.billed_model == "gpt-4o-2024-08-06"
    assert streamed.answer.tool_calls == (ToolCall("weather", '{"city":"Paris"}', "call_1"),)


def test_chat_refusal_legacy_function_call_and_errors() -> None:
    message = {"role": "assistant", "content": None, "refusal": "I can't help with that.", "function_call": {"name": "f", "arguments": "{}"}}
    exchange = read_exchange(interaction({"model": "gpt-4o"}, {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}))
    assert exchange.kind == CHAT and exchange.answer.refusal == "I can't help with that." and exchange.answer.tool_calls == (ToolCall("f", "{}"),)
    error = read_exchange(interaction({"model": "gpt-9"}, {"error": {"message": "no such model", "code": "model_not_found"}}, status=404))
    assert error.error is not None and (error.error.code, error.error.message, error.succeeded) == ("model_not_found", "no such model", False)
    azure = read_exchange(interaction({"messages": []}, {"choices": []}, uri="https://x.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=1"))
    assert (azure.provider, azure.deployment, azure.model) == ("azure", "prod-4o", "prod-4o")


words = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=12)


@settings(deadline=None, max_examples=60)
@given(st.lists(words, min_size=1, max_size=6), st.integers(0, 500), st.integers(0, 500), st.booleans())
def test_a_stream_reads_the_same_with_or_without_its_headers(parts: list[str], prompt: int, completion: int, crlf: bool) -> None:
    chunks = [{"model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "delta": {"content": part}}]} for part in parts]
    chunks.append({"model": "gpt-4o-mini-2024-07-18", "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion}})
    text = sse(chunks).replace("\n", "\r\n") if crlf else sse(chunks)
    request = {"model": "gpt-4o-mini", "stream": True}
    with_headers = read_exchange(interaction(request, text, content_type="text/event-stream"))
    without = read_exchange(interaction(request, {"string": text}, response_headers={}))
    assert with_headers == without
    assert without.streamed and without.usage == Usage(prompt, completion) and without.answer.text == "".join(parts)


@settings(deadline=None, max_examples=100)
@given(st.one_of(st.binary(max_size=80), st.text(max_size=80)), st.sampled_from(["/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/messages", "/x"]))
def test_any_body_is_read_without_failing(body: bytes | str, path: str) -> None:
    stored = {"base64": base64.b64encode(body).decode()} if isinstance(body, bytes) else {"string": body}
    exchange = read_exchange(interaction({"model": "m"}, stored, uri="https://api.openai.test" + path))
    assert exchange.billed_model is not None  # the model asked for, at least
    assert exchange.usage is None or all(isinstance(count, int) for count in (exchange.usage.input_tokens, exchange.usage.output_tokens))
