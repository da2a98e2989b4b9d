"""Cassette files: load, iterate, save. The on-disk format is documented here.

A cassette is a UTF-8 YAML file, one per test::

    # pytest-llmcache cassette: recorded LLM API exchanges, replayed byte for byte.
    version: 1
    interactions:
    - request:
        method: POST
        uri: https://api.openai.test/v1/chat/completions       # host replaced by a placeholder
        headers: {content-type: application/json}              # scrubbed; one value or a list
        body: {json: {model: gpt-4o-mini, messages: [...]}, layout: compact}
      response:
        status: {code: 200, message: OK}
        headers: {content-type: application/json, retry-after: '2'}
        body: {json: {...}, layout: indent=2 newline}           # or {sse: ...}, {string: ...}, {base64: ...}
    # end of cassette

Bodies are described in `pytest_llmcache.bodies`. A pretty-printed JSON response body is written
as its own text (JSON is YAML too), after its layout, indented under ``json:``; replay takes the
bytes back by removing that indentation, without parsing them (see `Entry.replay`). The trailing comment marks a complete file: a
cassette starting with the header comment but missing it was truncated.

Each interaction is preceded by an index comment, ``# llmcache-key k1 <request key> <digest> y1``:
its matching key, a digest of its YAML text, and ``y1`` when that text is in the subset of YAML
that `pytest_llmcache.blockyaml` writes and reads (PyYAML reads it too; any other text is read by
PyYAML). `load_entries` reads a file by these comments alone and parses an interaction's YAML
only when it is needed (replayed, shown, re-keyed), so opening a 10,000-interaction cassette
costs a hash of the text, not a YAML parse. An interaction whose text no longer matches its
digest (edited by hand) is parsed and re-keyed. Plain vcrpy and pytest-recording cassettes
(string or ``!!binary`` bodies, gzip-encoded responses) and pydantic-ai style ``parsed_body``
load too, and are saved in this format once re-recorded.

In memory an interaction is a plain dict ``{"request": {...}, "response": {...}}`` shaped as
above, with every header value a list. YAML is read by blockyaml or a safe loader only.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import yaml

from pytest_llmcache import atomic, blockyaml
from pytest_llmcache.bodies import decode_body, decompress, encode_body, json_text_of
from pytest_llmcache.errors import CassetteError
from pytest_llmcache.matching import VOLATILE_FIELDS, stored_request_key

__all__ = [
    "FORMAT_VERSION",
    "Entry",
    "Interaction",
    "dumps",
    "load",
    "load_entries",
    "loads",
    "loads_entries",
    "request_body",
    "response_body",
    "save",
    "save_locked",
]

FORMAT_VERSION = 1
Interaction = dict[str, Any]

_HEADER = "# pytest-llmcache cassette: recorded LLM API exchanges, replayed byte for byte.\n"
# What files written before the header became provider-neutral start with: still read, and truncation still detected.
_HEADERS = (_HEADER, "# pytest-llmcache cassette: recorded OpenAI / Azure OpenAI exchanges, replayed byte for byte.\n")
_TRAILER = "# end of cassette\n"
_VERSION_LINES = f"version: {FORMAT_VERSION}\ninteractions:\n"
_PREAMBLE = _HEADER + _VERSION_LINES
_INDEX = "# llmcache-key "
# In the text `dumps` writes, the only line that is exactly this one starts an interaction's response.
_RESPONSE_LINE = "\n  response:\n"
# Bump when matching.request_key changes: stale keys in old files are then recomputed on load.
KEY_SCHEME = "k2"
# k1 keys counted the fields k2 ignores (matching.VOLATILE_FIELDS): still valid where none appears.
_K1 = "k1"
# How `dumps` writes a verbatim JSON response body (the last lines of an interaction).
_BODY_LINE = "\n    body:\n"  # a response's body (its request's is indented alike: look after the response line)
_VERBATIM_BODY = re.compile(r"\n    body:\n      layout: (indent=[0-9]+(?: [a-z]+)*)\n      json: ([{[])\n")
# ... and the line that ends it, and with it the interaction (when the body is last, as written).
_VERBATIM_END = {"{": "\n        }\n", "[": "\n        ]\n"}
# Marks an interaction whose text blockyaml wrote (and so reads), in the index comment.
_SUBSET = "y1"
# The head of a response as `dumps` writes it for nearly every recording: the status, then the
# headers, each a one-line scalar or a list of them (a repeated header). Replay reads it by these
# patterns alone, several times faster than blockyaml; any other text goes to blockyaml.
_KEY, _SCALAR = blockyaml.LINE_KEY, blockyaml.LINE_SCALAR
_RESPONSE_HEAD = re.compile(
    rf"  response:\n    status:\n      code: (0|[1-9][0-9]{{0,8}})\n      message: {blockyaml.LINE_SCALAR_GROUPS}\n"
    rf"    headers:(?: \{{\}}\n|\n((?:      {_KEY}:(?: {_SCALAR}\n|\n(?:      - {_SCALAR}\n)+))+))"
)
# Its lines once `_RESPONSE_HEAD` matched them: a list item's value, or a header's name and value
# (none for a list's first line).
_HEAD_LINE = re.compile(r"      (?:- ([^\n]*)|([^:\n]+):(?: ([^\n]*))?)\n")
# ... when none is a list item: a name, then a quoted value's text or a plain value (never empty).
_SCALAR_HEAD_LINE = re.compile(r"      ([^:\n]+): (?:'([^\n]*)'|([^\n]*))\n")
_LIST_ITEM_LINE = "\n      - "

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader, plus the harmless tags old vcrpy cassettes carry (no object is ever built)."""


_Loader.add_constructor("tag:yaml.org,2002:python/str", lambda loader, node: loader.construct_scalar(node))
_Loader.add_constructor("tag:yaml.org,2002:python/unicode", lambda loader, node: loader.construct_scalar(node))
_Loader.add_constructor("tag:yaml.org,2002:python/tuple", lambda loader, node: loader.construct_sequence(node))


_STR, _INT, _MAP, _SEQ = (f"tag:yaml.org,2002:{name}" for name in ("str", "int", "map", "seq"))


def _parse_yaml(text: str) -> Any:
    """`yaml.load(text, Loader=_Loader)`, faster on the replay path: the C parser builds the node
    tree, and the common node kinds become Python values directly; every other node goes through
    the safe constructor, as before."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, 2 * len(text) + 1000)
        return _build(node, loader)
    except TypeError as err:  # e.g. a list used as a mapping key
        raise yaml.YAMLError(f"unusable mapping key: {err}") from None
    except RecursionError:
        raise yaml.YAMLError("it is nested too deeply to be a cassette") from None
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, budget: int) -> None:
    """Refuses a document whose aliases expand to more values than its text could hold without
    them (a "billion laughs" file), before anything is built from it."""
    stack = [root]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise yaml.YAMLError("its aliases (*name) expand to far more values than the file holds (an alias bomb?)")
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack += (key, value)


# A JSON number PyYAML's YAML 1.1 resolver leaves a string (no dot: 9e-07); YAML 1.2 reads a float.
_DOTLESS_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)[eE][-+]?[0-9]+")


def _build(node: yaml.Node, loader: yaml.SafeLoader, in_flow: bool = False) -> Any:
    tag = node.tag
    if tag == _STR:
        if in_flow and not getattr(node, "style", None) and _DOTLESS_FLOAT.fullmatch(node.value):  # plain: None or ""
            return float(node.value)  # verbatim JSON (blockyaml.JSONText) is read as JSON
        return node.value
    flow = bool(getattr(node, "flow_style", False))
    if tag == _MAP and not any(key.tag == "tag:yaml.org,2002:merge" for key, _ in node.value):
        return {_build(key, loader): _build(value, loader, flow) for key, value in node.value}
    if tag == _SEQ:
        return [_build(item, loader, flow) for item in node.value]
    if tag == _INT and node.value.isdigit():
        return int(node.value)
    return loader.construct_object(node, deep=True)


class _Dumper(_BaseDumper):  # type: ignore[misc, valid-type]
    """Multi-line text as literal blocks, for readable streams; the emitter falls back to a quoted
    scalar whenever a block would not read back exactly (trailing spaces, carriage returns...)."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _represent_str)
# Only when blockyaml can't write an interaction: its verbatim JSON goes out as the document.
_Dumper.add_representer(blockyaml.JSONText, lambda dumper, text: dumper.represent_data(json.loads(text)))


class _Invalid(ValueError):
    """What is wrong with the document; turned into a CassetteError naming the file."""


@dataclass
class Entry:
    """One interaction of a cassette file; its YAML text is parsed on first use."""

    path: Path | str
    index: int
    text: str | None = None  # the YAML as written (None: built in memory or parsed from another flavour)
    key: str | None = None  # the matching key from the index comment, when it can be trusted
    in_subset: bool = False  # whether `text` is unedited blockyaml output (read without PyYAML)
    line: int = 0  # the line of the file on which `text` starts (from 0), for error positions
    _interaction: Interaction | None = field(default=None, repr=False)
    _response: dict[str, Any] | None = field(default=None, repr=False)  # the response part, as `replay` parsed it
    _parsed_request: dict[str, Any] | None = field(default=None, repr=False)  # then the request part, if asked for
    _known_digest: str | None = field(default=None, repr=False)  # of `text`, once computed or read from the index

    def _parse(self, text: str, json_text: bool = False) -> Any:
        if self.in_subset:
            try:
                return blockyaml.load(text, json_text)
            except blockyaml.Unsupported:
                pass  # not expected of an unedited file; PyYAML has the last word
            except RecursionError:  # a file of an older version, which wrote any depth
                raise yaml.YAMLError("it is nested too deeply to be a cassette") from None
        return _parse_yaml(text)

    @property
    def interaction(self) -> Interaction:
        if self._interaction is None:
            assert self.text is not None
            try:
                document = self._parse(self.text)
            except yaml.YAMLError as err:
                raise CassetteError(self.path, f"interaction #{self.index} is not valid YAML: {_in_file(err, self.line, self.path)}") from None
            self._interaction = _checked_interaction(document[0] if isinstance(document, list) and document else document, self.index, self.path)
        return self._interaction

    def replay(self) -> tuple[dict[str, Any], dict[str, list[str]], bytes]:
        """Status, headers and exact body bytes of the recorded response: all that replay needs.

        Before the interaction is parsed whole, only the response part of its text is parsed.
        """
        if self._interaction is not None:
            response = self._interaction["response"]
            return response["status"], response["headers"], decode_body(response["body"])
        assert self.text is not None
        # (The only such line: from the end, it is found past the request's lines.)
        start = self.text.rfind(_RESPONSE_LINE) if self.in_subset else self.text.find(_RESPONSE_LINE)
        if start < 0:
            self.interaction  # noqa: B018 - reports what is wrong with the text
            return self.replay()
        try:
            response, content = self._subset_response(start) or _response(self._parse(self.text[start + 1 :], json_text=True)["response"])
            self._response = response
        except yaml.YAMLError as err:
            where = _in_file(err, self.line + self.text.count("\n", 0, start + 1), self.path)
            raise CassetteError(self.path, f"interaction #{self.index} is not valid YAML: {where}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            problem = f"missing {err}" if isinstance(err, KeyError) else err
            raise CassetteError(self.path, f"interaction #{self.index} is malformed: {problem}") from None
        return response["status"], response["headers"], content

    def _subset_response(self, start: int) -> tuple[dict[str, Any], bytes] | None:
        """The response (in the in-memory shape) and its body's bytes, read from unedited `dumps`
        text by parts: its head (status and headers) by `_response_head`, else by blockyaml; a
        verbatim JSON body without going through its lines (see `_verbatim_body`), else the body's
        lines by blockyaml. None when the text is not in the subset, or a part is not as `dumps`
        writes it: the response is then read whole, as any YAML (and its errors reported)."""
        assert self.text is not None
        body = self.text.find(_BODY_LINE, start) if self.in_subset else -1
        if body < 0:
            return None
        stored = self._verbatim_body(body)
        head = _response_head(self.text, start + 1, body + 1)
        if stored is None and head is not None:
            try:  # the lines from the body's on, as the mapping they continue
                rest = blockyaml.load(self.text[body + 1 :], json_text=True)
            except (blockyaml.Unsupported, RecursionError):
                return None
            if not isinstance(rest, dict):
                return None
            status, headers = head
            return _response({"status": status, "headers": headers, **rest})
        if stored is None:
            return None
        if head is None:
            document = self._parse(self.text[start + 1 : body + 1])
            document["response"]["body"] = stored
            return _response(document["response"])
        status, headers = head
        return {"status": status, "headers": headers, "body": stored}, decode_body(stored)

    def _verbatim_body(self, body: int) -> dict[str, Any] | None:
        """The stored body whose ``body:`` line starts at `body` (a newline) when `dumps` wrote it
        verbatim, pretty-printed JSON kept as text (the bytes are the text, parsed only if asked
        for): such a body comes last, its layout first, each line of the JSON indented by 8 spaces,
        which are all that is removed. None otherwise."""
        assert self.text is not None
        verbatim = _VERBATIM_BODY.match(self.text, body)
        if verbatim is None:
            return None
        layout, opener = verbatim.groups()
        if not self.text.endswith(_VERBATIM_END[opener]):
            return None  # not last after all (an interaction built with its body first)
        text = self.text[verbatim.start(2) : -1].replace("\n        ", "\n")
        return {"layout": layout, "json": blockyaml.JSONText(text)}

    @property
    def request(self) -> dict[str, Any]:
        """The recorded request. Before the interaction is parsed whole, only its own lines are
        parsed (what keying it again needs)."""
        if self._interaction is not None or self.text is None or self.text.find(_RESPONSE_LINE) < 0:
            return self.interaction["request"]
        if self._parsed_request is None:
            self._parsed_request = self._request_part()
        return self._parsed_request

    @property
    def response(self) -> dict[str, Any]:
        """The recorded response as `replay` read it: a body kept as its exact JSON text stays a
        `blockyaml.JSONText` (`exchange` reads only the members it needs of a large one), where
        ``entry["response"]`` parses it."""
        if self._interaction is None and self._response is not None:
            return self._response
        response: dict[str, Any] = self["response"]
        return response

    def __getitem__(self, name: str) -> Any:
        """`entry["request"]` / `entry["response"]`, as on a plain interaction dict (after `replay`,
        the response it parsed is not parsed again, and the request alone is parsed for itself)."""
        if self._interaction is None and self._response is not None:
            if name == "response":
                body = self._response["body"]
                if isinstance(body.get("json"), blockyaml.JSONText):
                    self._response["body"] = {**body, "json": json.loads(body["json"])}
                return self._response
            if name == "request":
                return self.request
        return self.interaction[name]

    def _request_part(self) -> dict[str, Any]:
        """The request of an entry whose response `replay` parsed: only its own lines are parsed."""
        assert self.text is not None
        try:
            document = self._parse(self.text[: self.text.find(_RESPONSE_LINE) + 1])
            return _request(document[0]["request"])
        except yaml.YAMLError as err:
            raise CassetteError(self.path, f"interaction #{self.index} is not valid YAML: {err}") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            problem = f"missing {err}" if isinstance(err, KeyError) else err
            raise CassetteError(self.path, f"interaction #{self.index} is malformed: {problem}") from None

    @property
    def request_key(self) -> str:
        if self.key is None:
            self.key = stored_request_key(self.interaction["request"])
        return self.key

    @classmethod
    def of(cls, interaction: Interaction, path: Path | str = "<recorded>") -> Entry:
        """An interaction made in memory, serialised once: `dumps` writes this text."""
        text, in_subset = _chunk(_compact(interaction))
        return cls(path, -1, text, stored_request_key(interaction["request"]), in_subset, _interaction=interaction)

    @property
    def digest(self) -> str:
        """The digest of the text `dumps` writes for this interaction (in its index comment): the
        interaction's identity across saves, merges and reordering."""
        if self._known_digest is None:
            # (an entry read from another flavour keeps text None: it is not the text dumps writes)
            self._known_digest = _digest(self.text if self.text is not None else _chunk(_compact(self.interaction))[0])
        return self._known_digest


def _response_head(text: str, start: int, end: int) -> tuple[dict[str, Any], dict[str, list[str]]] | None:
    """The status and headers (in the in-memory shape) of the response whose head is text[start:end]
    when it is as `dumps` writes it (see `_RESPONSE_HEAD`): what blockyaml reads there, then
    `_response`, would give the same. None for any other text."""
    head = _RESPONSE_HEAD.fullmatch(text, start, end)
    if head is None:
        return None
    code, plain, quoted, block = head.groups()
    message = plain if plain is not None else blockyaml.single_quoted(quoted)
    if block is None:
        return {"code": int(code), "message": message}, {}
    if _LIST_ITEM_LINE not in block:  # the common case: one value each
        headers = {name: [value or blockyaml.single_quoted(inner)] for name, inner, value in _SCALAR_HEAD_LINE.findall(block)}
        return {"code": int(code), "message": message}, headers
    headers = {}
    values: list[str] = []
    for item, name, value in _HEAD_LINE.findall(block):
        if name and not value:
            values = headers[name] = []
            continue
        value = value or item  # a scalar: plain (never empty, never starting with a quote) or quoted
        value = blockyaml.single_quoted(value[1:-1]) if value[0] == "'" else value
        if name:
            headers[name] = [value]
        else:
            values.append(value)
    return {"code": int(code), "message": message}, headers


def _in_file(error: yaml.YAMLError, first_line: int, path: Path | str) -> yaml.YAMLError:
    """`error` from parsing a part of the file at `path` that starts on line `first_line` (from 0),
    its positions moved to lines of the whole file."""
    if isinstance(error, yaml.MarkedYAMLError):
        error.context_mark, error.problem_mark = (
            None if mark is None else yaml.Mark(str(path), mark.index, mark.line + first_line, mark.column, None, 0)
            for mark in (error.context_mark, error.problem_mark)
        )
    return error


def loads_entries(text: str, path: Path | str = "<cassette>") -> list[Entry]:
    """The interactions in cassette `text`, parsed lazily when the file carries index comments."""
    if not text or text.isspace():  # (not text.strip(): a copy of the whole text)
        raise CassetteError(path, "the file is empty (an interrupted write?)")
    header = next((header for header in _HEADERS if text.startswith(header)), None)
    if header is not None and not text.endswith(_TRAILER):
        raise CassetteError(path, f"the file is truncated (its last line should be {_TRAILER.strip()!r})")
    indexed = None
    if header is not None and text.startswith(_VERSION_LINES + _INDEX, len(header)):
        indexed = _indexed_entries(text[len(header) :], path)
    if indexed is not None:
        return indexed
    try:
        document = _parse_yaml(text)
    except yaml.YAMLError as err:
        raise CassetteError(path, f"it is not valid YAML: {err}") from None
    try:
        interactions = _interactions(document)
    except _Invalid as err:
        raise CassetteError(path, str(err)) from None
    return [Entry(path, index, _interaction=interaction) for index, interaction in enumerate(interactions)]


def _indexed_entries(text: str, path: Path | str) -> list[Entry] | None:
    """Entries from the index comments (`text` after the header line), or None when the layout is not
    the one `dumps` writes."""
    body = text[len(_VERSION_LINES) + len(_INDEX) : len(text) - len(_TRAILER)]
    parts = body.split("\n" + _INDEX)
    entries = []
    comment_line = 1 + _VERSION_LINES.count("\n")  # in the file, from 0: after the header line
    for index, part in enumerate(parts):
        comment, newline, chunk = part.partition("\n")
        fields = comment.split(" ")
        if not newline or len(fields) not in (3, 4) or not chunk.startswith("- "):
            return None
        if index < len(parts) - 1:
            chunk += "\n"  # split() took the newline that ends every chunk but the last
        scheme, key, digest = fields[:3]
        entry = Entry(path, index, chunk, line=comment_line + 1)
        comment_line += 1 + chunk.count("\n")
        if _digest(chunk) != digest:
            if _holds_several(chunk):
                return None  # interactions pasted in by hand: parse the whole file, keep them all
            entry.interaction  # noqa: B018 - edited by hand: parse now, so a broken edit is reported at load
        else:
            entry._known_digest = digest
            entry.in_subset = fields[3:] == [_SUBSET]
            if scheme == KEY_SCHEME or (scheme == _K1 and not any(name in chunk for name in VOLATILE_FIELDS)):
                entry.key = key
        entries.append(entry)
    return entries


def _holds_several(chunk: str) -> bool:
    """Whether an edited chunk's YAML is a list of more than one item (never silently dropped)."""
    try:
        document = _parse_yaml(chunk)
    except yaml.YAMLError:
        return False  # reported when the entry is parsed
    return isinstance(document, list) and len(document) > 1


def loads(text: str, path: Path | str = "<cassette>") -> list[Interaction]:
    """The interactions in cassette `text`. Raises CassetteError for anything unusable."""
    return [entry.interaction for entry in loads_entries(text, path)]


# Far above any cassette a test suite commits (10,000 interactions take about 30 MB), far below
# what would exhaust memory while the text is parsed.
MAX_CASSETTE_BYTES = 256 * 1024 * 1024


def _read_text(path: Path) -> str:
    """The text of the cassette file at `path`: a regular file of at most MAX_CASSETTE_BYTES.

    It is opened without blocking and checked on the open descriptor, so a FIFO, a device such as
    /dev/zero or a file swapped in meanwhile is refused at once, with the file named.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise  # not an unusable cassette: no cassette
    except OSError as err:
        raise CassetteError(path, f"it can't be read ({err.strerror or err})") from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_CASSETTE_BYTES:
        os.close(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise CassetteError(path, f"it is not a regular file but {_file_kind(status.st_mode)}")
        raise CassetteError(path, f"it is {status.st_size:,} bytes, over the {MAX_CASSETTE_BYTES:,}-byte limit for a cassette")
    try:
        data = _read_bounded(descriptor, status.st_size)
    except OSError as err:
        raise CassetteError(path, f"it can't be read ({err.strerror or err})") from None
    finally:
        os.close(descriptor)
    if len(data) > MAX_CASSETTE_BYTES:
        raise CassetteError(path, f"it is over the {MAX_CASSETTE_BYTES:,}-byte limit for a cassette")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CassetteError(path, f"it is not UTF-8 text (byte {err.start})") from None


def _read_bounded(descriptor: int, size: int) -> bytes:
    """Everything in the open file, read to its end, or MAX_CASSETTE_BYTES + 1 bytes of it if it
    grew past the limit meanwhile. The first read is sized by the file (os.read(n) allocates n
    bytes up front: never the limit); os.read directly, as a buffered file object costs more to
    make than a small cassette costs to read. Once the `size` bytes fstat saw are read, that is the
    file as it was looked at: no last, empty read confirms its end (every replaying test opens its
    cassette; the file is replaced by a rename when written, never grown in place)."""
    parts: list[bytes] = []
    total, wanted = 0, size + 1
    while total <= MAX_CASSETTE_BYTES:
        chunk = os.read(descriptor, min(wanted, MAX_CASSETTE_BYTES + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
        if total == size:
            break
        wanted = max(size + 1 - total, 1 << 16)  # the rest of it (a short read), then what it grew by
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def load_entries(path: Path | str) -> list[Entry]:
    """The interactions in the cassette at `path`, each parsed on first use (see `Entry`).

    Raises FileNotFoundError if there is no such file and CassetteError if it can't be used.
    """
    path = Path(path)
    return loads_entries(_read_text(path), path)


def load(path: Path | str) -> list[Interaction]:
    """The interactions in the cassette at `path`, all parsed.

    Raises FileNotFoundError if there is no such file and CassetteError if it can't be used.
    """
    return [entry.interaction for entry in load_entries(path)]


def _digest(chunk: str) -> str:
    return hashlib.blake2b(chunk.encode("utf-8"), digest_size=12).hexdigest()


def dumps(interactions: Iterable[Interaction | Entry]) -> str:
    """The cassette text for `interactions`; entries read from a file keep their text as it was."""
    parts = [_PREAMBLE]
    for item in interactions:
        entry = _as_written(item)
        chunk = entry.text or ""
        parts.append(f"{_INDEX}{KEY_SCHEME} {entry.request_key} {_digest(chunk)}{' ' + _SUBSET if entry.in_subset else ''}\n{chunk}")
    if len(parts) == 1:
        parts[0] = _PREAMBLE.replace("interactions:\n", "interactions: []\n")
    return "".join(parts) + _TRAILER


def _as_written(item: Interaction | Entry) -> Entry:
    """`item` as an entry holding the text `dumps` writes for it (an entry read from another
    flavour has none: it is written anew)."""
    if isinstance(item, Entry):
        return item if item.text is not None else Entry.of(item.interaction)
    return Entry.of(item)


def _chunk(interaction: Interaction) -> tuple[str, bool]:
    """The YAML text of one interaction, and whether blockyaml wrote it (it writes all but
    values it can't hold, such as a string with a lone surrogate: PyYAML writes those)."""
    try:
        return blockyaml.dump([interaction]), True
    except blockyaml.Unsupported:
        pass
    chunk = yaml.dump([interaction], Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    # A kept-newlines block scalar makes the emitter end the document ("..."); mid-file that
    # would end the whole cassette, and the next comment line ends the scalar anyway.
    return chunk.removesuffix("...\n"), False


def save(path: Path | str, interactions: Iterable[Interaction | Entry], check: Callable[[str], None] | None = None) -> list[str]:
    """Write `interactions` to `path` atomically, keeping any previous file as ``<name>.bak``
    (see `pytest_llmcache.atomic`: a symlinked cassette is written through). Returns the digests
    of the interactions written (`Entry.digest`).

    `check` sees the exact text first and may raise to refuse the write (see Scrubber.check).
    """
    target = atomic.resolve(path)
    with atomic.locked(target.parent) as folder:
        return save_locked(folder, target, interactions, check)


def save_locked(
    folder: atomic.LockedFolder, target: Path, interactions: Iterable[Interaction | Entry], check: Callable[[str], None] | None = None
) -> list[str]:
    """`save`, for a caller already holding the lock of `target`'s folder (to merge with what is on disk)."""
    entries = [_as_written(item) for item in interactions]
    text = dumps(entries)
    if check is not None:
        check(text)
    folder.replace(target, text.encode("utf-8"))
    return [entry.digest for entry in entries]


def request_body(interaction: Interaction) -> bytes:
    """The exact bytes of the recorded request body."""
    return decode_body(interaction["request"]["body"])


def response_body(interaction: Interaction) -> bytes:
    """The exact bytes of the recorded response body."""
    return decode_body(interaction["response"]["body"])


# -- reading: any supported flavour -> the in-memory shape --------------------------------------


def _interactions(document: Any) -> list[Interaction]:
    if not isinstance(document, dict) or not isinstance(document.get("interactions"), list):
        raise _Invalid("it has no 'interactions' list (is it a cassette?)")
    version = document.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise _Invalid(
            f"it has format version {version!r}, and this pytest-llmcache reads version {FORMAT_VERSION} "
            "(upgrade pytest-llmcache, or record the cassette again)"
        )
    return [_checked_interaction(raw, index) for index, raw in enumerate(document["interactions"])]


def _checked_interaction(raw: Any, index: int, path: Path | str | None = None) -> Interaction:
    """`_interaction`, with any shape problem reported as the cassette's, naming the interaction."""
    try:
        return _interaction(raw)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as err:
        problem = f"interaction #{index} is malformed: {f'missing {err}' if isinstance(err, KeyError) else err}"
        if path is None:
            raise _Invalid(problem) from None
        raise CassetteError(path, problem) from None


def _headers(raw: Any) -> dict[str, list[str]]:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"headers must be a mapping, not {type(raw).__name__}")
    return {str(name): [str(v) for v in value] if isinstance(value, list) else [str(value)] for name, value in raw.items()}


def _content_type(headers: dict[str, list[str]]) -> str:
    return next((values[0] for name, values in headers.items() if name.lower() == "content-type" and values), "")


def _body(raw: dict[str, Any], headers: dict[str, list[str]]) -> tuple[Any, dict[str, list[str]], bytes]:
    """The stored body, the headers and the exact body bytes of a request or response in any
    supported flavour (decoding is also what validates a stored body)."""
    if "parsed_body" in raw:  # pydantic-ai's cassettes
        stored = {"json": raw["parsed_body"], "layout": "compact"}
        return stored, headers, decode_body(stored)
    body = raw.get("body")
    if isinstance(body, dict) and not isinstance(body.get("string"), bytes):
        return body, headers, decode_body(body)
    # vcrpy's bare strings and !!binary bytes (possibly gzip): stored the way a recording would be.
    content, headers = decompress(decode_body(body), headers)
    return encode_body(content, _content_type(headers)), headers, content


def _response(raw: Any) -> tuple[dict[str, Any], bytes]:
    """A response in the in-memory shape, and its exact body bytes."""
    headers = _headers(raw.get("headers"))
    body, headers, content = _body(raw, headers)
    status = raw["status"]
    return {"status": {"code": int(status["code"]), "message": str(status.get("message") or "")}, "headers": headers, "body": body}, content


def _interaction(raw: Any) -> Interaction:
    return {"request": _request(raw["request"]), "response": _response(raw["response"])[0]}


def _request(raw: Any) -> dict[str, Any]:
    """A request in the in-memory shape."""
    headers = _headers(raw.get("headers"))
    body, headers, _ = _body(raw, headers)
    return {**_request_head(raw, headers), "body": body}


def _request_head(raw: Any, headers: dict[str, list[str]]) -> dict[str, Any]:
    """A request's method and uri (from `raw`) and `headers` in the in-memory shape."""
    uri = str(raw["uri"])
    try:
        urlsplit(uri).port  # noqa: B018 - parses the host part too
    except ValueError as err:
        raise ValueError(f"its uri {uri!r} is not a URL ({err})") from None
    return {"method": str(raw["method"]).upper(), "uri": uri, "headers": headers}


# -- writing ---------------------------------------------------------------------------------


def _compact(interaction: Interaction) -> Interaction:
    """One header value as a scalar, several as a list, for readability."""

    def headers(values: dict[str, list[str]]) -> dict[str, Any]:
        return {name: value[0] if len(value) == 1 else value for name, value in values.items()}

    request, response = interaction["request"], interaction["response"]
    body = response["body"]
    # A pretty-printed JSON response is written as its own text (also YAML), last: replay reads it
    # back without parsing or re-serialising it (see Entry._verbatim_body), which is what
    # large bodies cost.
    text = json_text_of(body) if isinstance(body, dict) else None
    return {
        "request": {**request, "headers": headers(request["headers"])},
        "response": {**response, "headers": headers(response["headers"]), "body": body if text is None else {"layout": body["layout"], "json": text}},
    }
