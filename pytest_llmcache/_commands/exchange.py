"""What one recorded interaction means: API type, endpoint, model, answer, usage, error.

Every command reads interactions through `Exchange.of`, so the cassette flavours (plain JSON,
SSE streams, Azure's empty-``choices`` filter chunk, base64 embeddings) are understood once.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pytest_llmcache.bodies import decode_body, parse_json
from pytest_llmcache.cassette import Interaction
from pytest_llmcache.scrubbing import is_azure

__all__ = ["Exchange", "endpoint_name", "parse_sse"]

# Path endings -> endpoint names, longest first so chat/completions wins over completions.
_ENDPOINTS = (
    ("/chat/completions", "chat.completions"),
    ("/embeddings", "embeddings"),
    ("/responses", "responses"),
    ("/completions", "completions"),
)


def parse_sse(text: str) -> list[Any]:
    """The JSON documents of the ``data:`` events in a server-sent-events stream ([DONE] aside)."""
    documents = []
    for event in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in event.split("\n") if line.startswith("data:"))
        if data and data != "[DONE]":
            try:
                documents.append(json.loads(data))
            except ValueError:
                continue  # a comment or keep-alive; not part of the answer
    return documents


def endpoint_name(path: str) -> str | None:
    """"chat.completions", "embeddings", "responses" or "completions" for an OpenAI API path."""
    return next((name for suffix, name in _ENDPOINTS if path.rstrip("/").endswith(suffix)), None)


def _deployment(path: str) -> str | None:
    """The Azure deployment in ``/openai/deployments/<name>/...``."""
    parts = path.split("/")
    return parts[parts.index("deployments") + 1] if "deployments" in parts[:-1] else None


def _header(headers: dict[str, list[str]], name: str) -> str:
    return next((values[-1] for key, values in headers.items() if key.lower() == name and values), "")


@dataclass
class Exchange:
    """One request/response pair of a cassette, interpreted."""

    index: int
    method: str
    uri: str
    status: int
    api: str  # "openai" or "azure"
    endpoint: str  # "chat.completions", "embeddings", ... or the path when unknown
    request: Any  # the parsed JSON request body, or None
    response: Any  # the parsed JSON response body; for a stream, the list of its chunks
    streamed: bool
    request_bytes: int = 0
    response_bytes: int = 0
    _answer: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, index: int, interaction: Interaction) -> Exchange:
        request, response = interaction["request"], interaction["response"]
        request_raw, response_raw = decode_body(request["body"]), decode_body(response["body"])
        streamed = "text/event-stream" in _header(response["headers"], "content-type").lower() or "sse" in response["body"]
        return cls(
            index=index,
            method=request["method"],
            uri=request["uri"],
            status=response["status"]["code"],
            api="azure" if is_azure(request["uri"]) else "openai",
            endpoint=endpoint_name(urlsplit(request["uri"]).path) or urlsplit(request["uri"]).path,
            request=parse_json(request_raw),
            response=parse_sse(response_raw.decode("utf-8", "replace")) if streamed else parse_json(response_raw),
            streamed=streamed,
            request_bytes=len(request_raw),
            response_bytes=len(response_raw),
        )

    # -- the request ------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return urlsplit(self.uri).path

    @property
    def model(self) -> str | None:
        """The model asked for: the body's ``model``, else the Azure deployment in the path."""
        if isinstance(self.request, dict) and isinstance(self.request.get("model"), str):
            return self.request["model"]
        return _deployment(self.path)

    @property
    def messages(self) -> list[Any] | None:
        messages = self.request.get("messages") if isinstance(self.request, dict) else None
        return messages if isinstance(messages, list) else None

    # -- the response -----------------------------------------------------------------------

    def _documents(self) -> list[dict[str, Any]]:
        documents = self.response if self.streamed else [self.response]
        return [document for document in documents or () if isinstance(document, dict)]

    @property
    def response_model(self) -> str | None:
        """The model the service says answered (a dated snapshot), if it said."""
        return next((d["model"] for d in self._documents() if isinstance(d.get("model"), str) and d["model"]), None)

    @property
    def billed_model(self) -> str | None:
        """The model to count and price by: the one that answered, else the one asked for."""
        return self.response_model or self.model

    @property
    def usage(self) -> dict[str, Any] | None:
        """The response's usage (for a stream, from the chunk that carries it), if any."""
        found = [d["usage"] for d in self._documents() if isinstance(d.get("usage"), dict)]
        return found[-1] if found else None

    @property
    def prompt_tokens(self) -> int | None:
        usage = self.usage or {}
        value = usage.get("prompt_tokens", usage.get("input_tokens"))
        return value if isinstance(value, int) else None

    @property
    def completion_tokens(self) -> int | None:
        usage = self.usage or {}
        value = usage.get("completion_tokens", usage.get("output_tokens"))
        if isinstance(value, int):
            return value
        return 0 if self.endpoint == "embeddings" and self.prompt_tokens is not None else None

    @property
    def error(self) -> dict[str, Any] | None:
        """The error object of an error response (``{"error": {...}}``), if this is one."""
        for document in self._documents():
            if isinstance(document.get("error"), dict):
                return document["error"]
        return None

    @property
    def answer(self) -> dict[str, Any]:
        """The first choice's message: role, content, refusal, tool_calls, finish_reason.

        For a stream the deltas are put back together, the way the SDK does.
        """
        if self._answer is None:
            self._answer = self._assemble()
        return self._answer

    def _assemble(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"role": None, "content": None, "refusal": None, "tool_calls": [], "finish_reason": None}
        calls: dict[int, dict[str, Any]] = {}
        for document in self._documents():
            for choice in document.get("choices") or ():
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                answer["finish_reason"] = choice.get("finish_reason") or answer["finish_reason"]
                part = choice.get("delta") if self.streamed else choice.get("message")
                if not isinstance(part, dict):
                    continue
                answer["role"] = part.get("role") or answer["role"]
                for name in ("content", "refusal"):
                    if isinstance(part.get(name), str):
                        answer[name] = (answer[name] or "") + part[name] if self.streamed else part[name]
                for position, call in enumerate(part.get("tool_calls") or ()):
                    function = call.get("function") if isinstance(call, dict) else None
                    if not isinstance(function, dict):
                        continue  # not a function call; nothing to put together
                    slot = calls.setdefault(call.get("index", position), {"id": None, "name": None, "arguments": ""})
                    slot["id"] = call.get("id") or slot["id"]
                    slot["name"] = function.get("name") or slot["name"]
                    slot["arguments"] += str(function.get("arguments") or "")
        answer["tool_calls"] = [calls[key] for key in sorted(calls)]
        return answer

    @property
    def embeddings(self) -> list[int]:
        """The dimension of each returned vector (base64 vectors are float32)."""
        data = self.response.get("data") if isinstance(self.response, dict) else None
        sizes = []
        for item in data or ():
            vector = item.get("embedding") if isinstance(item, dict) else None
            if isinstance(vector, list):
                sizes.append(len(vector))
            elif isinstance(vector, str):
                try:
                    sizes.append(len(base64.b64decode(vector)) // 4)
                except (binascii.Error, ValueError):
                    sizes.append(0)
        return sizes

    def summary(self) -> dict[str, Any]:
        """The JSON-ready description used by ``show --json``."""
        result: dict[str, Any] = {
            "index": self.index,
            "method": self.method,
            "path": self.path,
            "api": self.api,
            "endpoint": self.endpoint,
            "model": self.model,
            "response_model": self.response_model,
            "streamed": self.streamed,
            "status": self.status,
            "usage": self.usage,
        }
        if self.error is not None:
            result["error"] = self.error
        elif self.endpoint == "embeddings":
            result["embeddings"] = self.embeddings
        elif self.endpoint == "chat.completions":
            result["answer"] = self.answer
        return result
