"""Anthropic's Messages API: `POST /v1/messages` (text, tool_use, JSON or SSE) and `GET /v1/models`.

A request is Anthropic's by its path; the model listing, whose path OpenAI's shares, by its
`anthropic-version` header (gateways send `x-api-key` to OpenAI-compatible APIs too)."""

from __future__ import annotations

from http.client import responses as STATUS_PHRASES
from typing import Any

from .wire import Conversation, ReceivedRequest, Response, Tool, answer, dumps, json_response, sse

MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5")

# The error `type` the real API reports per status.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def is_anthropic(request: ReceivedRequest) -> bool:
    return request.path == "/v1/messages" or (request.path == "/v1/models" and "anthropic-version" in request.headers)


def route(request: ReceivedRequest) -> Response | None:
    if not is_anthropic(request):
        return None
    if not request.headers.get("x-api-key") and not request.headers.get("authorization"):
        return error(401, "x-api-key header is required")
    if not request.headers.get("anthropic-version"):
        return error(400, "anthropic-version: header is required")
    if request.method == "GET" and request.path == "/v1/models":
        data = [{"type": "model", "id": model, "display_name": model, "created_at": "2025-09-29T00:00:00Z"} for model in MODELS]
        return json_response(200, {"data": data, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]})
    if request.method != "POST":
        return error(404, f"Not found: {request.method} {request.path}")
    body = request.json_object()
    if body is None:
        return error(400, "There was an error parsing the body of your request.")
    for name in ("model", "max_tokens", "messages"):
        if not body.get(name):
            return error(400, f"{name}: Field required")
    return _message(body, request.digest)


def conversation(body: dict[str, Any]) -> Conversation:
    texts = [_text(body.get("system"))] if body.get("system") else []
    called: set[str] = set()
    for message in body["messages"]:
        content = message.get("content") if isinstance(message, dict) else None
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else [block for block in content or () if isinstance(block, dict)]
        called.update(str(block.get("name")) for block in blocks if block.get("type") == "tool_use")
        results = [block for block in blocks if block.get("type") == "tool_result"]
        texts.append(_text(results[-1].get("content")) if results else _text(blocks))
    tools = [Tool(tool["name"], tool.get("input_schema") or {}) for tool in body.get("tools") or () if isinstance(tool, dict) and "name" in tool]
    choice = body.get("tool_choice") or {}
    output_format = body.get("output_format") or (body.get("output_config") or {}).get("format") or {}
    return Conversation(
        texts=texts,
        tools=tools,
        called=called,
        forced=choice.get("name") if choice.get("type") == "tool" else None,
        required=choice.get("type") == "any",
        no_tools=choice.get("type") == "none",
        output_schema=output_format.get("schema") if output_format.get("type") == "json_schema" else None,
    )


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(block.get("text", "") for block in content if isinstance(block, dict) and block.get("type") == "text")
    return ""


def _message(body: dict[str, Any], digest: str) -> Response:
    talk = conversation(body)
    reply = answer(talk)
    content: list[dict[str, Any]] = [
        {"type": "tool_use", "id": f"toolu_{digest[:23]}{index}", "name": call.name, "input": call.arguments}
        for index, call in enumerate(reply.calls)
    ]
    if not content and reply.text is not None:
        content.append({"type": "text", "text": reply.text})
    usage = {
        "input_tokens": talk.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": reply.output_tokens,
        "service_tier": "standard",
    }
    message = {
        "id": f"msg_{digest[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": "tool_use" if reply.calls else "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    headers = {"request-id": f"req_{digest[:24]}"}
    if not body.get("stream"):
        return Response(200, dumps(message), headers=headers)
    return Response(200, events=_events(message, reply.pieces()), headers=headers)


def _events(message: dict[str, Any], pieces: list[str]) -> list[bytes]:
    """message_start (empty content, input usage), each block started / delta'd / stopped, then
    message_delta with the stop reason and output usage, and message_stop."""
    start_usage = {**message["usage"], "output_tokens": 1}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {**message, "content": [], "stop_reason": None, "usage": start_usage}},
    ]
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            events.append({"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}})
            arguments = dumps(block["input"]).decode()
            middle = len(arguments) // 2
            events.extend(
                {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": part}}
                for part in (arguments[:middle], arguments[middle:])
            )
        else:
            events.append({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
            if index == 0:
                events.append({"type": "ping"})
            events.extend({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}} for piece in pieces)
        events.append({"type": "content_block_stop", "index": index})
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append({"type": "message_delta", "delta": delta, "usage": {"output_tokens": message["usage"]["output_tokens"]}})
    events.append({"type": "message_stop"})
    return [sse(event, event=event["type"]) for event in events]


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message or STATUS_PHRASES.get(status, "Error")}}


def error(status: int, message: str) -> Response:
    return Response(status, dumps(error_body(status, message)))
