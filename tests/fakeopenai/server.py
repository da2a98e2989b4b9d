"""The loopback server: a real threaded HTTP server on 127.0.0.1 that answers with the APIs of this
package (OpenAI and Azure OpenAI, Anthropic, Gemini), or with replies a test scripts.

Stdlib only. Default answers are deterministic (ids derive from a hash of the request, `created` is
fixed, no `Date` header) so that recorded responses are byte-for-byte reproducible. Tests can queue
scripted replies (errors, delays, dropped connections) with :meth:`FakeOpenAIServer.script`.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from typing_extensions import Self

from . import anthropic_api, gemini_api, openai_api
from .wire import ReceivedRequest, Response, dumps

__all__ = ["FakeOpenAIServer", "ReceivedRequest", "Reply"]

# How the other APIs shape an error body, from status and message.
_ERROR_BODIES: dict[str, Callable[[int, str | None], dict[str, Any]]] = {"anthropic": anthropic_api.error_body, "gemini": gemini_api.error_body}


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
        api: str = "openai",
    ) -> Reply:
        """An error reply shaped as `api` ("openai", "anthropic", "gemini") shapes its errors."""
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = _format_number(retry_after)
        if retry_after_ms is not None:
            headers["retry-after-ms"] = _format_number(retry_after_ms)
        if api == "openai":
            body = openai_api.error_body(message, status, type, code)
        else:
            body = _ERROR_BODIES[api](status, message)
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


class FakeOpenAIServer:
    """Threaded HTTP server answering OpenAI / Azure OpenAI, Anthropic and Gemini requests."""

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

    def start(self) -> Self:
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

    def __enter__(self) -> Self:
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
            response = Response(reply.status, dumps(reply.body), headers=reply.headers)
        else:
            response = _default_response(request)
        self._send(response, "req_" + request.digest[:32])

    # CONNECT too: a test can make the server the HTTPS proxy, to see which hosts code tries to reach.
    do_GET = do_PUT = do_PATCH = do_DELETE = do_CONNECT = do_POST

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
            path=self.path if self.command == "CONNECT" else parts.path,  # CONNECT: host:port
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            body=body,
        )

    def _send(self, response: Response, request_id: str) -> None:
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


def _default_response(request: ReceivedRequest) -> Response:
    """The unscripted answer: the first API that knows the path answers it."""
    for api in (anthropic_api, gemini_api, openai_api):
        response = api.route(request)
        if response is not None:
            return response
    return openai_api.not_found(request)


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _shutdown_socket(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the client
