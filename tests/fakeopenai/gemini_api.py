"""Google Gemini (the Developer API): `POST /v1beta/models/{model}:generateContent`,
`:streamGenerateContent?alt=sse` (every chunk a whole GenerateContentResponse, usageMetadata on each,
no end marker) and `GET /v1beta/models`. The key comes in `x-goog-api-key` or `?key=`."""

from __future__ import annotations

import json
import re
from http.client import responses as STATUS_PHRASES
from typing import Any
from urllib.parse import unquote

from .wire import Conversation, ReceivedRequest, Response, Tool, answer, dumps, json_response, sse

MODELS = ("gemini-2.5-flash", "gemini-2.5-pro")
_ROUTE = re.compile(r"^/(?P<version>v1beta|v1|v1alpha)/models/(?P<model>[^/:]+):(?P<op>generateContent|streamGenerateContent)$")
_LISTING = re.compile(r"^/(v1beta|v1|v1alpha)/models$")

# The error `status` the real API reports per HTTP status.
STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def is_gemini(request: ReceivedRequest) -> bool:
    # GET /v1/models is OpenAI's listing too: Gemini's is the one asked with a Google key.
    keyed = "x-goog-api-key" in request.headers or "key" in request.query
    return bool(_ROUTE.match(request.path) or (_LISTING.match(request.path) and (keyed or not request.path.startswith("/v1/"))))


def route(request: ReceivedRequest) -> Response | None:
    if not is_gemini(request):
        return None
    if not request.headers.get("x-goog-api-key") and not request.query.get("key"):
        return error(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.")
    if _LISTING.match(request.path):
        if request.method != "GET":
            return error(404, f"Not found: {request.method} {request.path}")
        models = [{"name": f"models/{model}", "displayName": model, "supportedGenerationMethods": ["generateContent"]} for model in MODELS]
        return json_response(200, {"models": models})
    match = _ROUTE.match(request.path)
    assert match is not None
    if request.method != "POST":
        return error(404, f"Not found: {request.method} {request.path}")
    body = request.json_object()
    if body is None:
        return error(400, "Invalid JSON payload received.")
    if not body.get("contents"):
        return error(400, "* GenerateContentRequest.contents: contents is not specified")
    streamed = match["op"] == "streamGenerateContent"
    if streamed and request.query.get("alt") != "sse":
        return error(400, "This fake server streams with ?alt=sse only.")
    return _generate(body, unquote(match["model"]), request.digest, streamed)


def _field(node: Any, name: str) -> Any:
    """A field by its proto JSON name, camelCase or snake_case (the API accepts both, SDKs send both)."""
    if not isinstance(node, dict):
        return None
    if name in node:
        return node[name]
    return node.get(re.sub(r"[A-Z]", lambda upper: "_" + upper.group().lower(), name))


def conversation(body: dict[str, Any]) -> Conversation:
    system = _field(body, "systemInstruction")
    texts = [_text(_field(system, "parts"))] if isinstance(system, dict) else []
    called: set[str] = set()
    for content in body["contents"]:
        parts = [part for part in _field(content, "parts") or () if isinstance(part, dict)]
        called.update(str(_field(_field(part, "functionCall"), "name")) for part in parts if isinstance(_field(part, "functionCall"), dict))
        results = [_field(part, "functionResponse") for part in parts if isinstance(_field(part, "functionResponse"), dict)]
        texts.append(json.dumps(results[-1].get("response"), sort_keys=True) if results else _text(parts))
    tools = [
        Tool(declaration["name"], _field(declaration, "parametersJsonSchema") or declaration.get("parameters") or {})
        for tool in body.get("tools") or ()
        for declaration in _field(tool, "functionDeclarations") or ()
        if isinstance(declaration, dict) and "name" in declaration
    ]
    calling = _field(_field(body, "toolConfig"), "functionCallingConfig") or {}
    mode = str(calling.get("mode", "")).upper()
    allowed = _field(calling, "allowedFunctionNames") or []
    config = _field(body, "generationConfig") or {}
    schema = _field(config, "responseJsonSchema") or _field(config, "responseSchema")
    return Conversation(
        texts=texts,
        tools=tools,
        called=called,
        forced=allowed[0] if mode == "ANY" and len(allowed) == 1 else None,
        required=mode == "ANY",
        no_tools=mode == "NONE",
        output_schema=schema if isinstance(schema, dict) else None,
        json_mode=_field(config, "responseMimeType") == "application/json",
    )


def _text(parts: Any) -> str:
    return "".join(part.get("text", "") for part in parts or () if isinstance(part, dict) and isinstance(part.get("text"), str))


def _generate(body: dict[str, Any], model: str, digest: str, streamed: bool) -> Response:
    talk = conversation(body)
    reply = answer(talk)
    prompt_tokens, output_tokens = talk.prompt_tokens, reply.output_tokens

    def chunk(parts: list[dict[str, Any]], finished: bool, candidates_tokens: int | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finished:
            candidate["finishReason"] = "STOP"
        usage: dict[str, Any] = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens + (candidates_tokens or 0)}
        if candidates_tokens is not None:
            usage["candidatesTokenCount"] = candidates_tokens
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt_tokens}]
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": digest[:22]}

    calls: list[dict[str, Any]] = [{"functionCall": {"name": call.name, "args": call.arguments}} for call in reply.calls]
    if not streamed:
        parts = calls or [{"text": reply.text or ""}]
        return Response(200, dumps(chunk(parts, True, output_tokens)))
    if calls:
        chunks = [chunk(calls, True, output_tokens)]
    else:
        pieces = reply.pieces() or [""]
        chunks = [chunk([{"text": piece}], index == len(pieces) - 1, output_tokens if index == len(pieces) - 1 else None) for index, piece in enumerate(pieces)]
    return Response(200, events=[sse(data, newline=b"\r\n") for data in chunks])


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    status_name = STATUSES.get(status) or ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    return {"error": {"code": status, "message": message or STATUS_PHRASES.get(status, "Error"), "status": status_name}}


def error(status: int, message: str) -> Response:
    return Response(status, dumps(error_body(status, message)))
