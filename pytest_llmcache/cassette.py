"""Cassette files: load, iterate, save. The on-disk format is documented here.

A cassette is a UTF-8 YAML file, one per test::

    # pytest-llmcache cassette: recorded OpenAI / Azure OpenAI exchanges, replayed byte for byte.
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

Bodies are described in `pytest_llmcache.bodies`. The trailing comment marks a complete file: a
cassette starting with the header comment but missing it was truncated. Plain vcrpy and
pytest-recording cassettes (string or ``!!binary`` bodies, gzip-encoded responses) and
pydantic-ai style ``parsed_body`` load too, and are saved in this format once re-recorded.

In memory an interaction is a plain dict ``{"request": {...}, "response": {...}}`` shaped as
above, with every header value a list. YAML is read with a safe loader only.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from pytest_llmcache.bodies import decode_body, decompress, encode_body
from pytest_llmcache.errors import CassetteError

__all__ = ["FORMAT_VERSION", "Interaction", "dumps", "load", "loads", "request_body", "response_body", "save"]

FORMAT_VERSION = 1
Interaction = dict[str, Any]

_HEADER = "# pytest-llmcache cassette: recorded OpenAI / Azure OpenAI exchanges, replayed byte for byte.\n"
_TRAILER = "# end of cassette\n"

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader, plus the harmless tags old vcrpy cassettes carry (no object is ever built)."""


_Loader.add_constructor("tag:yaml.org,2002:python/str", lambda loader, node: loader.construct_scalar(node))
_Loader.add_constructor("tag:yaml.org,2002:python/unicode", lambda loader, node: loader.construct_scalar(node))
_Loader.add_constructor("tag:yaml.org,2002:python/tuple", lambda loader, node: loader.construct_sequence(node))


class _Dumper(_BaseDumper):  # type: ignore[misc, valid-type]
    """Multi-line text as literal blocks, for readable streams; the emitter falls back to a quoted
    scalar whenever a block would not read back exactly (trailing spaces, carriage returns...)."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _represent_str)


class _Invalid(ValueError):
    """What is wrong with the document; turned into a CassetteError naming the file."""


def loads(text: str, path: Path | str = "<cassette>") -> list[Interaction]:
    """The interactions in cassette `text`. Raises CassetteError for anything unusable."""
    if not text.strip():
        raise CassetteError(path, "the file is empty (an interrupted write?)")
    if text.startswith(_HEADER) and not text.endswith(_TRAILER):
        raise CassetteError(path, f"the file is truncated (its last line should be {_TRAILER.strip()!r})")
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a safe loader
    except yaml.YAMLError as err:
        raise CassetteError(path, f"it is not valid YAML: {err}") from None
    try:
        return _interactions(document)
    except _Invalid as err:
        raise CassetteError(path, str(err)) from None


def load(path: Path | str) -> list[Interaction]:
    """The interactions in the cassette at `path`.

    Raises FileNotFoundError if there is no such file and CassetteError if it can't be used.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise  # not an unusable cassette: no cassette
    except OSError as err:
        raise CassetteError(path, f"it can't be read ({err.strerror or err})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CassetteError(path, f"it is not UTF-8 text (byte {err.start})") from None
    return loads(text, path)


def dumps(interactions: Iterable[Interaction]) -> str:
    """The cassette text for `interactions`."""
    document = {"version": FORMAT_VERSION, "interactions": [_compact(interaction) for interaction in interactions]}
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    return _HEADER + body + _TRAILER


def save(path: Path | str, interactions: Iterable[Interaction], check: Callable[[str], None] | None = None) -> None:
    """Write `interactions` to `path` atomically, keeping any previous file as ``<name>.bak``.

    `check` sees the exact text first and may raise to refuse the write (see Scrubber.check).
    """
    path = Path(path)
    text = dumps(interactions)
    if check is not None:
        check(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            shutil.copyfile(path, path.with_name(path.name + ".bak"))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


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
    result = []
    for index, raw in enumerate(document["interactions"]):
        try:
            result.append(_interaction(raw))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            problem = f"missing {err}" if isinstance(err, KeyError) else str(err)
            raise _Invalid(f"interaction #{index} is malformed: {problem}") from None
    return result


def _headers(raw: Any) -> dict[str, list[str]]:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"headers must be a mapping, not {type(raw).__name__}")
    return {str(name): [str(v) for v in value] if isinstance(value, list) else [str(value)] for name, value in raw.items()}


def _content_type(headers: dict[str, list[str]]) -> str:
    return next((values[0] for name, values in headers.items() if name.lower() == "content-type" and values), "")


def _body(raw: dict[str, Any], headers: dict[str, list[str]]) -> tuple[Any, dict[str, list[str]]]:
    """The stored body and headers of a request or response in any supported flavour."""
    if "parsed_body" in raw:  # pydantic-ai's cassettes
        return {"json": raw["parsed_body"], "layout": "compact"}, headers
    body = raw.get("body")
    if isinstance(body, dict) and not isinstance(body.get("string"), bytes):
        decode_body(body)  # validates it
        return body, headers
    # vcrpy's bare strings and !!binary bytes (possibly gzip): stored the way a recording would be.
    content, headers = decompress(decode_body(body), headers)
    return encode_body(content, _content_type(headers)), headers


def _interaction(raw: Any) -> Interaction:
    request, response = raw["request"], raw["response"]
    request_headers = _headers(request.get("headers"))
    request_body_, request_headers = _body(request, request_headers)
    response_headers = _headers(response.get("headers"))
    response_body_, response_headers = _body(response, response_headers)
    status = response["status"]
    return {
        "request": {
            "method": str(request["method"]).upper(),
            "uri": str(request["uri"]),
            "headers": request_headers,
            "body": request_body_,
        },
        "response": {
            "status": {"code": int(status["code"]), "message": str(status.get("message") or "")},
            "headers": response_headers,
            "body": response_body_,
        },
    }


# -- writing ---------------------------------------------------------------------------------


def _compact(interaction: Interaction) -> Interaction:
    """One header value as a scalar, several as a list, for readability."""

    def headers(values: dict[str, list[str]]) -> dict[str, Any]:
        return {name: value[0] if len(value) == 1 else value for name, value in values.items()}

    request, response = interaction["request"], interaction["response"]
    return {
        "request": {**request, "headers": headers(request["headers"])},
        "response": {**response, "headers": headers(response["headers"])},
    }
