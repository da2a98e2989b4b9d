"""Request -> canonical key, and what to say when a key has no recording.

Two requests match when they have the same method, path, query (key-like parameters aside; for
Azure this is the api-version) and the same JSON body up to key order and whitespace. Headers
and the host never matter: they change between runs, machines and Azure resources without
changing what is asked. The key is a short blake2b digest, computed once per request.
"""
from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

from pytest_llmcache.bodies import decode_body, parse_json
from pytest_llmcache.scrubbing import KEY_LIKE_PARAM

__all__ = ["RequestView", "closest", "request_key"]

_EXCERPT = 60
_MAX_DIFF_LINES = 40


def _canonical_json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _target(uri: str) -> str:
    """Path and sorted query without the key-like parameters."""
    parts = urlsplit(uri)
    query = sorted((name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if not KEY_LIKE_PARAM.search(name))
    return parts.path + ("?" + "&".join(f"{name}={value}" for name, value in query) if query else "")


def request_key(method: str, uri: str, body: bytes | None = None, document: Any = None) -> str:
    """The matching key of a request; pass the parsed JSON `document` instead of `body` if known."""
    if document is None and body:
        document = parse_json(body)
    content = _canonical_json(document) if document is not None else (body or b"")
    head = f"{method.upper()} {_target(uri)}\n".encode()
    return hashlib.blake2b(head + content, digest_size=16).hexdigest()


def stored_request_key(request: dict[str, Any]) -> str:
    """The matching key of a request as stored in a cassette."""
    stored = request["body"]
    if isinstance(stored, dict) and "json" in stored:
        return request_key(request["method"], request["uri"], document=stored["json"])
    return request_key(request["method"], request["uri"], decode_body(stored))


@dataclass(frozen=True)
class RequestView:
    """A request as shown in failure messages."""

    method: str
    uri: str
    body: bytes

    @classmethod
    def of_stored(cls, request: dict[str, Any]) -> RequestView:
        return cls(request["method"], request["uri"], decode_body(request["body"]))

    @property
    def target(self) -> str:
        return _target(self.uri)

    @property
    def document(self) -> Any:
        return parse_json(self.body)

    def summary(self) -> str:
        """Method, path, model and an excerpt of the last message (or embedding input)."""
        parts = [f"{self.method} {self.target}"]
        document = self.document
        if isinstance(document, dict):
            if "model" in document:
                parts.append(f"model={document['model']!r}")
            text = _last_text(document)
            if text is not None:
                excerpt = text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"
                parts.append(f"last message: {excerpt!r}")
        return "  ".join(parts)

    def pretty_body(self) -> list[str]:
        document = self.document
        if document is None:
            return self.body.decode("utf-8", "replace").splitlines()
        return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False).splitlines()


def _last_text(document: dict[str, Any]) -> str | None:
    messages = document.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        content = messages[-1].get("content")
        if isinstance(content, list):  # content parts
            content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
        return None if content is None else str(content)
    embedded = document.get("input")
    if isinstance(embedded, list) and embedded:
        embedded = embedded[-1]
    return embedded if isinstance(embedded, str) else None


def closest(sent: RequestView, recorded: Iterable[RequestView]) -> tuple[int, RequestView] | None:
    """The index and view of the recorded request most like `sent` (only computed on a miss)."""
    sent_body = "\n".join(sent.pretty_body())
    best: tuple[tuple[bool, bool, float], int, RequestView] | None = None
    for index, candidate in enumerate(recorded):
        matcher = difflib.SequenceMatcher(None, sent_body, "\n".join(candidate.pretty_body()), autojunk=False)
        score = (candidate.method == sent.method, candidate.target == sent.target, matcher.quick_ratio())
        if best is None or score > best[0]:
            best = (score, index, candidate)
    return None if best is None else (best[1], best[2])


def body_diff(recorded: RequestView, sent: RequestView) -> list[str]:
    """A unified diff of the two bodies (pretty, sorted JSON), recorded -> sent."""
    lines = list(difflib.unified_diff(recorded.pretty_body(), sent.pretty_body(), "recorded", "sent", lineterm="", n=2))
    if len(lines) > _MAX_DIFF_LINES:
        lines = lines[:_MAX_DIFF_LINES] + [f"... ({len(lines) - _MAX_DIFF_LINES} more diff lines)"]
    return lines
