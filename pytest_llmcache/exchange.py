"""What one recorded interaction means: the one reading of a request/response pair.

`read_exchange` turns a cassette interaction (any flavour `cassette.load` reads) into an
`Exchange`: the provider and kind of call, whether the answer was streamed, the model asked for
and the one that answered, the Azure deployment, the request's messages or input, the answer put
back together (text, tool calls, refusal; embeddings' vector sizes), the usage, the status and the
error. `interpret` does the same from loose parts (a JSONL record of an exchange).

A streamed answer is recognised by its content as well as by its content-type: many public
cassettes keep no response headers. Which provider and endpoint kind a URL is, and where each kind
keeps its token counts, come from the provider table `pytest_llmcache.providers`. The session
report, every ``llmcache`` command and the token report read interactions only through here.
"""
from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from pytest_llmcache import providers
from pytest_llmcache.blockyaml import JSONText
from pytest_llmcache.bodies import decode_body, indented_members, parse_json

__all__ = [
    "ANTHROPIC_MESSAGES",
    "CHAT",
    "EMBEDDINGS",
    "GEMINI_GENERATE",
    "OTHER",
    "RESPONSES",
    "Answer",
    "ApiError",
    "Billing",
    "Exchange",
    "ModelTotals",
    "ToolCall",
    "Usage",
    "interpret",
    "parse_sse",
    "read_billing",
    "read_exchange",
    "tally",
]

# Kinds of call (`Exchange.kind`); the table's other endpoint kinds ("completions",
# "embedContent", ...) are kept under their own names, anything unknown is OTHER.
CHAT = "chat.completions"
RESPONSES = "responses"
EMBEDDINGS = "embeddings"
ANTHROPIC_MESSAGES = "messages"
GEMINI_GENERATE = "generateContent"
OTHER = "other"
_GEMINI_STREAM = "streamGenerateContent"  # a generateContent call whose answer is streamed

# An SSE stream's first line: a comment, or a field name and a colon.
_SSE_START = re.compile(r"\A(?:\ufeff)?\s*(?::|(?:data|event|id|retry):)")
_GEMINI_MODEL = re.compile(r"/models/([^/:]+):")


@dataclass(frozen=True)
class Usage:
    """Token counts a response reports: input (prompt) and output (completion) tokens."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class ToolCall:
    """One function call in an answer; `arguments` is the JSON text as the model wrote it."""

    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True)
class Answer:
    """The answer, put back together: text, refusal and tool calls of the first choice (or
    candidate), why it ended; for embeddings the dimension of each vector."""

    role: str | None = None
    text: str | None = None
    refusal: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    vectors: tuple[int, ...] = ()


@dataclass(frozen=True)
class ApiError:
    """The error object of an error response."""

    code: str | None
    message: str


@dataclass(frozen=True)
class Exchange:
    """One recorded request/response pair, interpreted."""

    index: int
    method: str
    uri: str
    status: int | None  # None: not recorded (some exchange dumps leave it out)
    provider: str  # `providers.Provider.name`: "openai", "azure", "anthropic", "gemini", "openai-compatible"
    kind: str  # CHAT, RESPONSES, EMBEDDINGS, ANTHROPIC_MESSAGES, GEMINI_GENERATE, another table kind, or OTHER
    streamed: bool
    model: str | None  # asked for: the body's model, else the Azure deployment or Gemini's path
    deployment: str | None  # the Azure deployment named in the URL
    response_model: str | None  # the one that answered, as the service named it (often a dated snapshot)
    request: Any = field(repr=False)  # the parsed JSON request body, None when it is not JSON
    answer: Answer = field(default_factory=Answer)
    usage: Usage | None = None
    error: ApiError | None = None
    readable: bool = True  # whether the response body could be read (JSON, or an event stream)

    @property
    def path(self) -> str:
        return urlsplit(self.uri).path

    @property
    def billed_model(self) -> str | None:
        """The model to count and price by: the one that answered, else the one asked for."""
        return self.response_model or self.model

    @property
    def succeeded(self) -> bool:
        return self.status in (None, 200) and self.error is None

    def sent(self, name: str) -> Any:
        """A top-level field of the JSON request body, None when absent or not JSON."""
        return self.request.get(name) if isinstance(self.request, dict) else None

    @property
    def messages(self) -> tuple[Mapping[str, Any], ...]:
        """Chat / Anthropic messages, or Gemini's contents, as sent (dict items only)."""
        found = self.sent("messages") if self.kind != GEMINI_GENERATE else self.sent("contents")
        return tuple(item for item in found if isinstance(item, dict)) if isinstance(found, list) else ()

    @property
    def input(self) -> Any:
        """The Responses API's or embeddings' ``input`` (a string or a list), as sent."""
        return self.sent("input")


# -- reading ----------------------------------------------------------------------------------


def read_exchange(interaction: Mapping[str, Any], index: int = 0) -> Exchange:
    """The `Exchange` of one interaction in the in-memory cassette shape (`cassette.load`)."""
    request, response = interaction["request"], interaction["response"]
    return interpret(
        index=index,
        method=str(request.get("method", "POST")),
        uri=str(request.get("uri", "")),
        status=_status(response.get("status")),
        request_headers=request.get("headers") or {},
        request_body=_request_document(request.get("body")),
        response_headers=response.get("headers") or {},
        response_body=_response_body(response),
    )


@dataclass(frozen=True)
class Billing:
    """What one exchange adds to the token totals (`tally`): as its `Exchange` says."""

    billed_model: str | None
    usage: Usage | None


def read_billing(uri: str, header_names: Iterable[str], response: Mapping[str, Any], whole_request: Callable[[], Mapping[str, Any]]) -> Billing:
    """`read_exchange(...)`'s billed model and usage, for the session report's tally at every
    test's teardown: from where the request went (its URI and header names) and the response; the
    whole request comes from `whole_request` only when its body is needed, that is when the
    response does not name the model that answered."""
    reply = _read_reply(uri, header_names, response.get("headers") or {}, _response_body(response), billing_only=True)
    if reply.answered_by is not None:
        return Billing(reply.answered_by, reply.usage)
    return Billing(_asked_model(_request_document(whole_request().get("body")), reply.path)[0], reply.usage)


def interpret(
    *,
    index: int,
    method: str,
    uri: str,
    status: int | None,
    request_headers: Mapping[str, Any],
    request_body: Any,
    response_headers: Mapping[str, Any],
    response_body: Any,
) -> Exchange:
    """The `Exchange` of loose parts: `request_body` the parsed JSON request (or None);
    `response_body` bytes, text, or an already parsed JSON document."""
    reply = _read_reply(uri, request_headers, response_headers, response_body)
    request = request_body if isinstance(request_body, (dict, list)) else None
    model, deployment = _asked_model(request, reply.path)
    return Exchange(
        index=index,
        method=method.upper(),
        uri=uri,
        status=status,
        provider=reply.provider,
        kind=reply.kind,
        streamed=reply.streamed,
        model=model,
        deployment=deployment,
        response_model=reply.answered_by,
        request=request,
        answer=reply.answer,
        usage=reply.usage,
        error=_error(reply.documents),
        readable=reply.readable,
    )


@dataclass(frozen=True)
class _Reply:
    """What a response says, given where its request went (all of an `Exchange` but the request's body)."""

    provider: str
    path: str  # the request's URL path, unquoted
    kind: str
    streamed: bool
    readable: bool
    documents: list[dict[str, Any]]
    answer: Answer
    answered_by: str | None
    usage: Usage | None


def _read_reply(uri: str, request_headers: Iterable[Any], response_headers: Mapping[str, Any], response_body: Any, billing_only: bool = False) -> _Reply:
    """`billing_only`: the answer is left empty where reading it costs more than the model and
    usage (chat completions: every test's tally reads one)."""
    provider, path, endpoint = _destination(uri, request_headers) if isinstance(request_headers, tuple) else _find_destination(uri, request_headers)
    kind = endpoint.kind if endpoint is not None else OTHER
    gemini_stream = kind == _GEMINI_STREAM
    if gemini_stream:
        kind = GEMINI_GENERATE
    reader = (_BILLING_READERS if billing_only else _READERS).get(kind, _other)
    spec = endpoint.usage if endpoint else _FALLBACK_USAGE
    if isinstance(response_body, _Verbatim):
        # The model and usage alone, when they are all the reader takes, of a large body (an
        # embeddings response's vectors: 3 MB parse in 13 ms, its two members read in 2); a small
        # one is faster parsed whole.
        text = response_body.stored["json"]
        members = indented_members(response_body.stored, ("model", spec.container)) if billing_only and reader is _other and len(text) > _LARGE_BODY else None
        response_body = _Parsed(members if members is not None else json.loads(text))
    documents, streamed, readable = _documents(response_body, _header(response_headers, "content-type"))
    streamed = streamed or gemini_stream
    answer, answered_by, usage = reader(documents, streamed, spec)
    return _Reply(provider.name, path, kind, streamed, readable, documents, answer, answered_by, usage)


def _find_destination(uri: str, request_headers: Iterable[Any]) -> tuple[providers.Provider, str, providers.Endpoint | None]:
    """Where a request went: its provider, URL path (unquoted) and that provider's endpoint there."""
    provider = providers.provider_for(uri, request_headers)
    path = unquote(urlsplit(uri).path)
    return provider, path, provider.endpoint(path)


# The report's tally reads one per replayed request, from the header names sent (a tuple): a suite
# sends the same few URLs with the same headers again and again.
_destination = functools.lru_cache(maxsize=256)(_find_destination)


def _asked_model(request: Any, path: str) -> tuple[str | None, str | None]:
    """The model asked for (the body's model, else the Azure deployment or Gemini's path) and the
    Azure deployment, from the parsed request body (None when it is not JSON)."""
    deployment = _deployment(path)
    asked = request.get("model") if isinstance(request, dict) else None
    gemini_model = _GEMINI_MODEL.search(path)
    return asked if isinstance(asked, str) and asked else deployment or (gemini_model.group(1) if gemini_model else None), deployment


@dataclass(frozen=True)
class _Parsed:
    document: Any


@dataclass(frozen=True)
class _Stream:
    text: str


_LARGE_BODY = 8192  # characters: about where reading two members of a body beats parsing it whole


@dataclass(frozen=True)
class _Verbatim:
    stored: dict[str, Any]  # a stored body whose JSON is still its exact indented text (a JSONText)


def _response_body(response: Mapping[str, Any]) -> Any:
    """A stored response body as `interpret` takes it: parsed JSON, JSON text as a cassette keeps
    it verbatim, a stream's text, or bytes."""
    stored = response.get("body")
    if isinstance(stored, dict) and "json" in stored:
        if type(stored["json"]) is JSONText:
            return _Verbatim(stored)
        return _Parsed(stored["json"])  # already parsed: no re-serialising of large bodies
    if isinstance(stored, dict) and isinstance(stored.get("sse"), str):
        return _Stream(stored["sse"])
    return _raw(stored)


def _raw(stored: Any) -> bytes:
    try:
        return decode_body(stored)
    except ValueError:
        return b""


def _status(status: Any) -> int | None:
    code = status.get("code") if isinstance(status, dict) else status
    return code if isinstance(code, int) else None


def _request_document(stored: Any) -> Any:
    if isinstance(stored, dict) and "json" in stored:
        return stored["json"]
    return parse_json(_raw(stored))


def _header(headers: Mapping[str, Any], name: str) -> str:
    for key, values in headers.items():
        if str(key).lower() == name:
            value = values[-1] if isinstance(values, list) and values else values
            return str(value or "")
    return ""


def parse_sse(text: str) -> list[Any]:
    """The JSON documents of the ``data:`` events of a server-sent-events stream ([DONE],
    comments and keep-alives aside)."""
    documents = []
    for event in text.replace("\r\n", "\n").replace("\r", "\n").split("\n\n"):
        data = "\n".join(line[5:].removeprefix(" ") for line in event.split("\n") if line.startswith("data:"))
        if data and data.strip() != "[DONE]":
            try:
                documents.append(json.loads(data))
            except ValueError:
                continue
    return documents


def _documents(body: Any, content_type: str) -> tuple[list[dict[str, Any]], bool, bool]:
    """(the response's JSON objects, streamed, readable). A stream gives one per event; a JSON
    array (Gemini's unless ``alt=sse``) one per item."""
    if isinstance(body, _Parsed):
        document = body.document
        return _objects(document if isinstance(document, list) else [document]), isinstance(document, list), True
    if isinstance(body, _Stream):
        return _objects(parse_sse(body.text)), True, True
    if isinstance(body, (dict, list)):  # a parsed JSON document (exchange dumps)
        return _objects(body if isinstance(body, list) else [body]), isinstance(body, list), True
    raw = body if isinstance(body, bytes) else str(body or "").encode("utf-8")
    text = raw.decode("utf-8", "replace")
    if "text/event-stream" in content_type.lower() or _SSE_START.match(text):
        return _objects(parse_sse(text)), True, True
    document = parse_json(raw)
    if document is None:
        return [], False, not raw
    return _objects(document if isinstance(document, list) else [document]), isinstance(document, list), True


def _objects(items: Iterable[Any]) -> list[dict[str, Any]]:
    return [item for item in items if isinstance(item, dict)]


def _deployment(path: str) -> str | None:
    """The Azure deployment in ``/openai/deployments/<name>/...``."""
    parts = path.split("/")
    if "deployments" not in parts[:-1]:
        return None
    return parts[parts.index("deployments") + 1] or None


def _list(value: Any) -> list[Any]:
    """`value` when it is a JSON array, else no items (a hand-edited cassette or an odd server may
    put a number or a string where a list of choices, parts or items belongs)."""
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _usage(spec: providers.Usage, document: Any) -> Usage | None:
    prompt, completion = spec.read(document)
    return None if prompt is None else Usage(prompt, completion or 0)


def _last_usage(spec: providers.Usage, documents: Iterable[Any]) -> Usage | None:
    found = None
    for document in documents:
        found = _usage(spec, document) or found
    return found


def _first_model(documents: Iterable[dict[str, Any]], name: str = "model") -> str | None:
    return next((document[name] for document in documents if _text(document.get(name))), None)


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _error(documents: list[dict[str, Any]]) -> ApiError | None:
    for document in documents:
        error = document.get("error")
        if isinstance(error, dict):
            code = error.get("code") or error.get("type") or error.get("status")
            return ApiError(None if code is None else str(code), str(error.get("message", "")))
        if isinstance(error, str) and error:
            return ApiError(None, error)
        inner = document.get("response")  # the Responses API's response.failed event
        if document.get("type") == "response.failed" and isinstance(inner, dict) and isinstance(inner.get("error"), dict):
            return ApiError(str(inner["error"].get("code") or "") or None, str(inner["error"].get("message", "")))
    return None


_Reading = tuple[Answer, str | None, Usage | None]


class _Calls:
    """Function calls put together from pieces (stream deltas), in the order of their index."""

    def __init__(self) -> None:
        self.slots: dict[Any, dict[str, str | None]] = {}

    def add(self, key: Any, *, call_id: Any = None, name: Any = None, arguments: Any = None) -> None:
        slot = self.slots.setdefault(key, {"id": None, "name": None, "arguments": ""})
        slot["id"] = _text(call_id) or slot["id"]
        slot["name"] = _text(name) or slot["name"]
        if arguments is not None:
            slot["arguments"] = (slot["arguments"] or "") + _arguments(arguments)

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(slot["name"] or "", slot["arguments"] or "", slot["id"]) for _, slot in sorted(self.slots.items(), key=_order))


def _order(item: tuple[Any, Any]) -> tuple[int, str]:
    key = item[0]
    return (key, "") if isinstance(key, int) else (1 << 30, str(key))


def _chat(documents: list[dict[str, Any]], streamed: bool, spec: providers.Usage) -> _Reading:
    role = text = refusal = finish = None
    calls = _Calls()
    for document in documents:
        for choice in _list(document.get("choices")):
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            finish = _text(choice.get("finish_reason")) or finish
            part = choice.get("delta") if streamed else choice.get("message")
            if not isinstance(part, dict):
                continue
            role = _text(part.get("role")) or role
            if isinstance(part.get("content"), str):
                text = (text or "") + part["content"] if streamed else part["content"]
            if isinstance(part.get("refusal"), str):
                refusal = (refusal or "") + part["refusal"] if streamed else part["refusal"]
            for position, call in enumerate(_list(part.get("tool_calls"))):
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    calls.add(call.get("index", position), call_id=call.get("id"), name=function.get("name"), arguments=function.get("arguments"))
            legacy = part.get("function_call")
            if isinstance(legacy, dict):
                calls.add("function_call", name=legacy.get("name"), arguments=legacy.get("arguments"))
    answer = Answer(role, text, refusal, calls.calls(), finish)
    return answer, _first_model(documents), _last_usage(spec, documents)


def _responses(documents: list[dict[str, Any]], streamed: bool, spec: providers.Usage) -> _Reading:
    """Responses API: the response object, or for a stream the one its last ``response.*`` event
    carries (response.completed); a stream cut before that is put together from its deltas."""
    final = None
    for document in documents:
        inner = document.get("response")
        if isinstance(inner, dict):
            final = inner
    if not streamed and documents:
        final = documents[-1]
    if final is not None and isinstance(final.get("output"), list) and (final.get("output") or not streamed):
        return _response_object(final, spec)
    # Deltas: text and refusal by output item, function calls by item.
    text = refusal = None
    calls = _Calls()
    for document in documents:
        kind = document.get("type")
        item = document.get("item")
        if kind == "response.output_text.delta" and isinstance(document.get("delta"), str):
            text = (text or "") + document["delta"]
        elif kind == "response.refusal.delta" and isinstance(document.get("delta"), str):
            refusal = (refusal or "") + document["delta"]
        elif kind == "response.output_item.added" and isinstance(item, dict) and item.get("type") == "function_call":
            calls.add(document.get("output_index"), call_id=item.get("call_id"), name=item.get("name"))
        elif kind == "response.function_call_arguments.delta":
            calls.add(document.get("output_index"), arguments=document.get("delta"))
    model = _text(final.get("model")) if final else None
    status = _text(final.get("status")) if final else None
    return Answer("assistant", text, refusal, calls.calls(), status), model, _usage(spec, final) if final else None


def _response_object(response: dict[str, Any], spec: providers.Usage) -> _Reading:
    texts: list[str] = []
    refusals: list[str] = []
    calls = []
    for item in _list(response.get("output")):
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            for part in _list(item.get("content")):
                if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif isinstance(part, dict) and part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                    refusals.append(part["refusal"])
        elif item.get("type") == "function_call":
            calls.append(ToolCall(str(item.get("name") or ""), _arguments(item.get("arguments", "")), _text(item.get("call_id"))))
    details = response.get("incomplete_details")
    finish = _text(details.get("reason")) if isinstance(details, dict) else None
    answer = Answer(
        "assistant",
        "".join(texts) if texts else None,
        "".join(refusals) if refusals else None,
        tuple(calls),
        finish or _text(response.get("status")),
    )
    return answer, _text(response.get("model")), _usage(spec, response)


def _anthropic(documents: list[dict[str, Any]], streamed: bool, spec: providers.Usage) -> _Reading:
    """Anthropic Messages: content blocks; a stream's message_start holds the model and the
    input tokens, its message_delta the stop reason and the (cumulative) output tokens."""
    if not streamed:
        message = documents[-1] if documents else {}
        return _anthropic_blocks(message.get("content"), message.get("stop_reason")), _text(message.get("model")), _usage(spec, message)
    start: dict[str, Any] = {}
    blocks: dict[Any, dict[str, Any]] = {}
    stop = None
    output = None
    for document in documents:
        kind = document.get("type")
        if kind == "message_start" and isinstance(document.get("message"), dict):
            start = document["message"]
        elif kind == "content_block_start" and isinstance(document.get("content_block"), dict):
            blocks[document.get("index")] = dict(document["content_block"], partial="")
        elif kind == "content_block_delta" and isinstance(document.get("delta"), dict):
            block = blocks.setdefault(document.get("index"), {"type": "text", "text": "", "partial": ""})
            delta = document["delta"]
            if isinstance(delta.get("text"), str):
                block["text"] = str(block.get("text") or "") + delta["text"]
            if isinstance(delta.get("partial_json"), str):
                block["partial"] += delta["partial_json"]
        elif kind == "message_delta":
            delta = document.get("delta")
            stop = _text(delta.get("stop_reason")) if isinstance(delta, dict) else stop
            _, output = spec.read(document)
    content = [dict(block, input=block["partial"]) if block.get("type") == "tool_use" else block for _, block in sorted(blocks.items(), key=_order)]
    started = _usage(spec, start)
    usage = None if started is None else Usage(started.input_tokens, output if output is not None else started.output_tokens)
    return _anthropic_blocks(content, stop), _text(start.get("model")), usage


def _anthropic_blocks(content: Any, stop: Any) -> Answer:
    texts, calls = [], []
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "tool_use":
            calls.append(ToolCall(str(block.get("name") or ""), _arguments(block.get("input", {})), _text(block.get("id"))))
    return Answer("assistant", "".join(texts) if texts else None, None, tuple(calls), _text(stop))


def _gemini(documents: list[dict[str, Any]], streamed: bool, spec: providers.Usage) -> _Reading:
    """Gemini generateContent: the first candidate's parts, over every chunk of a stream."""
    text = None
    finish = None
    calls = []
    for document in documents:
        for candidate in _list(document.get("candidates"))[:1]:
            if not isinstance(candidate, dict):
                continue
            finish = _text(candidate.get("finishReason")) or finish
            content = candidate.get("content")
            for part in _list(content.get("parts") if isinstance(content, dict) else None):
                if not isinstance(part, dict):
                    continue
                if isinstance(part.get("text"), str) and not part.get("thought"):
                    text = (text or "") + part["text"]
                call = part.get("functionCall")
                if isinstance(call, dict):
                    calls.append(ToolCall(str(call.get("name") or ""), _arguments(call.get("args", {})), _text(call.get("id"))))
    model = _first_model(documents, "modelVersion")
    return Answer("model", text, None, tuple(calls), finish), model, _last_usage(spec, documents)


def _embeddings(documents: list[dict[str, Any]], streamed: bool, spec: providers.Usage) -> _Reading:
    document = documents[-1] if documents else {}
    sizes = []
    for item in _list(document.get("data")):
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, list):
            sizes.append(len(vector))
        elif isinstance(vector, str):  # base64 of float32 values
            try:
                sizes.append(len(base64.b64decode(vector, validate=True)) // 4)
            except (binascii.Error, ValueError):
                sizes.append(0)
    return Answer(vectors=tuple(sizes)), _text(document.get("model")), _usage(spec, document)


def _other(documents: list[dict[str, Any]], streamed: bool, spec: providers.Usage) -> _Reading:
    """Also what a chat completion's billing reads: `_chat` takes its model and usage so."""
    return Answer(), _first_model(documents), _last_usage(spec, documents)


_READERS = {
    CHAT: _chat,
    "completions": _chat,
    RESPONSES: _responses,
    EMBEDDINGS: _embeddings,
    ANTHROPIC_MESSAGES: _anthropic,
    GEMINI_GENERATE: _gemini,
}
_BILLING_READERS = {**_READERS, CHAT: _other, "completions": _other, EMBEDDINGS: _other}
# A call of a kind the table does not know: usage read the way OpenAI-style APIs keep it.
_FALLBACK_USAGE = providers.Usage("usage", "prompt_tokens", "completion_tokens")


# -- totals -----------------------------------------------------------------------------------


@dataclass
class ModelTotals:
    """What the exchanges of one model add up to (the session report, list and stats)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    without_usage: int = 0  # errors, and streams recorded without their usage

    def add(self, other: ModelTotals) -> None:
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.without_usage += other.without_usage

    def as_json(self) -> dict[str, int]:
        return {"calls": self.calls, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "without_usage": self.without_usage}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> ModelTotals:
        return cls(int(document["calls"]), int(document["input_tokens"]), int(document["output_tokens"]), int(document["without_usage"]))


NO_MODEL = "(no model)"


def tally(exchanges: Iterable[Exchange | Billing], into: dict[str, ModelTotals] | None = None) -> dict[str, ModelTotals]:
    """Calls and tokens per billed model (`Exchange.billed_model`; NO_MODEL when none is known)."""
    totals = {} if into is None else into
    for exchange in exchanges:
        entry = totals.setdefault(exchange.billed_model or NO_MODEL, ModelTotals())
        entry.calls += 1
        if exchange.usage is None:
            entry.without_usage += 1
        else:
            entry.input_tokens += exchange.usage.input_tokens
            entry.output_tokens += exchange.usage.output_tokens
    return totals
