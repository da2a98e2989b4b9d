"""The YAML cassettes are written in: a block-style subset, written and read here without PyYAML's
parser or emitter.

Recording and replay spend most of their own time turning interactions into YAML and back.
PyYAML does it through Python callbacks per node (its C parser builds a Python node, mark and
tag resolution for every scalar; its emitter is Python throughout), so this module writes JSON-
like values in a small, regular subset of YAML and reads exactly that subset back, several times
faster. The files stay ordinary YAML: PyYAML (and so vcrpy, and any editor) reads what `dump`
writes to the same values, which a property test checks over arbitrary values.

What `dump` writes, for dicts with str keys, lists, str, int, float, bool and None:

- mappings and sequences in block style, two spaces a level, a sequence under a key at the key's
  column (as PyYAML writes it); an empty one as ``{}`` or ``[]``; a list of numbers (an
  embedding) as a flow sequence, ``[0.1, -0.2, ...]``, folded after its commas;
- a string plain when YAML reads it back as that string (no indicator first, no ``#`` or ``: ``,
  not a word like ``yes`` or ``null``; PyYAML's own resolver judges strings that start like a
  number or a date), multi-line text as a literal block
  (``|``, ``|-``, ``|+``), anything else single-quoted, or double-quoted when it needs escapes; long
  plain and quoted strings folded at a single space, which YAML reads back as that space;
- numbers, booleans and null as PyYAML writes them;
- a `JSONText` (pretty-printed JSON, see `json_text`) as it is: a flow collection over the text's
  own lines, each indented under its key. Such JSON is also YAML for the same document, and
  `load(..., json_text=True)` gives the text back without parsing it: a recorded response body is
  replayed by removing the indentation, however large it is.

`load` reads only text `dump` wrote and raises `Unsupported` for anything else (the caller
then reads it with PyYAML): it never guesses.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml

__all__ = ["LINE_KEY", "LINE_SCALAR", "LINE_SCALAR_GROUPS", "JSONText", "Unsupported", "dump", "json_text", "load", "single_quoted"]

_WIDTH = 100  # fold plain and quoted strings longer than this, where a single space allows
_MAX_KEY = 1000  # YAML limits implicit keys to 1024 characters

# Words YAML 1.1 (PyYAML) reads as booleans or null; quoted when they are strings.
_RESERVED = frozenset(["yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL"])
# A plain string holds only printable characters that are not a line break in YAML 1.1, a tab or
# a "#", and does not start with a space or an indicator (- ? : , [ ] { } & * ! | > ' " % @ `).
_PLAIN = re.compile(
    "[^\x00-\x20#\x7f-\xa0\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff\\-?:,\\[\\]{}&*!|>'\"%@`]"
    "[^\x00-\x1f#\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]*"
)
# First characters for which PyYAML's resolver may read a plain scalar as something other than a
# string (a number, a date, a merge key...): PyYAML itself decides those. For letters the only
# other readings are the words in _RESERVED.
_RESOLVED_FIRST = frozenset("+0123456789.<~=")
_RESOLVER = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"
# What a double-quoted string escapes besides \ and ": what YAML does not allow raw (or reads as
# a line break, or strips as a byte order mark).
_ESCAPED = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # no YAML escape reads back as one
_SHORT_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x00": "\\0"}
_UNESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\x00", "\\": "\\", '"': '"'}
_QUOTES = ("'", '"')  # a tuple: an empty slice of a line is not in it (it is in any str)
_DOUBLE_QUOTED_BODY = re.compile(r'(?:[^"\\]|\\.)*', re.DOTALL)
_ESCAPE_SEQUENCE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|(.))")
# A literal block's lines may hold anything printable except a YAML 1.1 line break or a BOM.
_LITERAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_PLAIN_KEYS: set[str] = set()  # keys already known to be plain (they repeat across interactions)
# A number as `dump` writes it (an int, or a float with a dot, as YAML 1.1 needs), and a list of them.
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:e[-+][0-9]+)?)?"
_ONE_NUMBER = re.compile(_NUMBER)
_FLOW_NUMBERS = re.compile(rf"\[{_NUMBER}(?:, {_NUMBER})*\]")

# For readers of a fixed shape (see cassette.Entry.replay): a one-line scalar that `load` reads back
# as a string, recognised by a regular expression alone, followed by the end of its line.
# Conservative, anything else goes to `load`: a plain string of printable ASCII starting with a
# letter, not a reserved word, without "#" and whose spaces and colons are each followed by
# another of its characters; or a single-quoted string without a character `load` refuses in one.
_RESERVED_WORD = rf"(?:{'|'.join(sorted(_RESERVED))})"
# (Each written so that no text matches two ways: a mismatch fails at once, without backtracking.)
_LINE_PLAIN_RUN = "[!\"$-9;-~]"  # printable ASCII but a space, a colon or a "#"
_LINE_PLAIN = rf"(?!{_RESERVED_WORD}\n)[A-Za-z]{_LINE_PLAIN_RUN}*(?:[: ]{_LINE_PLAIN_RUN}+)*"
_LINE_QUOTED_RUN = f"[^'\n{_ESCAPED.pattern[1:-1]}]*"
_LINE_QUOTED = f"{_LINE_QUOTED_RUN}(?:''{_LINE_QUOTED_RUN})*"
LINE_SCALAR = rf"(?:{_LINE_PLAIN}|'{_LINE_QUOTED}')(?=\n)"
# The same with two groups: a plain string, or a quoted one's text, its quotes still doubled (see `single_quoted`).
LINE_SCALAR_GROUPS = rf"(?:({_LINE_PLAIN})|'({_LINE_QUOTED})')(?=\n)"
# A mapping key `load` reads as the very text (plain, so never a reserved word).
LINE_KEY = rf"(?!{_RESERVED_WORD}:)[A-Za-z][A-Za-z0-9_.-]*"


def single_quoted(inner: str) -> str:
    """The string a single-quoted scalar holds, given the text between its quotes."""
    return inner.replace("''", "'")


class Unsupported(ValueError):
    """The value can't be written in the subset, or the text is not what `dump` writes."""


class JSONText(str):
    """A JSON object or array as text, pretty-printed (one line per member), written by `dump` as
    it is. Make one with `json_text`, which checks that YAML reads the text as the same document."""


# An escaped UTF-16 surrogate (half of a character outside the BMP): YAML reads each half alone.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def json_text(text: str) -> JSONText:
    """`text`, a pretty-printed JSON object or array, as a JSONText; Unsupported when YAML would
    read it as another document, or `dump` could not write it verbatim: NaN or Infinity, an escaped
    surrogate pair, a character YAML does not allow raw (or reads as a line break), a key too long
    for YAML, a line YAML would end the text at.

    (JSON is YAML 1.2. One difference with PyYAML's YAML 1.1 remains: it reads a float written
    without a dot, ``9e-07``, as a string; `pytest_llmcache.cassette` reads it as the number.)"""
    lines = text.split("\n")
    if len(lines) < 2 or lines[0] not in ("{", "[") or lines[-1] != lines[0].translate(_CLOSING):
        raise Unsupported("not a pretty-printed JSON object or array")
    if _LITERAL_UNSAFE.search(text) is not None or _SURROGATE_ESCAPE.search(text) is not None or "\t" in text:
        raise Unsupported("a character YAML would not read back")
    if not all(line.startswith(" ") for line in lines[1:-1]):
        raise Unsupported("a member line that is not indented")

    def constant(token: str) -> Any:
        raise Unsupported(f"{token} is not a YAML number")

    def members(pairs: list[tuple[str, Any]]) -> None:
        for key, _ in pairs:
            if len(key) > _MAX_KEY // 6 and len(json.dumps(key)) > _MAX_KEY:
                raise Unsupported("a mapping key is too long for YAML's implicit keys")

    try:
        json.loads(text, parse_constant=constant, object_pairs_hook=members)
    except ValueError as err:  # Unsupported is one
        raise Unsupported(f"not JSON YAML reads alike: {err}") from None
    return JSONText(text)


_CLOSING = str.maketrans("{[", "}]")


# -- writing -----------------------------------------------------------------------------------


def dump(value: Any) -> str:
    """`value` as a YAML document in the subset; raises Unsupported for what it can't hold."""
    if not isinstance(value, (dict, list)) or not value:
        raise Unsupported("a document must be a non-empty mapping or sequence")
    lines: list[str] = []
    _node(value, "", 0, lines)
    return "\n".join(lines) + "\n"


def _node(value: Any, head: str, column: int, lines: list[str]) -> None:
    """Append `value`'s lines. `head` is the start of its first line: "" at the top, "<key>:" or a
    sequence dash ("- ", possibly after other text); `column` is where its nested lines start."""
    if type(value) is str:
        _string(value, head, column, lines)
    elif type(value) is JSONText:
        text_lines = value.split("\n")
        indent = " " * column
        lines.append(_joined(head, text_lines[0]))
        lines.extend(indent + line for line in text_lines[1:])
    elif isinstance(value, dict) and value:
        if head and not head.endswith("- "):
            lines.append(head)
            head = " " * column
        for key, item in value.items():
            _node(item, head + _key(key) + ":", column + 2, lines)
            head = " " * column
    elif isinstance(value, list) and value:
        tokens = _number_tokens(value) if head else None  # a document is a block
        if tokens is not None:
            _flow(tokens, head, column, lines)
            return
        if head and not head.endswith("- "):
            lines.append(head)
            column -= 2  # a sequence under a key starts at the key's column
            head = " " * column
        for item in value:
            _node(item, head + "- ", column + 2, lines)
            head = " " * column
    elif isinstance(value, str):
        _string(str(value), head, column, lines)
    else:
        lines.append(_joined(head, _scalar(value)))


def _number_tokens(values: list[Any]) -> list[str] | None:
    """The numbers of a list of finite numbers as written, or None for any other list."""
    tokens = []
    for value in values:
        kind = type(value)
        if kind is int or (kind is float and math.isfinite(value)):
            tokens.append(_scalar(value))
        else:
            return None
    return tokens


def _flow(tokens: list[str], head: str, column: int, lines: list[str]) -> None:
    """A list of numbers (an embedding, token ids) as a flow sequence, folded after its commas."""
    line = _joined(head, "[")
    fresh = True  # nothing after the bracket or the indentation yet
    for position, token in enumerate(tokens):
        piece = token + ("]" if position == len(tokens) - 1 else ",")
        if not fresh and len(line) + 1 + len(piece) > _WIDTH:
            lines.append(line)
            line, fresh = " " * column, True
        line += piece if fresh else " " + piece
        fresh = False
    lines.append(line)


def _joined(head: str, text: str) -> str:
    return f"{head} {text}" if head.endswith(":") else head + text


def _key(key: Any) -> str:
    if key in _PLAIN_KEYS:
        return key
    if not isinstance(key, str):
        raise Unsupported(f"a mapping key must be a string, not {type(key).__name__}")
    if len(key) > _MAX_KEY:
        raise Unsupported("a mapping key is too long for YAML's implicit keys")
    if not _is_plain(key):
        return _quoted(key)
    _remember_plain_key(key)
    return key


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        if "." not in text:  # YAML 1.1 floats need a dot: 1e-05 -> 1.0e-05
            text = text.replace("e", ".0e", 1)
        return text
    if value == {}:
        return "{}"
    if value == []:
        return "[]"
    raise Unsupported(f"a {type(value).__name__} can't be written (only JSON-like values)")


def _is_plain(text: str) -> bool:
    """Whether `text` written unquoted reads back as this string (in PyYAML too)."""
    if _PLAIN.fullmatch(text) is None or ": " in text or text[-1] in ": " or text.startswith("..."):
        return False  # ("..." at the start of a line can end a document)
    if text[0] in _RESOLVED_FIRST:
        return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG
    return text not in _RESERVED


def _string(text: str, head: str, column: int, lines: list[str]) -> None:
    if "\n" in text and _literal_fits(text):
        indicator = "2" if text[0] in " \t\n" else ""
        chomping = "+" if text.endswith("\n\n") else "" if text.endswith("\n") else "-"
        lines.append(_joined(head, f"|{indicator}{chomping}"))
        indent = " " * column
        lines.extend(indent + line if line else "" for line in text.removesuffix("\n").split("\n"))
        return
    rendered = text if _is_plain(text) else _quoted(text)
    first = _joined(head, rendered)
    if len(first) <= _WIDTH:
        lines.append(first)
    else:
        lines.extend(_folded(first, len(first) - len(rendered), " " * column))


def _literal_fits(text: str) -> bool:
    """Whether a literal block reads back as `text`: printable, and not only line breaks."""
    return text.strip("\n") != "" and _LITERAL_UNSAFE.search(text) is None


def _folded(line: str, start: int, indent: str) -> list[str]:
    """`line` broken into lines of about `_WIDTH`, continuations at `indent`, at spaces after
    position `start` (where the string begins). YAML folds each break back into one space, so
    a break goes only where one space sits between two other characters, the next one
    alphanumeric (a run of spaces, or an indicator starting a line, would not read back)."""
    pieces = []
    begin, limit = 0, _WIDTH
    while len(line) - begin > limit:
        cut = _fold_point(line, max(begin, start), begin + limit)
        if cut is None:
            break
        pieces.append(line[begin:cut])
        begin, limit = cut + 1, _WIDTH - len(indent)
    pieces.append(line[begin:])
    return [pieces[0], *(indent + piece for piece in pieces[1:])]


def _fold_point(line: str, low: int, high: int) -> int | None:
    """The last space in line[low:high] where a fold reads back, else the first one after."""

    def foldable(at: int) -> bool:
        return line[at - 1] != " " and at + 1 < len(line) and line[at + 1].isalnum()

    at = line.rfind(" ", low + 1, high)
    while at != -1 and not foldable(at):
        at = line.rfind(" ", low + 1, at)
    if at != -1:
        return at
    at = line.find(" ", max(high, low + 1))
    while at != -1 and not foldable(at):
        at = line.find(" ", at + 1)
    return None if at == -1 else at


def _quoted(text: str) -> str:
    """Single-quoted when nothing needs an escape (only ' is doubled), else double-quoted."""
    if _SURROGATE.search(text) is not None:
        raise Unsupported("a string holds a lone surrogate")
    if _ESCAPED.search(text) is None:
        return "'" + text.replace("'", "''") + "'"
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    if _ESCAPED.search(text) is not None:
        text = _ESCAPED.sub(_escape, text)
    return f'"{text}"'


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


# -- reading -----------------------------------------------------------------------------------


def load(text: str, json_text: bool = False) -> Any:
    """The value of a document `dump` wrote (or of a block-indented part of one, such as a mapping
    at column 2). Raises Unsupported for anything else. With `json_text`, a JSONText `dump` wrote
    is read back as that JSONText, unparsed (the caller trusts the text to be unedited)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise Unsupported("no document")
    reader = _Reader(lines, json_text)
    first = lines[0]
    value = reader.block(len(first) - len(first.lstrip(" ")))
    if reader.index != len(lines):
        raise Unsupported(f"unexpected line {reader.index + 1}: {lines[reader.index][:40]!r}")
    return value


class _Reader:
    """Reads the lines `dump` wrote, by their indentation (computed once)."""

    def __init__(self, lines: list[str], json_text: bool = False) -> None:
        self.lines = lines
        self.indents = [len(line) - len(line.lstrip(" ")) for line in lines]
        self.index = 0
        self.json_text = json_text

    def block(self, column: int) -> Any:
        if self.lines[self.index].startswith("- ", column):
            return self.sequence(column)
        return self.mapping(column)

    def mapping(self, column: int) -> dict[str, Any]:
        lines, indents, result = self.lines, self.indents, {}
        count, index = len(lines), self.index
        while index < count and indents[index] == column:
            line = lines[index]
            if line.startswith("- ", column):
                break
            if line[column : column + 1] in _QUOTES:
                key, end = _read_quoted_line(line, column)
                if not ((line.endswith(":") and len(line) == end + 1) or line.startswith(": ", end)):
                    raise Unsupported(f"line {index + 1}: a quoted key without ':'")
                rest = line[end + 2 :]
            else:
                colon = line.find(": ", column)
                if colon == -1:
                    if not line.endswith(":"):
                        raise Unsupported(f"line {index + 1}: not a mapping entry")
                    colon = len(line) - 1
                key, rest = line[column:colon], line[colon + 2 :]
                if key not in _PLAIN_KEYS:
                    _check_plain_key(key, index)
            index += 1
            if rest and (index == count or indents[index] <= column) and rest[0] != "|":
                # the common cases: a one-line plain or quoted scalar
                result[key] = _plain_value(rest) if rest[0] not in _QUOTES else _unquoted(rest, index)
                continue
            self.index = index
            result[key] = self.value(rest, column)
            index = self.index
        self.index = index
        if not result:
            raise Unsupported(f"line {index + 1}: expected a mapping at column {column}")
        return result

    def sequence(self, column: int) -> list[Any]:
        lines, indents, result = self.lines, self.indents, []
        while self.index < len(lines) and indents[self.index] == column and lines[self.index].startswith("- ", column):
            rest = lines[self.index][column + 2 :]
            if rest.startswith("- ") or _starts_mapping(rest):
                lines[self.index] = " " * (column + 2) + rest  # the item's first line, on its own
                indents[self.index] = column + 2
                result.append(self.block(column + 2))
            else:
                self.index += 1
                result.append(self.value(rest, column))
        return result

    def value(self, rest: str, column: int) -> Any:
        """The value after a key or dash at `column` whose line (before `self.index`) ends with `rest`."""
        lines, indents, index = self.lines, self.indents, self.index
        if not rest:
            if index < len(lines) and indents[index] == column and lines[index].startswith("- ", column):
                return self.sequence(column)
            if index < len(lines) and indents[index] == column + 2:
                return self.block(column + 2)
            raise Unsupported(f"line {index}: a key without a value")
        first = rest[0]
        if first == "|":
            return self.literal(rest, column)
        if rest in ("{", "["):
            return self.verbatim(rest, column)
        if first in _QUOTES:
            return _unquoted(" ".join([rest, *self.continuation(column)]), self.index)
        continued = self.continuation(column)
        if not continued:
            return _plain_value(rest)
        text = " ".join([rest, *continued])
        if first == "[":
            return _flow_numbers(text)
        if not _is_plain(text):
            raise Unsupported(f"line {self.index}: a folded plain scalar dump would not write")
        return text

    def verbatim(self, first: str, column: int) -> Any:
        """A JSONText whose first line ("{" or "[") ends the line before `self.index`: its other
        lines follow, each indented by `column` + 2 more than in the text."""
        lines, indents, start = self.lines, self.indents, self.index
        end, count, width = start, len(lines), column + 2
        while end < count and indents[end] >= width:
            end += 1
        self.index = end
        if end == start or lines[end - 1][width:] != first.translate(_CLOSING):
            raise Unsupported(f"line {end}: a flow collection dump would not write")
        text = "\n".join([first, *(line[width:] for line in lines[start:end])])
        if self.json_text:
            return JSONText(text)
        try:
            return json.loads(text)
        except ValueError:
            raise Unsupported(f"line {start}: a flow collection that is not JSON") from None

    def continuation(self, column: int) -> list[str]:
        """The folded lines continuing a scalar whose key or dash is at `column`."""
        lines, indents, found = self.lines, self.indents, []
        while self.index < len(lines) and indents[self.index] > column:
            found.append(lines[self.index].lstrip(" "))
            self.index += 1
        return found

    def literal(self, header: str, column: int) -> str:
        if header not in ("|", "|-", "|+", "|2", "|2-", "|2+"):
            raise Unsupported(f"line {self.index}: an unexpected block scalar header {header!r}")
        lines, content = self.lines, []
        indent = " " * (column + 2)
        while self.index < len(lines):
            line = lines[self.index]
            if line.startswith(indent):
                content.append(line[column + 2 :])
            elif line:
                break
            else:
                content.append("")
            self.index += 1
        if not content or (content[-1] == "") != header.endswith("+"):  # dump writes neither
            raise Unsupported(f"line {self.index}: an empty literal block, or one whose chomping does not fit its end")
        if header.startswith("|2") != (content[0] == "" or content[0].startswith((" ", "\t"))):
            raise Unsupported(f"line {self.index}: an indentation indicator where dump would not write one, or none where it would")
        text = "\n".join(content)
        if _LITERAL_UNSAFE.search(text) is not None:  # dump quotes such text
            raise Unsupported(f"line {self.index}: a literal block holding a character dump would have escaped")
        return text if header.endswith("-") else text + "\n"  # "|+": the empty lines are the newlines kept


def _check_plain_key(key: str, index: int) -> None:
    if not _is_plain(key):
        raise Unsupported(f"line {index + 1}: a mapping key dump would have quoted: {key[:40]!r}")
    _remember_plain_key(key)


def _remember_plain_key(key: str) -> None:
    if len(_PLAIN_KEYS) < 10_000:
        _PLAIN_KEYS.add(key)


def _starts_mapping(rest: str) -> bool:
    """Whether a sequence item's first line starts a mapping (`key: ...` or `"key": ...`)."""
    if rest[:1] in _QUOTES:
        try:
            _, end = _read_quoted_line(rest, 0)
        except Unsupported:
            return False
        return rest.startswith(":", end)
    return ": " in rest or rest.endswith(":")


def _read_quoted_line(line: str, start: int) -> tuple[str, int]:
    """A quoted string starting at `start` and ending on the same line, and the index after it."""
    quote, position = line[start], start + 1
    while True:
        position = line.find(quote, position)
        if position == -1:
            raise Unsupported("an unterminated quoted key")
        if quote == "'" and line.startswith("''", position):
            position += 2
        elif quote == '"' and (position - len(line[:position].rstrip("\\"))) % 2:
            position += 1  # an escaped quote
        else:
            return _unquoted(line[start : position + 1], 0), position + 1


def _unquoted(text: str, line: int) -> str:
    """The string a quoted scalar (already unfolded) holds; Unsupported unless dump wrote it."""
    quote, inner = text[0], text[1:-1]
    if len(text) < 2 or text[-1] != quote:
        raise Unsupported(f"line {line}: an unterminated quoted string")
    if _ESCAPED.search(inner) is not None:  # dump escapes these (some are line breaks to YAML)
        raise Unsupported(f"line {line}: a quoted string holding a raw control character or line separator")
    if quote == "'":
        if "'" in inner.replace("''", ""):
            raise Unsupported(f"line {line}: a single-quoted string dump would not write")
        return single_quoted(inner)
    if _DOUBLE_QUOTED_BODY.fullmatch(inner) is None:
        raise Unsupported(f"line {line}: a double-quoted string dump would not write")
    return _unescape(inner)


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPE_SEQUENCE.sub(_unescaped, text)


def _unescaped(match: re.Match[str]) -> str:
    code = match.group(1) or match.group(2)
    if code is not None:
        return chr(int(code, 16))
    try:
        return _UNESCAPES[match.group(3)]
    except KeyError:
        raise Unsupported(f"an escape dump does not write: \\{match.group(3)}") from None


def _flow_numbers(text: str) -> list[Any]:
    if _FLOW_NUMBERS.fullmatch(text) is None:
        raise Unsupported(f"a flow sequence dump would not write: {text[:40]!r}")
    return json.loads(text)  # the same numbers: every token is also JSON


_PLAIN_VALUES: dict[str, Any] = {"null": None, "true": True, "false": False, ".inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}


def _plain_value(text: str) -> Any:
    """A plain scalar's value, resolved as PyYAML resolves what `dump` writes."""
    found = _PLAIN_VALUES.get(text, _plain_value)
    if found is not _plain_value:
        return found
    if text == "{}":
        return {}
    if text == "[]":
        return []
    if text[0] == "[":
        return _flow_numbers(text)
    if text[0] in "-0123456789" and _ONE_NUMBER.fullmatch(text):
        return float(text) if "." in text else int(text)
    if not _is_plain(text):
        raise Unsupported(f"a plain scalar dump would not write: {text[:40]!r}")
    return text

