"""Recorded interactions for tests, in the in-memory cassette shape (`cassette.load`'s): one home
for every test module that builds them by hand.

`interaction` is the general builder: request and response bodies are given as JSON documents
(stored the way a recording stores them), raw text / bytes, or an already stored body mapping.
`chat` builds a whole chat exchange (JSON, SSE stream or error); `completion` and `sse` build
response bodies.
"""
from __future__ import annotations

import json
import re
from typing import Any

from pytest_llmcache.bodies import encode_body

OPENAI_CHAT_URI = "https://api.openai.test/v1/chat/completions"
AZURE_CHAT_URI = "https://placeholder.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"

__all__ = ["AZURE_CHAT_URI", "OPENAI_CHAT_URI", "chat", "completion", "interaction", "sse", "vcrpy_interaction"]


def _stored(body: Any, content_type: str) -> dict[str, Any]:
    """A body as a recording stores it: a stored mapping as given, else encoded from its bytes."""
    if isinstance(body, dict) and len(body.keys() & {"json", "sse", "string", "base64"}) == 1 and set(body) <= {"json", "layout", "sse", "string", "base64"}:
        return body
    if body is None:
        return {"string": ""}
    if isinstance(body, (dict, list)):
        return encode_body(json.dumps(body, separators=(",", ":")).encode(), "application/json")
    return encode_body(body if isinstance(body, bytes) else str(body).encode(), content_type)


def interaction(
    request: Any = None,
    response: Any = None,
    *,
    uri: str = OPENAI_CHAT_URI,
    method: str = "POST",
    status: int = 200,
    request_headers: dict[str, list[str]] | None = None,
    response_headers: dict[str, list[str]] | None = None,
    content_type: str | None = None,
) -> dict[str, Any]:
    """One interaction. `request` / `response`: a JSON document, text or bytes (encoded as a
    recording would: `content_type` picks SSE), or a stored body mapping (``{"string": ...}``...).
    A `content_type` also becomes the response's content-type header unless headers are given."""
    if response_headers is None:
        response_headers = {"content-type": [content_type]} if content_type else {}
    return {
        "request": {"method": method, "uri": uri, "headers": request_headers or {}, "body": _stored(request, "application/json")},
        "response": {
            "status": {"code": status, "message": "OK" if status == 200 else ""},
            "headers": response_headers,
            "body": _stored(response, content_type or ""),
        },
    }


def sse(events: list[Any], done: bool = True) -> str:
    """A server-sent-events stream of `events` (JSON documents), with OpenAI's ``[DONE]``."""
    return "".join(f"data: {json.dumps(event)}\n\n" for event in events) + ("data: [DONE]\n\n" if done else "")


def completion(model: str, prompt_tokens: int | None, completion_tokens: int = 1, content: str = "ok") -> dict[str, Any]:
    """A chat completion response body."""
    body: dict[str, Any] = {
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }
    if prompt_tokens is not None:
        body["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
    return body


def chat(
    content: str = "Hi",
    answer: str = "Hello!",
    model: str = "gpt-4o-mini",
    usage: tuple[int, int] | None = (8, 2),
    uri: str = OPENAI_CHAT_URI,
    status: int = 200,
    stream: bool = False,
    headers: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """One chat exchange: the response names the dated snapshot ``<model>-2024-07-18``; a stream
    sends `answer` word by word and its usage in a last chunk; an error status answers with an
    OpenAI error object whose message is `answer`."""
    request: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
    answered_by = f"{model}-2024-07-18"
    usage_json = None if usage is None else {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    if status != 200:
        body: Any = {"error": {"message": answer, "type": "invalid_request_error", "code": "model_not_found"}}
        content_type = "application/json"
    elif stream:
        request["stream"] = True
        chunks = [{"model": answered_by, "choices": [{"index": 0, "delta": {"role": "assistant", "content": word}}]} for word in re.findall(r"\S+\s*", answer)]
        chunks[-1]["choices"][0]["finish_reason"] = "stop"
        chunks.append({"model": answered_by, "choices": [], "usage": usage_json})
        body, content_type = sse(chunks), "text/event-stream"
    else:
        message = {"role": "assistant", "content": answer}
        body = {"model": answered_by, "choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage_json}
        content_type = "application/json"
    return interaction(
        request,
        body,
        uri=uri,
        status=status,
        request_headers=headers or {"content-type": ["application/json"]},
        content_type=content_type,
    )


def vcrpy_interaction(uri: str, request: Any, response: Any, status: int = 200, parsed: bool = False) -> dict[str, Any]:
    """One interaction as vcrpy / pytest-recording write it (bare string bodies; bytes: a gzip
    body with its content-encoding), or as pydantic-ai does (`parsed`: ``parsed_body``), for
    cassettes written with ``yaml.safe_dump`` to test the readers of other tools' files."""
    request_part: dict[str, Any] = {"method": "POST", "uri": uri, "headers": {}}
    response_part: dict[str, Any] = {"status": {"code": status, "message": "OK"}, "headers": {}}
    if parsed:
        request_part["parsed_body"] = request
        response_part["parsed_body"] = response
    else:
        request_part["body"] = json.dumps(request)
        response_part["body"] = {"string": response if isinstance(response, (str, bytes)) else json.dumps(response)}
        if isinstance(response, bytes):
            response_part["headers"] = {"Content-Encoding": ["gzip"]}
    return {"request": request_part, "response": response_part}
