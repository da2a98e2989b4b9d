"""Keeping secrets out of cassettes (and out of the messages about them).

Three layers:

1. The scrubber learns the live credential values: from the environment (``OPENAI_API_KEY``,
   ``AZURE_OPENAI_KEY``, ``OPENAI_ORG_ID``, the ``AZURE_OPENAI_ENDPOINT`` host, ...) and from every
   request it sees (``Authorization``, ``api-key`` and other key-like headers, organisation and
   project headers, cookies, key-like query parameters, the Azure resource host).
2. `Scrubber.request` / `Scrubber.response` drop what is sensitive by name (auth headers, cookies,
   key-like query values, the endpoint host) and then mask every learned value wherever else it
   is (a JSON body field, another query parameter, a response echoing it...): credentials become
   ``<redacted>``, an Azure resource host becomes the placeholder host.
3. `Scrubber.check` looks for the learned values in the exact text about to be written and
   refuses the write if any is left (say, in a form no rule knows).

While a cassette is in use, `Scrubber.masking_logs` masks the same values in every log record
made in the process (vcrpy and httpx log request URLs, the client library logs server errors).

Masking is symmetric: `Scrubber.masked_request` masks a request's own credentials the same way
before it is keyed, so a recording whose body held the live key replays with another key (or the
replay placeholder) in its place.
"""
from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from pytest_llmcache.bodies import decompress, encode_body
from pytest_llmcache.errors import SecretLeakError

__all__ = ["AZURE_PLACEHOLDER_URL", "KEY_LIKE_PARAM", "OPENAI_PLACEHOLDER_URL", "REDACTED", "Scrubber", "is_azure"]

REDACTED = "<redacted>"
OPENAI_PLACEHOLDER_URL = "https://api.openai.test"
AZURE_PLACEHOLDER_URL = "https://placeholder.openai.azure.com"
_AZURE_PLACEHOLDER_HOST = urlsplit(AZURE_PLACEHOLDER_URL).netloc

# Request headers that are secret, or change between runs without changing meaning.
_DROPPED_REQUEST_HEADERS = frozenset(
    {"authorization", "api-key", "cookie", "user-agent", "host", "content-length", "accept-encoding", "connection", "proxy-authorization"}
)
_MASKED_HEADERS = frozenset({"openai-organization", "openai-project"})
_DROPPED_RESPONSE_HEADERS = frozenset({"set-cookie", "set-cookie2"})
KEY_LIKE_PARAM = re.compile(r"(?i)(key|token|secret|sig|signature|password|credential)")
# Where live credentials come from besides the requests themselves.
_SECRET_ENV_VARS = (
    "OPENAI_API_KEY", "AZURE_OPENAI_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "OPENAI_ADMIN_KEY",
    "OPENAI_ORG_ID", "OPENAI_PROJECT_ID",
)
_ENDPOINT_ENV_VARS = ("AZURE_OPENAI_ENDPOINT",)
_WATCHED_ENV_VARS = _SECRET_ENV_VARS + _ENDPOINT_ENV_VARS
# Shorter values would match innocent text; real keys are far longer.
_MIN_SECRET_LENGTH = 8


def is_azure(uri: str) -> bool:
    """Whether `uri` is an Azure OpenAI endpoint (by host or by the /openai/ path prefix)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    return host.endswith((".openai.azure.com", ".cognitiveservices.azure.com")) or parts.path.startswith("/openai/")


def _azure_host(uri: str) -> str | None:
    """The resource host of an Azure endpoint URL (not the placeholder), else None."""
    try:
        host = urlsplit(uri if "//" in uri else "https://" + uri).hostname or ""
    except ValueError:
        return None
    if host.endswith((".openai.azure.com", ".cognitiveservices.azure.com")) and host != _AZURE_PLACEHOLDER_HOST:
        return host
    return None


def _values(headers: Mapping[str, Any], name: str) -> list[str]:
    value = next((value for key, value in headers.items() if key.lower() == name), None)
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, (list, tuple)) else [str(value)]


def _cookie_values(header: str) -> list[str]:
    """The values in a Cookie / Set-Cookie header (attributes like Path are not secrets)."""
    return [pair.partition("=")[2].strip() for pair in header.split(";") if "=" in pair]


def _credential(value: str) -> str:
    """An Authorization value without its scheme ("Bearer sk-..." -> "sk-...")."""
    scheme, _, rest = value.strip().partition(" ")
    return rest.strip() if rest and scheme.isalpha() else value.strip()


@dataclass
class Scrubber:
    """Scrubs recorded interactions and remembers the live credentials it saw, for masking and `check`."""

    secrets: dict[str, str] = field(default_factory=dict)  # value -> where it came from
    hosts: dict[str, str] = field(default_factory=dict)  # Azure resource host -> where it came from

    def __post_init__(self) -> None:
        self._learn_environment()

    # -- learning --------------------------------------------------------------------------

    def remember(self, values: Iterable[str], source: str) -> None:
        for value in values:
            value = value.strip()
            if len(value) >= _MIN_SECRET_LENGTH and value != REDACTED and value not in self.secrets:
                self.secrets[value] = source
                self._patterns = None

    def remember_host(self, host: str | None, source: str) -> None:
        if host and host.lower() not in self.hosts:
            self.hosts[host.lower()] = source
            self._patterns = None

    def _learn_environment(self) -> None:
        """The credentials in the environment now (a test may set them after this scrubber was made)."""
        snapshot = tuple(os.environ.get(name, "") for name in _WATCHED_ENV_VARS)
        if snapshot == self._environment:
            return
        self._environment = snapshot
        for name, value in zip(_SECRET_ENV_VARS, snapshot):
            if value and value.strip() not in self.secrets:
                self.remember([value], f"${name}")
        for name, value in zip(_ENDPOINT_ENV_VARS, snapshot[len(_SECRET_ENV_VARS) :]):
            host = _azure_host(value)
            if host and host not in self.hosts:
                self.remember_host(host, f"${name}")

    def learn_request(self, uri: str, headers: Mapping[str, Any]) -> None:
        """Remembers the credentials a live request carries (the environment is read when recording)."""
        for name, value in headers.items():
            lowered = name.lower()
            if lowered.startswith("x-stainless-"):
                continue
            values = [str(item) for item in value] if isinstance(value, (list, tuple)) else [str(value)]
            if lowered in ("authorization", "proxy-authorization"):
                self.remember((_credential(item) for item in values), f"the {lowered} header")
            elif lowered == "cookie":
                for item in values:
                    self.remember(_cookie_values(item), "a cookie")
            elif lowered in ("api-key", *_MASKED_HEADERS) or KEY_LIKE_PARAM.search(lowered):
                self.remember(values, f"the {lowered} header")
        if "?" in uri:
            try:
                query = parse_qsl(urlsplit(uri).query, keep_blank_values=True)
            except ValueError:
                query = []
            self.remember((value for name, value in query if KEY_LIKE_PARAM.search(name)), "a query parameter")
        if ".azure.com" in uri:
            self.remember_host(_azure_host(uri), "the Azure endpoint")

    # -- masking ---------------------------------------------------------------------------

    _patterns: list[tuple[str, str]] | None = field(default=None, init=False, repr=False, compare=False)
    _environment: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def _replacements(self) -> list[tuple[str, str]]:
        """(found, replacement) pairs, longest first, each secret also in its URL-encoded forms."""
        if self._patterns is None:
            pairs: dict[str, str] = {}
            for secret in self.secrets:
                for form in (secret, quote(secret, safe=""), quote_plus(secret, safe="")):
                    pairs.setdefault(form, REDACTED)
            for host in self.hosts:
                pairs.setdefault(host, _AZURE_PLACEHOLDER_HOST)
            self._patterns = sorted(pairs.items(), key=lambda pair: -len(pair[0]))
        return self._patterns

    def mask_text(self, text: str) -> str:
        """`text` with every learned credential replaced."""
        for found, replacement in self._replacements():
            if found in text:
                text = text.replace(found, replacement)
        return text

    def mask_bytes(self, data: bytes) -> bytes:
        """`data` with every learned credential replaced (compared as UTF-8 bytes)."""
        for found, replacement in self._replacements():
            encoded = found.encode("utf-8", "surrogatepass")
            if encoded in data:
                data = data.replace(encoded, replacement.encode("utf-8"))
        return data

    def masked_request(self, uri: str, headers: Mapping[str, Any], body: bytes | None) -> tuple[str, bytes]:
        """The URI and body of a live request with its credentials masked, as they will be stored:
        what the request is keyed by, and what a missing-recording message may show."""
        self.learn_request(uri, headers)
        return self.mask_text(uri), self.mask_bytes(body or b"")

    @contextmanager
    def masking_logs(self) -> Iterator[None]:
        """Masks learned credentials in every log record created while the block runs."""
        previous = logging.getLogRecordFactory()

        def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # a broken format: logging reports it itself later
                return record
            masked = self.mask_text(message)
            if masked != message:
                record.msg, record.args = masked, None
            if record.exc_info and record.exc_info[1] is not None:
                text = logging.Formatter().formatException(record.exc_info)
                record.exc_text = self.mask_text(text)
            return record

        logging.setLogRecordFactory(make_record)
        try:
            yield
        finally:
            if logging.getLogRecordFactory() is make_record:
                logging.setLogRecordFactory(previous)

    # -- the stored forms ------------------------------------------------------------------

    def uri(self, uri: str) -> str:
        """`uri` with a placeholder host, key-like query values and learned credentials masked."""
        self._learn_environment()
        self.learn_request(uri, {})
        parts = urlsplit(self.mask_text(uri))
        query = parse_qsl(parts.query, keep_blank_values=True)
        masked = [(name, REDACTED if KEY_LIKE_PARAM.search(name) else value) for name, value in query]
        base = urlsplit(AZURE_PLACEHOLDER_URL if is_azure(uri) else OPENAI_PLACEHOLDER_URL)
        return urlunsplit((base.scheme, base.netloc, parts.path, urlencode(masked, safe="-_.~<>"), ""))

    def request(self, method: str, uri: str, headers: Mapping[str, Any], body: bytes) -> dict[str, Any]:
        """The stored form of a live request, scrubbed."""
        self._learn_environment()
        self.learn_request(uri, headers)
        kept: dict[str, list[str]] = {}
        for name in headers:
            lowered = name.lower()
            if lowered in _DROPPED_REQUEST_HEADERS or lowered.startswith("x-stainless-"):
                continue
            if lowered in _MASKED_HEADERS or KEY_LIKE_PARAM.search(lowered):
                kept[lowered] = [REDACTED]
            else:
                kept[lowered] = [self.mask_text(value) for value in _values(headers, lowered)]
        content_type = (kept.get("content-type") or [""])[0]
        return {"method": method.upper(), "uri": self.uri(uri), "headers": kept, "body": encode_body(self.mask_bytes(body), content_type)}

    def response(self, status: Mapping[str, Any], headers: Mapping[str, list[str]], body: bytes) -> dict[str, Any]:
        """The stored form of a live response, scrubbed and decompressed."""
        self._learn_environment()
        for name, values in headers.items():
            if name.lower() in _DROPPED_RESPONSE_HEADERS:
                for value in values:
                    self.remember(_cookie_values(value.partition(";")[0]), "a set-cookie header")
            elif name.lower() in _MASKED_HEADERS:
                self.remember(values, f"the {name.lower()} header")
        body, plain_headers = decompress(body, dict(headers))
        kept = {
            name: [REDACTED] if name.lower() in _MASKED_HEADERS else [self.mask_text(str(value)) for value in values]
            for name, values in plain_headers.items()
            if name.lower() not in _DROPPED_RESPONSE_HEADERS
        }
        masked = self.mask_bytes(body)
        if masked != body:
            for name in kept:
                if name.lower() == "content-length":
                    kept[name] = [str(len(masked))]
        content_type = (_values(kept, "content-type") or [""])[0]
        return {
            "status": {"code": int(status["code"]), "message": self.mask_text(str(status.get("message") or ""))},
            "headers": kept,
            "body": encode_body(masked, content_type),
        }

    # -- the last line of defence --------------------------------------------------------------

    def check(self, text: str, path: Path) -> None:
        """Raise SecretLeakError if `text` (about to be written to `path`) holds a live credential."""
        self._learn_environment()
        where = []
        for secret, source in [*self.secrets.items(), *self.hosts.items()]:
            lines = sorted({text.count("\n", 0, match.start()) + 1 for match in re.finditer(re.escape(secret), text)})
            if lines:
                # Name the credential by where it came from, never by value.
                where.append(f"the value of {source} on line(s) {', '.join(map(str, lines[:5]))}")
        if where:
            raise SecretLeakError(path, where)
