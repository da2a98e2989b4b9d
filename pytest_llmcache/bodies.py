"""HTTP bodies <-> their readable cassette form, byte for byte.

A stored body is a mapping with exactly one of:

- ``json``: the parsed document, plus ``layout`` naming how to re-serialise it (see `_LAYOUTS`);
  used only when re-serialising reproduces the original bytes exactly;
- ``sse``: a complete server-sent-events stream as text (its last event ends with a blank line;
  a stream cut short is stored as ``string``, so a cut in the file itself is reported);
- ``string``: any other UTF-8 text;
- ``base64``: anything else.

`decode_body(encode_body(raw, content_type)) == raw` for every `raw`.
"""
from __future__ import annotations

import base64
import binascii
import importlib
import json
import re
import zlib
from typing import Any
from collections.abc import Callable, Iterable

from pytest_llmcache.blockyaml import JSONText, json_text

__all__ = ["StoredBody", "decode_body", "decompress", "encode_body", "indented_members", "json_text_of", "parse_json"]

StoredBody = dict[str, Any]

# Name -> json.dumps arguments; tried in order, the first one reproducing the bytes wins.
_LAYOUTS: dict[str, dict[str, Any]] = {
    "compact": {"separators": (",", ":")},
    "spaced": {"separators": (", ", ": ")},
    "indent=2": {"indent": 2},
    "indent=4": {"indent": 4},
}
# Escaped lone surrogates (not in a high+low pair) parse into str values that can't be written as UTF-8.
_LONE_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<![0-9a-fA-F]{2})\\u[dD][c-fC-F]")


# Deeper JSON is kept as text: every reader (blockyaml, PyYAML, json) then reads what the writer
# wrote at any stack depth, and the same body is keyed the same way when recorded and replayed.
MAX_JSON_DEPTH = 100


_DECODER = json.JSONDecoder()  # json.loads' own, without its per-call checks (every request body is parsed)


def parse_json(raw: bytes) -> Any:
    """The JSON document in `raw`, or None when `raw` is not (a JSON object or array) or is
    nested deeper than `MAX_JSON_DEPTH`."""
    stripped = raw.lstrip()
    if not stripped or stripped[:1] not in (b"{", b"["):
        return None
    try:
        # json.loads(raw) without its layers: text starting with "{" or "[" (after ASCII spaces)
        # and no NUL after that is read as UTF-8 there too (json.detect_encoding).
        document = _DECODER.decode(raw.decode("utf-8", "surrogatepass")) if raw[1:2] != b"\0" else json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: far deeper than MAX_JSON_DEPTH
        return None
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH and _depth_exceeds(document, MAX_JSON_DEPTH):
        return None
    return document


def _depth_exceeds(document: Any, limit: int) -> bool:
    """Whether `document` nests lists and objects more than `limit` levels (without recursing)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack += [(child, depth + 1) for child in children if isinstance(child, (dict, list))]
    return False


def _dumps(document: Any, layout: str) -> bytes:
    """`document` serialised in `layout`; a JSONText (the exact text, read from a cassette that
    stored it verbatim) is that text, with the layout's final newline."""
    name, *flags = str(layout).split() or [""]
    if name not in _LAYOUTS:
        raise ValueError(f"unknown JSON layout {layout!r}; known: {', '.join(_LAYOUTS)}")
    text = document if type(document) is JSONText else json.dumps(document, ensure_ascii="ascii" in flags, **_LAYOUTS[name])
    return (text + "\n" if "newline" in flags else text).encode("utf-8")


def json_text_of(stored: StoredBody) -> JSONText | None:
    """The exact text of a stored pretty-printed (indented) JSON body, as a JSONText that a
    cassette holds verbatim (YAML reads it as the same document, and replay needs no parsing
    nor serialising); None for other bodies, or text YAML would not read alike."""
    layout = str(stored.get("layout", ""))
    if "json" not in stored or not layout.startswith("indent="):
        return None
    document = stored["json"]
    if type(document) is JSONText:
        return document
    text = _dumps(document, layout).decode("utf-8").removesuffix("\n")
    try:
        return json_text(text)
    except ValueError:
        return None


def indented_members(stored: StoredBody, names: Iterable[str]) -> dict[str, Any] | None:
    """The members `names` (those present) of the JSON object of a stored body kept as its exact
    indented text (`json_text_of`), read without parsing the rest of it: json.dumps with an indent
    of N starts every member of the top-level object on a line of its own indented by N spaces, and
    no other line so (nested lines are indented further; no string holds a line break). None for
    any other body."""
    text, layout = stored.get("json"), str(stored.get("layout", "")).split()
    if type(text) is not JSONText or not text.startswith("{") or not layout or not layout[0].startswith("indent=") or layout[0] not in _LAYOUTS:
        return None
    lead = "\n" + " " * int(layout[0].removeprefix("indent=")) + '"'
    found = {}
    for name in names:
        key = lead + json.dumps(name, ensure_ascii="ascii" in layout)[1:] + ": "
        start = text.find(key)
        if start < 0:
            continue
        end = text.find(lead, start + len(key))  # the next member, else the object's closing line
        value = text[start + len(key) : end if end >= 0 else len(text) - 2]
        found[name] = json.loads(value.removesuffix(","))
    return found


def _layout_of(raw: bytes, document: Any) -> str | None:
    """The layout that re-serialises `document` to exactly `raw`, if any."""
    newline = raw.endswith(b"\n")
    ascii_only = raw.isascii()
    for name in _likely_layouts(raw):
        for ensure_ascii in (False, True) if ascii_only else (False,):
            layout = " ".join([name] + ["ascii"] * ensure_ascii + ["newline"] * newline)
            if _dumps(document, layout) == raw:
                return layout
    return None


def _likely_layouts(raw: bytes) -> list[str]:
    """The layout names, the one `raw` looks like first: each try is a whole serialisation."""
    if raw[1:2] != b"\n":
        return list(_LAYOUTS)
    first = "indent=4" if raw[2:6] == b"    " else "indent=2"
    return [first, *(name for name in _LAYOUTS if name != first)]


def encode_body(raw: bytes, content_type: str = "") -> StoredBody:
    """The readable stored form of `raw`."""
    if not raw:
        return {"string": ""}
    if "json" in content_type.lower() or raw[:1] in (b"{", b"["):
        document = parse_json(raw) if not _LONE_SURROGATE.search(raw) else None
        layout = _layout_of(raw, document) if document is not None else None
        if layout is not None:
            return {"json": document, "layout": layout}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode("ascii")}
    kind = "sse" if "text/event-stream" in content_type.lower() and _complete_stream(text) else "string"
    return {kind: text}


def _complete_stream(text: str) -> bool:
    """Whether every event of an SSE stream ends with its blank line (the spec drops a last event
    without one: a stream ending otherwise was cut)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").endswith("\n\n")


def decode_body(stored: Any) -> bytes:
    """The original bytes of a stored body. Raises ValueError for something that isn't one."""
    if stored is None:
        return b""
    if isinstance(stored, bytes):  # vcrpy's !!binary
        return stored
    if isinstance(stored, str):  # vcrpy request bodies are bare strings
        return stored.encode("utf-8")
    if not isinstance(stored, dict):
        raise ValueError(f"a body must be a mapping, not {type(stored).__name__}")
    if "json" in stored:
        return _dumps(stored["json"], stored.get("layout", "compact"))
    if "sse" in stored:
        if not isinstance(stored["sse"], str):
            raise ValueError(f"an sse body must be text, not {type(stored['sse']).__name__}")
        if stored["sse"] and not _complete_stream(stored["sse"]):
            raise ValueError(
                "its event stream is truncated (the last event does not end with a blank line); "
                "record it again, or restore the end of the sse block"
            )
        return stored["sse"].encode("utf-8")
    if "string" in stored:
        return decode_body(stored["string"])
    if "base64" in stored:
        try:
            return base64.b64decode(stored["base64"], validate=True)
        except (binascii.Error, TypeError) as err:
            raise ValueError(f"invalid base64 body: {err}") from None
    raise ValueError(f"a body needs one of json, sse, string, base64; found {', '.join(map(str, stored)) or 'nothing'}")


def decompress(raw: bytes, headers: dict[str, list[str]]) -> tuple[bytes, dict[str, list[str]]]:
    """`raw` and `headers` with the content-encoding undone, so cassettes stay readable (and the
    secret check sees the text).

    gzip and deflate always; br and zstd when their decoder is installed, which is also the only
    case in which httpx asks a server for them. The content-encoding header goes and
    content-length follows, so replayed responses stay consistent. An encoding that can't be
    undone is kept as it is.
    """
    values = next((values for name, values in headers.items() if name.lower() == "content-encoding"), None) or []
    values = [values] if isinstance(values, str) else values
    # Applied in the order listed ("gzip, gzip" twice): undone from the last; all or nothing.
    encodings = [item.strip().lower() for value in values for item in str(value).split(",") if item.strip().lower() not in ("", "identity")]
    decoders = [_DECODERS.get(encoding) for encoding in reversed(encodings)]
    if not raw or not encodings or None in decoders:
        return raw, headers
    decoded = raw
    try:
        for decoder in decoders:
            decoded = decoder(decoded)  # type: ignore[misc]
    except Exception:
        return raw, headers  # not what it claims to be: keep the bytes as they came
    kept = {name: values for name, values in headers.items() if name.lower() != "content-encoding"}
    for name in kept:
        if name.lower() == "content-length":
            kept[name] = [str(len(decoded))]
    return decoded, kept


def _inflate(raw: bytes) -> bytes:
    try:
        return zlib.decompress(raw)
    except zlib.error:
        return zlib.decompress(raw, -15)  # raw deflate, without the zlib header


def _optional_decoders() -> dict[str, Callable[[bytes], bytes]]:
    """The br and zstd decoders that are installed (C bindings first, then the alternatives)."""
    decoders: dict[str, Callable[[bytes], bytes]] = {}
    for encoding, modules in (("br", ("brotli", "brotlicffi")), ("zstd", ("compression.zstd", "backports.zstd"))):
        for module in modules:
            try:
                decoders[encoding] = importlib.import_module(module).decompress
                break
            except ImportError:
                continue
    return decoders


_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda raw: zlib.decompress(raw, 47),  # wbits 47: a gzip or a zlib header
    "x-gzip": lambda raw: zlib.decompress(raw, 47),
    "deflate": _inflate,
    **_optional_decoders(),
}
