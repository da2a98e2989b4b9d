"""Request -> canonical key, and what to say when a key has no recording.

Two requests match when they have the same method, path, query (key-like parameters aside; for
Azure this is the api-version) and the same JSON body up to key order and whitespace. Headers
and the host never matter: they change between runs, machines and Azure resources without
changing what is asked. The key is a short blake2b digest, computed once per request.

Volatile fields never decide a match: the per-run ones SDKs and frameworks are known to send
(`VOLATILE_FIELDS`, always), and those a test or suite names by JSON path (`FieldPath`: ``a.b``,
``messages[*].content``, ``input[0]``) or rewrites with its own function (`Normalizer`).
"""
from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pytest_llmcache.bodies import decode_body, parse_json
from pytest_llmcache.scrubbing import KEY_LIKE_PARAM

__all__ = ["VOLATILE_FIELDS", "FieldPath", "Normalizer", "RequestView", "closest", "request_key"]

_EXCERPT = 60
_MAX_DIFF_LINES = 40
# Top-level body fields that change on every run without changing what is asked: openai-agents
# sends a fresh random prompt_cache_key per run. Left out of every key, stored and live alike.
VOLATILE_FIELDS = ("prompt_cache_key",)
_VOLATILE = frozenset(VOLATILE_FIELDS)
_PATH_TOKEN = re.compile(r"(\.?)([^.\[\]\s]+)|\[(\*|-?\d+)\]")
_ALL = "*"


@dataclass(frozen=True)
class FieldPath:
    """A JSON path naming body fields to ignore: names joined by dots, ``[N]`` for one list item
    (``[-1]`` the last), ``[*]`` for all of them (``metadata.request_id``, ``messages[*].content``)."""

    parts: tuple[str | int, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> FieldPath:
        """The path in `text`; ValueError naming it when it is not one."""
        parts: list[str | int] = []
        position = 0
        for match in _PATH_TOKEN.finditer(text):
            dot, name, index = match.groups()
            # A name starts the path or follows a dot; nothing else may sit between tokens.
            if match.start() != position or (name is not None and bool(dot) != bool(parts)):
                break
            parts.append(name if name is not None else (_ALL if index == _ALL else int(index)))
            position = match.end()
        if not parts or position != len(text):
            raise ValueError(f"{text!r} is not a field path: use names joined by dots, [N] or [*] for list items (e.g. messages[*].content)")
        return cls(tuple(parts), text)

    def without(self, document: Any) -> Any:
        """`document` without the fields this path names; what is not on the path is shared, not copied."""
        return _without(document, self.parts)

    def values(self, document: Any) -> list[Any]:
        """The values this path names in `document` (none when it names nothing)."""
        found = [document]
        for part in self.parts:
            found = [item for value in found for item in _children(value, part)]
        return found


def _children(value: Any, part: str | int) -> list[Any]:
    if isinstance(value, list) and not isinstance(part, str):
        return [value[part]] if -len(value) <= part < len(value) else []
    if isinstance(value, list) and part == _ALL:
        return list(value)
    if isinstance(value, dict) and isinstance(part, str) and part in value:
        return [value[part]]
    return []


def _without(value: Any, parts: tuple[str | int, ...]) -> Any:
    part, rest = parts[0], parts[1:]
    if isinstance(value, dict) and isinstance(part, str) and part in value:
        if not rest:
            return {name: item for name, item in value.items() if name != part}
        return {**value, part: _without(value[part], rest)}
    if isinstance(value, list) and part == _ALL:
        return [] if not rest else [_without(item, rest) for item in value]
    if isinstance(value, list) and isinstance(part, int) and -len(value) <= part < len(value):
        index = part % len(value)
        if not rest:
            return value[:index] + value[index + 1 :]
        return [*value[:index], _without(value[index], rest), *value[index + 1 :]]
    return value


@dataclass(frozen=True)
class Normalizer:
    """What a test's matching ignores beyond `VOLATILE_FIELDS`: field paths, then a function that
    gets a copy of the parsed JSON body and returns the body to match on (e.g. today's date in a
    prompt replaced by a fixed string). Bodies that are not JSON are matched as they are."""

    fields: tuple[FieldPath, ...] = ()
    function: Callable[[Any], Any] | None = None

    def __bool__(self) -> bool:
        return bool(self.fields) or self.function is not None

    def __call__(self, document: Any) -> Any:
        for path in self.fields:
            document = path.without(document)
        if self.function is not None:
            document = self.function(copy.deepcopy(document))
        return document

    def differing(self, recorded: Any, sent: Any) -> list[str]:
        """The ignored fields (built-in and named) whose values differ between two bodies."""
        paths = [FieldPath((name,), name) for name in VOLATILE_FIELDS] + list(self.fields)
        return [path.text for path in paths if path.values(recorded) != path.values(sent)]


# What json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False) builds
# on every call, built once.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# The C encoder behind it, made once and without the check for reference cycles: for documents a
# JSON or YAML parser made, which have none (JSONEncoder.encode's Python layers cost about a
# quarter of encoding a chat request).
_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)  # None without CPython's _json
_ACYCLIC = _C_ENCODER(None, _CANONICAL.default, json.encoder.encode_basestring, None, ":", ",", True, False, True) if _C_ENCODER else None


def _canonical_json(document: Any, parsed: bool = False) -> bytes:
    """`document` as canonical JSON; `parsed`: made by a parser, so without reference cycles."""
    if parsed and _ACYCLIC is not None:
        return "".join(_ACYCLIC(document, 0)).encode("utf-8")
    return _CANONICAL.encode(document).encode("utf-8")


@functools.lru_cache(maxsize=1024)  # a test sends the same few URLs again and again
def _target(uri: str) -> str:
    """Path and sorted query without the key-like parameters."""
    parts = urlsplit(uri)
    query = sorted((name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if not KEY_LIKE_PARAM.search(name))
    return parts.path + ("?" + "&".join(f"{name}={value}" for name, value in query) if query else "")


def request_key(method: str, uri: str, body: bytes | None = None, document: Any = None, normalize: Normalizer | None = None) -> str:
    """The matching key of a request; pass the parsed JSON `document` instead of `body` if known."""
    if document is None and body:
        document = parse_json(body)
    if document is not None:
        if isinstance(document, dict) and not _VOLATILE.isdisjoint(document):
            document = {name: value for name, value in document.items() if name not in VOLATILE_FIELDS}
        # A normaliser may return any object: only a parsed document skips the cycle check.
        content = _canonical_json(normalize(document)) if normalize else _canonical_json(document, parsed=True)
    else:
        content = body or b""
    digest = hashlib.blake2b(_key_prefix(method, uri), digest_size=16)
    digest.update(content)
    return digest.hexdigest()


@functools.lru_cache(maxsize=1024)
def _key_prefix(method: str, uri: str) -> bytes:
    """What a key hashes before the body: the method and the target (`_target`)."""
    return f"{method.upper()} {_target(uri)}\n".encode()


def stored_request_key(request: dict[str, Any], normalize: Normalizer | None = None) -> str:
    """The matching key of a request as stored in a cassette."""
    stored = request["body"]
    if isinstance(stored, dict) and "json" in stored:
        return request_key(request["method"], request["uri"], document=stored["json"], normalize=normalize)
    return request_key(request["method"], request["uri"], decode_body(stored), normalize=normalize)


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
        lines = [*lines[:_MAX_DIFF_LINES], f"... ({len(lines) - _MAX_DIFF_LINES} more diff lines)"]
    return lines
