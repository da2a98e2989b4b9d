"""OpenAI and Azure OpenAI: chat completions (tools, structured output, streams), the Responses API
(JSON and SSE) and embeddings. Other paths (GET /v1/models included) are 404s."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from http.client import responses as STATUS_PHRASES
from typing import Any
from urllib.parse import unquote

from .wire import (
    CREATED,
    Answer,
    Conversation,
    ReceivedRequest,
    Response,
    Tool,
    answer,
    dumps,
    split_words,
    sse,
)

SYSTEM_FINGERPRINT = "fp_fakeopenai"
EMBEDDING_DIMENSIONS = 8

_OPENAI_ROUTES = {"/v1/chat/completions": "chat", "/v1/embeddings": "embeddings", "/v1/responses": "responses"}
_AZURE_ROUTE = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/(?P<op>chat/completions|embeddings)$")

# Error `type`/`code` the real API reports for these statuses; otherwise see default_error_kind.
ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    429: ("requests", "rate_limit_exceeded"),
}

_MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (i.e. user: YOUR_KEY, "
    "password: ). You can obtain an API key from https://platform.openai.com/account/api-keys."
)
_AZURE_DENIED_MESSAGE = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource."
)
_SAFE_FILTER = {name: {"filtered": False, "severity": "safe"} for name in ("hate", "self_harm", "sexual", "violence")}
_PROMPT_FILTER_RESULTS = [{"prompt_index": 0, "content_filter_results": _SAFE_FILTER}]


def route(request: ReceivedRequest) -> Response | None:
    """The answer to an OpenAI or Azure OpenAI request; None when the path is none of theirs."""
    openai_op = _OPENAI_ROUTES.get(request.path) if request.method == "POST" else None
    azure_match = _AZURE_ROUTE.match(request.path) if request.method == "POST" else None
    if openai_op is not None:
        deployment = None
        if not _bearer(request):
            return error(401, _MISSING_KEY_MESSAGE, "invalid_request_error", None)
        op = openai_op
    elif azure_match is not None:
        deployment = unquote(azure_match["deployment"])
        if "api-version" not in request.query:
            message = "The api-version query parameter (?api-version=) is required for all requests."
            return _azure_error(400, "MissingApiVersionParameter", message)
        if not request.headers.get("api-key"):
            return _azure_error(401, "401", _AZURE_DENIED_MESSAGE)
        op = "chat" if azure_match["op"] == "chat/completions" else "embeddings"
    else:
        return None

    body = request.json_object()
    if body is None:
        return error(400, "We could not parse the JSON body of your request.", "invalid_request_error", None)
    model = body.get("model") or deployment
    if not model:
        return _missing_parameter("model")
    if op == "chat":
        return _chat_response(body, model, request.digest, azure=deployment is not None)
    if op == "responses":
        return _responses_response(body, model, request.digest)
    return _embeddings_response(body, model)


def not_found(request: ReceivedRequest) -> Response:
    return error(404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error", None)


def _bearer(request: ReceivedRequest) -> bool:
    header = request.headers.get("authorization", "")
    return header.startswith("Bearer ") and bool(header.removeprefix("Bearer ").strip())


# -- chat completions ---------------------------------------------------------------------------


def chat_conversation(body: dict[str, Any]) -> Conversation:
    messages = body["messages"]
    called = {
        call.get("function", {}).get("name")
        for message in messages
        if isinstance(message, dict)
        for call in message.get("tool_calls") or ()
        if isinstance(call, dict)
    }
    tools = [
        Tool(tool["function"]["name"], tool["function"].get("parameters") or {})
        for tool in body.get("tools") or ()
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
    ]
    choice = body.get("tool_choice")
    response_format = body.get("response_format") or {}
    return Conversation(
        texts=[message_text(message) for message in messages],
        tools=tools,
        called={name for name in called if name},
        forced=((choice.get("function") or {}).get("name") if isinstance(choice, dict) else None),
        required=choice == "required",
        no_tools=choice == "none",
        output_schema=(response_format.get("json_schema") or {}).get("schema") if response_format.get("type") == "json_schema" else None,
        json_mode=response_format.get("type") == "json_object",
    )


def _chat_response(body: dict[str, Any], model: str, digest: str, azure: bool) -> Response:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _missing_parameter("messages")
    conversation = chat_conversation(body)
    reply = answer(conversation)
    n = int(body.get("n") or 1)
    prompt_tokens = conversation.prompt_tokens
    completion_tokens = n * reply.output_tokens
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
    base = {"id": f"chatcmpl-{digest[:29]}", "created": CREATED, "model": model}
    calls = [
        {"id": f"call_{digest[:22]}{index}", "type": "function", "function": {"name": call.name, "arguments": call.arguments_json}}
        for index, call in enumerate(reply.calls)
    ]
    finish_reason = "tool_calls" if calls else "stop"

    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return Response(200, events=_chat_stream_events(base, reply, calls, n, usage, include_usage, azure))

    choices = []
    for index in range(n):
        message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []}
        if calls:
            message["tool_calls"] = calls
        choice: dict[str, Any] = {"index": index, "message": message, "logprobs": None, "finish_reason": finish_reason}
        if azure:
            choice["content_filter_results"] = _SAFE_FILTER
        choices.append(choice)
    completion: dict[str, Any] = {
        **base,
        "object": "chat.completion",
        "choices": choices,
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if azure:
        completion["prompt_filter_results"] = _PROMPT_FILTER_RESULTS
    return Response(200, dumps(completion))


def _chat_stream_events(
    base: dict[str, Any],
    reply: Answer,
    calls: list[dict[str, Any]],
    n: int,
    usage: dict[str, int],
    include_usage: bool,
    azure: bool,
) -> list[bytes]:
    def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        data = {**base, "object": "chat.completion.chunk", "system_fingerprint": SYSTEM_FINGERPRINT}
        data["choices"] = choices
        if include_usage:
            data["usage"] = None  # the real API sends null usage on every chunk but the last
        return {**data, **extra}

    def delta(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    chunks: list[dict[str, Any]] = []
    if azure:
        # Real Azure opens every stream with a prompt-filter chunk that has no choices and blank fields.
        blank = {"created": 0, "id": "", "model": "", "object": ""}
        chunks.append({"choices": [], **blank, "prompt_filter_results": _PROMPT_FILTER_RESULTS})
    for index in range(n):
        if calls:
            # The first chunk of each call names it with empty arguments; the arguments follow in pieces.
            opening = [{"index": position, **call, "function": {**call["function"], "arguments": ""}} for position, call in enumerate(calls)]
            chunks.append(chunk([delta(index, {"role": "assistant", "content": None, "tool_calls": opening, "refusal": None})]))
            chunks.extend(
                chunk([delta(index, {"tool_calls": [{"index": position, "function": {"arguments": piece}}]})])
                for position, call in enumerate(calls)
                for piece in _halves(call["function"]["arguments"])
            )
            chunks.append(chunk([delta(index, {}, "tool_calls")]))
            continue
        chunks.append(chunk([delta(index, {"role": "assistant", "content": "", "refusal": None})]))
        chunks.extend(chunk([delta(index, {"content": piece})]) for piece in reply.pieces())
        chunks.append(chunk([delta(index, {}, "stop")]))
    if include_usage:
        chunks.append(chunk([], usage=usage))
    return [sse(data) for data in chunks] + [b"data: [DONE]\n\n"]


def _halves(text: str) -> list[str]:
    middle = len(text) // 2
    return [part for part in (text[:middle], text[middle:]) if part]


def message_text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part for part in content if isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text")]
        return "".join(part.get("text", "") for part in parts)
    return ""  # e.g. assistant tool-call messages carry no content


# -- Responses API ------------------------------------------------------------------------------


def responses_conversation(body: dict[str, Any]) -> Conversation:
    items = body.get("input")
    items = [{"role": "user", "content": items}] if isinstance(items, str) else [item for item in items or () if isinstance(item, dict)]
    texts = [body["instructions"]] if isinstance(body.get("instructions"), str) else []
    called: set[str] = set()
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            texts.append(message_text(item))
        elif kind == "function_call":
            called.add(str(item.get("name")))
        elif kind == "function_call_output":
            output = item.get("output")
            texts.append(output if isinstance(output, str) else message_text({"content": output}))
    tools = [Tool(tool["name"], tool.get("parameters") or {}) for tool in body.get("tools") or () if isinstance(tool, dict) and tool.get("type") == "function"]
    choice = body.get("tool_choice")
    text_format = (body.get("text") or {}).get("format") or {}
    return Conversation(
        texts=texts,
        tools=tools,
        called=called,
        forced=choice.get("name") if isinstance(choice, dict) else None,
        required=choice == "required",
        no_tools=choice == "none",
        output_schema=text_format.get("schema") if text_format.get("type") == "json_schema" else None,
        json_mode=text_format.get("type") == "json_object",
    )


def _responses_response(body: dict[str, Any], model: str, digest: str) -> Response:
    if not body.get("input"):
        return _missing_parameter("input")
    conversation = responses_conversation(body)
    reply = answer(conversation)
    items: list[dict[str, Any]] = [
        {
            "id": f"fc_{digest[:40]}{index}",
            "type": "function_call",
            "status": "completed",
            "arguments": call.arguments_json,
            "call_id": f"call_{digest[:22]}{index}",
            "name": call.name,
        }
        for index, call in enumerate(reply.calls)
    ]
    if not items:
        text = reply.text or ""
        content = [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}]
        items.append({"id": f"msg_{digest[:40]}", "type": "message", "status": "completed", "content": content, "role": "assistant"})
    input_tokens, output_tokens = conversation.prompt_tokens, reply.output_tokens
    response = {
        "id": f"resp_{digest[:40]}",
        "object": "response",
        "created_at": CREATED,
        "status": "completed",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": items,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }
    if body.get("stream"):
        return Response(200, events=_responses_events(response, reply))
    return Response(200, dumps(response))


def _responses_events(response: dict[str, Any], reply: Answer) -> list[bytes]:
    """The real stream's event sequence: created, in_progress, each output item opened, filled
    (text or argument deltas) and closed, then completed with the whole response and its usage."""
    events: list[dict[str, Any]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "sequence_number": len(events), **fields})

    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    emit("response.created", response=pending)
    emit("response.in_progress", response=pending)
    for index, item in enumerate(response["output"]):
        position = {"item_id": item["id"], "output_index": index}
        if item["type"] == "function_call":
            emit("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "arguments": ""})
            for piece in _halves(item["arguments"]):
                emit("response.function_call_arguments.delta", **position, delta=piece)
            emit("response.function_call_arguments.done", **position, name=item["name"], arguments=item["arguments"])
        else:
            text = item["content"][0]["text"]
            emit("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []})
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
            emit("response.content_part.added", **position, content_index=0, part=part)
            for piece in split_words(text):
                emit("response.output_text.delta", **position, content_index=0, delta=piece, logprobs=[])
            emit("response.output_text.done", **position, content_index=0, text=text, logprobs=[])
            emit("response.content_part.done", **position, content_index=0, part={**part, "text": text})
        emit("response.output_item.done", output_index=index, item=item)
    emit("response.completed", response=response)
    return [sse(event, event=event["type"]) for event in events]


# -- embeddings ---------------------------------------------------------------------------------


def _embeddings_response(body: dict[str, Any], model: str) -> Response:
    inputs = _embedding_inputs(body.get("input"))
    if not inputs:
        return _missing_parameter("input")
    encoding_format = body.get("encoding_format", "float")
    if encoding_format not in ("float", "base64"):
        message = f"Invalid encoding_format: {encoding_format!r}."
        return error(400, message, "invalid_request_error", None, "encoding_format")
    data = []
    for index, item in enumerate(inputs):
        vector = embedding_vector(item)
        embedding: list[float] | str = vector
        if encoding_format == "base64":
            embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(len(item) if isinstance(item, list) else len(item) // 4 + 1 for item in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    response = {"object": "list", "data": data, "model": model, "usage": usage}
    return Response(200, dumps(response))


def embedding_vector(item: str | list[int]) -> list[float]:
    """The deterministic embedding of one input (a string or a token array)."""
    key = item if isinstance(item, str) else json.dumps(item)
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    # k/128 - 1 is exact in float32, so float and base64 encodings decode to identical values.
    return [byte / 128 - 1 for byte in digest[:EMBEDDING_DIMENSIONS]]


def _embedding_inputs(value: Any) -> list[str | list[int]]:
    """Normalise `input` (string, token array, or a list of either) to a list of items; [] if invalid."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return []
    if _is_token_array(value):
        return [value]
    if all(isinstance(item, str) or _is_token_array(item) for item in value):
        return value
    return []


def _is_token_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(token, int) for token in value)


# -- errors -------------------------------------------------------------------------------------


def error_kind(status: int) -> tuple[str, str | None]:
    return ERROR_KINDS.get(status) or (("server_error" if status >= 500 else "invalid_request_error"), None)


def error_body(message: str | None, status: int, type: str | None = None, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    default_type, default_code = error_kind(status)
    message = message or STATUS_PHRASES.get(status, "Error")
    return {"error": {"message": message, "type": type or default_type, "param": param, "code": code or default_code}}


def error(status: int, message: str, type: str, code: str | None, param: str | None = None) -> Response:
    return Response(status, dumps({"error": {"message": message, "type": type, "param": param, "code": code}}))


def _azure_error(status: int, code: str, message: str) -> Response:
    # Azure's gateway errors carry only code and message.
    return Response(status, dumps({"error": {"code": code, "message": message}}))


def _missing_parameter(name: str) -> Response:
    message = f"Missing required parameter: '{name}'."
    return error(400, message, "invalid_request_error", "missing_required_parameter", name)
