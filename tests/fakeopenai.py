"""A real HTTP server on 127.0.0.1 that speaks enough of the OpenAI and Azure OpenAI APIs for tests.

Stdlib only. Default answers are deterministic (ids derive from a hash of the request, ``created`` is
fixed, no ``Date`` header) so that recorded responses are byte-for-byte reproducible. Tests can queue
scripted replies (errors, delays, dropped connections) with :meth:`FakeOpenAIServer.script`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import struct
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from http.client import responses as STATUS_PHRASES
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["FakeOpenAIServer", "ReceivedRequest", "Reply"]

# Fixed so that identical requests produce identical response bytes.
CREATED = 1_700_000_000
SYSTEM_FINGERPRINT = "fp_fakeopenai"
EMBEDDING_DIMENSIONS = 8
EMPTY_MARKER = "[[empty]]"

_OPENAI_ROUTES = {"/v1/chat/completions": "chat", "/v1/embeddings": "embeddings"}
_AZURE_ROUTE = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/(?P<op>chat/completions|embeddings)$")

# Error `type`/`code` the real API reports for these statuses; otherwise see _default_error_kind.
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
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
_SAFE_FILTER = {
    name: {"filtered": False, "severity": "safe"} for name in ("hate", "self_harm", "sexual", "violence")
}
_PROMPT_FILTER_RESULTS = [{"prompt_index": 0, "content_filter_results": _SAFE_FILTER}]


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


@dataclass(frozen=True)
class Reply:
    """A scripted answer for one request; build it with the classmethods."""

    status: int | None = None  # None: answer with the default behaviour
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    wait: float = 0.0  # seconds to sleep before answering
    disconnect: bool = False  # close the connection without answering

    @classmethod
    def error(
        cls,
        status: int,
        message: str | None = None,
        retry_after: float | None = None,
        retry_after_ms: float | None = None,
        type: str | None = None,
        code: str | None = None,
    ) -> Reply:
        default_type, default_code = _ERROR_KINDS.get(status, _default_error_kind(status))
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = _format_number(retry_after)
        if retry_after_ms is not None:
            headers["retry-after-ms"] = _format_number(retry_after_ms)
        message = message or STATUS_PHRASES.get(status, "Error")
        body = _error_body(message, type or default_type, code or default_code)
        return cls(status=status, body=body, headers=headers)

    @classmethod
    def delay(cls, seconds: float) -> Reply:
        return cls(wait=seconds)

    @classmethod
    def json(cls, status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls(status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def raw(cls, status: int, body: bytes, headers: dict[str, str] | None = None) -> Reply:
        """These exact body bytes (say, compressed, with a content-encoding header)."""
        return cls(status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def drop(cls) -> Reply:
        return cls(disconnect=True)


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes = b""
    events: list[bytes] | None = None  # SSE events, sent chunked instead of `body`
    headers: dict[str, str] = field(default_factory=dict)


class FakeOpenAIServer:
    """Threaded HTTP server answering OpenAI / Azure OpenAI chat and embeddings requests."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[ReceivedRequest] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        # Still valid after stop(), so tests can point clients at a dead server; start() again reuses the port.
        if self.port == 0:
            raise RuntimeError("FakeOpenAIServer has no port until start()")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def azure_endpoint(self) -> str:
        return self.url

    @property
    def hits(self) -> int:
        return len(self.requests)

    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            raise RuntimeError("FakeOpenAIServer is already started")
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        # A short poll interval keeps stop() fast; it is the serve loop's shutdown latency.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fakeopenai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in Reply.delay
        httpd.shutdown()
        httpd.server_close()
        # Pooled keep-alive connections would otherwise keep being served after stop().
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._script.clear()

    def _receive(self, request: ReceivedRequest) -> Reply | None:
        """Record the request and take the next scripted reply, atomically so both stay in order."""
        with self._lock:
            self.requests.append(request)
            return self._script.popleft() if self._script else None

    def _pause(self, seconds: float) -> bool:
        """Sleep unless the server stops first; True if it is still running."""
        return not self._stopping.wait(seconds)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], owner: FakeOpenAIServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._closed = False
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            if not self._closed:
                self._connections.add(connection)
                return
        # Accepted just before stop(): refuse to serve it.
        _shutdown_socket(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            self._closed = True
            connections, self._connections = self._connections, set()
        for connection in connections:
            _shutdown_socket(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (timeouts, stop()) are expected; anything else is a bug worth a traceback.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    # Headers and body go out in separate writes; with Nagle on, keep-alive requests stall on delayed ACKs.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        self.server.untrack(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_POST(self) -> None:
        owner = self.server.owner
        request = self._read_request()
        reply = owner._receive(request)
        if reply is not None and reply.wait and not owner._pause(reply.wait):
            reply = Reply.drop()
        if reply is not None and reply.disconnect:
            self.close_connection = True
            return
        if reply is not None and reply.status is not None:
            response = _Response(reply.status, _dumps(reply.body), headers=reply.headers)
        else:
            response = _default_response(request)
        self._send(response, _request_id(request))

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def _read_request(self) -> ReceivedRequest:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return ReceivedRequest(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            body=body,
        )

    def _send(self, response: _Response, request_id: str) -> None:
        streaming = response.events is not None
        headers = {
            "server": "fakeopenai",
            "content-type": "text/event-stream; charset=utf-8" if streaming else "application/json",
            "x-request-id": request_id,
        }
        headers.update({name.lower(): value for name, value in response.headers.items()})
        if streaming:
            headers["transfer-encoding"] = "chunked"
        else:
            headers["content-length"] = str(len(response.body))
        # send_response_only: the stdlib's send_response adds a Date header, which would break determinism.
        self.send_response_only(response.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        for event in response.events or []:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        self.wfile.write(b"0\r\n\r\n" if streaming else response.body)


def _default_response(request: ReceivedRequest) -> _Response:
    """The unscripted answer: route, authenticate, validate, then echo chat or hash embeddings."""
    openai_op = _OPENAI_ROUTES.get(request.path) if request.method == "POST" else None
    azure_match = _AZURE_ROUTE.match(request.path) if request.method == "POST" else None
    if openai_op is not None:
        deployment = None
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not request.headers.get("authorization", "").startswith("Bearer ") or not token:
            return _error(401, _MISSING_KEY_MESSAGE, "invalid_request_error", None)
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
        return _error(404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error", None)

    try:
        body = request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error", None)
    model = body.get("model") or deployment
    if not model:
        return _missing_parameter("model")
    digest = _request_digest(request)
    if op == "chat":
        return _chat_response(body, model, digest, azure=deployment is not None)
    return _embeddings_response(body, model)


def _chat_response(body: dict[str, Any], model: str, digest: str, azure: bool) -> _Response:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _missing_parameter("messages")
    texts = [_message_text(message) for message in messages]
    content = None if EMPTY_MARKER in texts[-1] else "echo: " + texts[-1]
    n = int(body.get("n") or 1)
    prompt_tokens = sum(len(text) for text in texts) // 4 + 1
    completion_tokens = n * len(content.split()) if content is not None else 0
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    base = {"id": f"chatcmpl-{digest[:29]}", "created": CREATED, "model": model}

    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return _Response(200, events=_chat_stream_events(base, content, n, usage, include_usage, azure))

    choices = []
    for index in range(n):
        choice: dict[str, Any] = {
            "index": index,
            "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
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
    return _Response(200, _dumps(completion))


def _chat_stream_events(
    base: dict[str, Any],
    content: str | None,
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
    # Pieces keep their leading whitespace so that joining the deltas gives back the exact content.
    pieces = re.findall(r"\s*\S+(?:\s+$)?", content) if content is not None else []
    for index in range(n):
        chunks.append(chunk([delta(index, {"role": "assistant", "content": "", "refusal": None})]))
        chunks.extend(chunk([delta(index, {"content": piece})]) for piece in pieces)
        chunks.append(chunk([delta(index, {}, "stop")]))
    if include_usage:
        chunks.append(chunk([], usage=usage))
    return [b"data: " + _dumps(data) + b"\n\n" for data in chunks] + [b"data: [DONE]\n\n"]


def _embeddings_response(body: dict[str, Any], model: str) -> _Response:
    inputs = _embedding_inputs(body.get("input"))
    if not inputs:
        return _missing_parameter("input")
    encoding_format = body.get("encoding_format", "float")
    if encoding_format not in ("float", "base64"):
        message = f"Invalid encoding_format: {encoding_format!r}."
        return _error(400, message, "invalid_request_error", None, "encoding_format")
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
    return _Response(200, _dumps(response))


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


def _message_text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part for part in content if isinstance(part, dict) and part.get("type") == "text"]
        return "".join(part.get("text", "") for part in parts)
    return ""  # e.g. assistant tool-call messages carry no content


def _request_digest(request: ReceivedRequest) -> str:
    query = "&".join(f"{key}={value}" for key, value in sorted(request.query.items()))
    head = f"{request.method} {request.path}?{query}\n".encode()
    return hashlib.sha256(head + request.body).hexdigest()


def _request_id(request: ReceivedRequest) -> str:
    return "req_" + _request_digest(request)[:32]


def _default_error_kind(status: int) -> tuple[str, str | None]:
    return ("server_error" if status >= 500 else "invalid_request_error"), None


def _error_body(message: str, type: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _error(status: int, message: str, type: str, code: str | None, param: str | None = None) -> _Response:
    return _Response(status, _dumps(_error_body(message, type, code, param)))


def _azure_error(status: int, code: str, message: str) -> _Response:
    # Azure's gateway errors carry only code and message.
    return _Response(status, _dumps({"error": {"code": code, "message": message}}))


def _missing_parameter(name: str) -> _Response:
    message = f"Missing required parameter: '{name}'."
    return _error(400, message, "invalid_request_error", "missing_required_parameter", name)


def _dumps(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _shutdown_socket(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the client
