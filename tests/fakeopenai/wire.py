"""What every API of the fake server shares: the request and response records, byte helpers, and the
one answering policy (a `Conversation` in, an `Answer` out) that each API translates from and to its
own wire format.

The policy is deterministic, so a recording is reproducible byte for byte: a request offering tools
gets a call to the first tool not yet called in the conversation (or the forced one); after that, a
text answer: ``echo: <last message text>``, or an instance of the requested JSON schema. Arguments and
schema instances are built from the schema (`example_of`), strings holding the last message's text.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

# Fixed so that identical requests produce identical response bytes.
CREATED = 1_700_000_000
EMPTY_MARKER = "[[empty]]"


@dataclass
class ReceivedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None when it is not one."""
        try:
            body = self.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    @property
    def digest(self) -> str:
        """A hash of method, path, query and body: the seed of every id in the answer."""
        query = "&".join(f"{key}={value}" for key, value in sorted(self.query.items()))
        head = f"{self.method} {self.path}?{query}\n".encode()
        return hashlib.sha256(head + self.body).hexdigest()


@dataclass(frozen=True)
class Response:
    """What the server sends: a body, or SSE events sent chunked."""

    status: int
    body: bytes = b""
    events: list[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Tool:
    name: str
    schema: dict[str, Any]  # JSON schema of the arguments


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass
class Conversation:
    """A chat request, whatever its API: what the policy needs to answer it."""

    texts: list[str]  # every message's text, system first, for the token counts
    tools: list[Tool] = field(default_factory=list)
    called: set[str] = field(default_factory=set)  # tools the conversation already called
    forced: str | None = None  # the tool the request forces
    required: bool = False  # some tool must be called ("required" / "any")
    no_tools: bool = False  # tool_choice "none"
    output_schema: dict[str, Any] | None = None  # a JSON schema the answer must follow
    json_mode: bool = False  # any JSON object will do

    @property
    def last_text(self) -> str:
        return self.texts[-1] if self.texts else ""

    @property
    def prompt_tokens(self) -> int:
        return sum(len(text) for text in self.texts) // 4 + 1


@dataclass(frozen=True)
class Answer:
    """The assistant's turn: text (None for an empty answer) or tool calls."""

    text: str | None = None
    calls: tuple[ToolCall, ...] = ()

    @property
    def output_tokens(self) -> int:
        if self.calls:
            return sum(len(call.arguments_json) for call in self.calls) // 4 + 1
        return len(self.text.split()) if self.text else 0

    def pieces(self) -> list[str]:
        """The text cut into streamed deltas; joined, they give the text back exactly."""
        return split_words(self.text or "")


def answer(conversation: Conversation) -> Answer:
    """The one answering policy (see the module docstring)."""
    tools = {tool.name: tool for tool in conversation.tools}
    if tools and not conversation.no_tools:
        if conversation.forced in tools:
            return _call(tools[conversation.forced], conversation)
        uncalled = [tool for tool in conversation.tools if tool.name not in conversation.called]
        if uncalled:
            return _call(uncalled[0], conversation)
        if conversation.required:
            return _call(conversation.tools[-1], conversation)
    if EMPTY_MARKER in conversation.last_text:
        return Answer(None)
    if conversation.output_schema is not None:
        return Answer(json.dumps(example_of(conversation.output_schema, conversation.last_text)))
    if conversation.json_mode:
        return Answer(json.dumps({"answer": "echo: " + conversation.last_text}))
    return Answer("echo: " + conversation.last_text)


def _call(tool: Tool, conversation: Conversation) -> Answer:
    arguments = example_of(tool.schema, conversation.last_text)
    return Answer(calls=(ToolCall(tool.name, arguments if isinstance(arguments, dict) else {}),))


def example_of(schema: Any, text: str, root: Any = None) -> Any:
    """A deterministic instance of a JSON schema (or Gemini's upper-case OpenAPI subset): every
    property filled, the first option of a union or enum, strings holding `text`."""
    root = schema if root is None else root
    if not isinstance(schema, dict):
        return text
    if "$ref" in schema:
        return example_of(_resolve(root, schema["$ref"]), text, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for union in ("anyOf", "oneOf", "allOf", "any_of"):
        options = [option for option in schema.get(union) or () if _type_of(option) != "null"]
        if options:
            return example_of(options[0], text, root)
    kind = _type_of(schema)
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {name: example_of(sub, text, root) for name, sub in properties.items()}
    if kind == "array":
        return [example_of(schema.get("items") or {}, text, root)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text


def _type_of(schema: Any) -> str | None:
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((item for item in kind if str(item).lower() != "null"), "null")
    return str(kind).lower() if kind is not None else None


def _resolve(root: Any, reference: str) -> Any:
    node = root
    for part in reference.removeprefix("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node


def split_words(text: str) -> list[str]:
    """Words keeping their leading whitespace (and trailing whitespace on the last one)."""
    return re.findall(r"\s*\S+(?:\s+$)?", text)


def dumps(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def sse(data: Any, event: str | None = None, newline: bytes = b"\n") -> bytes:
    """One server-sent event: an optional `event:` line, then `data:` (JSON unless bytes or str)."""
    payload = data.encode() if isinstance(data, str) else dumps(data)
    head = b"event: " + event.encode() + newline if event else b""
    return head + b"data: " + payload + newline + newline


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, dumps(body), headers=dict(headers or {}))
