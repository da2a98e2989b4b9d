"""Keeping secrets out of cassettes, the API cache, log records, messages and reprs.

Four layers:

1. The scrubber learns the live credential values: from the environment (every provider's key
   variables in `pytest_llmcache.providers`, the Azure endpoint host) and from every request it
   sees (`credentials_in`: each provider's credential headers and query parameters, and
   anything *shaped* like a credential: a header, query parameter or JSON body field whose name
   says auth / key / token / secret / signature / password / cookie / session, and URL userinfo),
   plus names a project adds (``Scrubber(extra_headers=..., extra_query_params=...)``).
2. `Scrubber.request` / `Scrubber.response` drop or mask what is sensitive by name, put the
   provider's placeholder host in the URL, and then mask every learned value wherever else it is
   (a JSON body field, another query parameter, a response echoing it...): credentials become
   ``<redacted>``, an Azure resource host becomes the placeholder host.
   `Scrubber.stored_interactions` does the same to interactions read from a file (a plain vcrpy
   cassette carried over by ``new_episodes``, an import), learning from all of them first.
3. `Scrubber.check` (the text about to be written) and `Scrubber.check_interaction` (its bodies,
   decompressed, streams put back together) look for the learned values in every encoding a
   client or server might have used (plain, JSON ``\\u`` escapes, URL-encoded, base64 at any byte
   alignment) and refuse the write if any is left.
4. While a cassette is in use, `Scrubber.masking_logs` masks the learned values in every log
   record; `repr(scrubber)` shows counts and sources, never values.

Masking is symmetric: `Scrubber.masked_request` masks a request's own credentials the same way
before it is keyed, so a recording whose body held the live key replays with another key (or the
replay placeholder) in its place.
"""
from __future__ import annotations

import base64
import functools
import json
import logging
import os
import re
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from collections.abc import Callable, Iterable, Iterator, Mapping
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode, urlsplit, urlunsplit

from pytest_llmcache import providers
from pytest_llmcache.bodies import decode_body, decompress, encode_body, parse_json
from pytest_llmcache.errors import SecretLeakError
from pytest_llmcache.providers import is_azure, provider_for, secret_host

__all__ = [
    "KEY_LIKE_PARAM",
    "NOT_CREDENTIALS",
    "REDACTED",
    "Credential",
    "MaskedRequest",
    "Scrubber",
    "credentials_in",
    "is_azure",
    "is_credential_name",
    "without_userinfo",
]

REDACTED = "<redacted>"

# Names that look like credentials but are not (usage counts, rate limits, request identifiers):
# masking them would hide what a cassette is about, or break matching. Lower case, exact.
NOT_CREDENTIALS = frozenset(
    {
        "max_tokens", "max_completion_tokens", "max_output_tokens", "maxoutputtokens", "max_tokens_to_sample",
        "prompt_cache_key", "idempotency-key", "azureml-model-session", "keep-alive",
    }
)
_NOT_CREDENTIAL_PARTS = ("ratelimit", "rate-limit")  # x-ratelimit-remaining-tokens, anthropic-ratelimit-tokens-limit...
# A header or query parameter name that says it holds a credential. `code` (Azure Functions) and
# `sig` (SAS tokens) only as a whole word: they are too short to look for inside other names.
KEY_LIKE_PARAM = re.compile(
    r"(?i)auth|key|token|secret|signature|passw|pwd|credential|cookie|session|(?:^|[-_.])(?:sig|code)(?:$|[-_.])"
)
# A JSON body field that holds a credential: narrower, as request bodies are full of "tokens".
_KEY_LIKE_FIELD = re.compile(
    r"(?i)^(?:key|token|password|passwd|secret)$|api[-_]?key|secret|passw|credential|(?:access|auth|refresh|id|bearer)[-_]?token"
)
# Request headers that change between runs without changing meaning: never stored.
_VOLATILE_REQUEST_HEADERS = frozenset({"user-agent", "host", "content-length", "accept-encoding", "connection"})
_COOKIE_HEADERS = frozenset({"cookie", "set-cookie", "set-cookie2"})
_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})
# Shorter values would match innocent text; real keys are far longer.
_MIN_SECRET_LENGTH = 8
# Bounds on what the final check decompresses and walks (a hostile body must not exhaust memory).
_MAX_INFLATED = 64 * 1024 * 1024
_MAX_LAYERS = 4


def is_credential_name(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether a header or query parameter called `name` holds a credential: a provider's credential
    header, a name shaped like one (see `KEY_LIKE_PARAM`, minus `NOT_CREDENTIALS`), or one in `extra`."""
    lowered = name.lower()
    if lowered in extra or lowered in _KNOWN_CREDENTIAL_NAMES:
        return True
    if lowered in NOT_CREDENTIALS or any(part in lowered for part in _NOT_CREDENTIAL_PARTS) or lowered.startswith("x-stainless-"):
        return False
    return KEY_LIKE_PARAM.search(lowered) is not None


_KNOWN_CREDENTIAL_NAMES = frozenset(
    name for provider in providers.PROVIDERS for name in (*provider.credential_headers, *provider.credential_query_params)
) | _AUTH_HEADERS | _COOKIE_HEADERS


@functools.lru_cache(maxsize=4096)
def _header_kind(name: str, extra_headers: frozenset[str]) -> str | None:
    """What `credentials_in` finds in a header called `name`: "cookie", "credential" (an
    Authorization-like value) or None; decided once per name, as every request repeats them."""
    lowered = str(name).lower()
    if lowered in _COOKIE_HEADERS:
        return "cookie"
    if lowered in _AUTH_HEADERS or is_credential_name(lowered, extra_headers):
        return "credential"
    return "credential" if any(lowered in provider.masked_headers for provider in providers.PROVIDERS) else None


@dataclass(frozen=True)
class Credential:
    """A credential found in a request or response: where (safe to show) and its value (never shown)."""

    kind: str  # "header", "query parameter", "userinfo", "body field"
    name: str
    value: str = field(repr=False)

    @property
    def source(self) -> str:
        return f"the {self.name} {self.kind}"


def _values(headers: Mapping[str, Any], name: str) -> list[str]:
    """Every value of header `name` (any case; a value may be a list)."""
    found: list[str] = []
    for key, value in headers.items():
        if str(key).lower() == name:
            found += [str(item) for item in value] if isinstance(value, (list, tuple)) else [str(value)]
    return found


def _cookie_values(header: str) -> list[str]:
    """The values in a Cookie / Set-Cookie header (attributes like Path are not secrets)."""
    return [pair.partition("=")[2].strip() for pair in header.split(";") if "=" in pair]


def _credential(value: str) -> str:
    """An Authorization value without its scheme ("Bearer sk-..." -> "sk-...")."""
    scheme, _, rest = value.strip().partition(" ")
    return rest.strip() if rest and scheme.isalpha() else value.strip()


def _key_like_fields(document: Any) -> list[tuple[str, str]]:
    """(name, value) of every string field of a JSON document, at any depth, whose name is
    key-like (`_is_key_like_field`). Iteratively: a request body may nest deeper than Python's
    recursion limit. One loop, no generator: every request body sent is read."""
    found = []
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for name, value in node.items():
                if isinstance(value, str):
                    if _is_key_like_field(str(name)):
                        found.append((str(name), value))
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(item for item in node if isinstance(item, (dict, list)))
    return found


def credentials_in(
    uri: str, headers: Mapping[str, Any], body: bytes | None = None, extra_headers: Iterable[str] = (), extra_query_params: Iterable[str] = ()
) -> Iterator[Credential]:
    """Every credential a request (or, with its headers only, a response) carries, by the one set of
    rules the scrubber and ``llmcache verify`` share. Values are yielded as found (a placeholder
    too): callers filter."""
    extra_headers = frozenset(extra_headers)
    for name, value in headers.items():
        kind = _header_kind(name, extra_headers)
        if kind is not None:
            yield from _header_credentials(name, value, kind)
    yield from _target_credentials(uri, body, frozenset(extra_query_params))


def _header_credentials(name: str, value: Any, kind: str) -> Iterator[Credential]:
    """The credentials in header `name` (a value may be a list), of its `_header_kind`."""
    lowered = str(name).lower()
    values = [str(item) for item in value] if isinstance(value, (list, tuple)) else [str(value)]
    if kind == "cookie":
        for item in values:
            for cookie in _cookie_values(item.partition(";")[0] if lowered != "cookie" else item):
                yield Credential("header", lowered, cookie)
    else:
        for item in values:
            yield Credential("header", lowered, _credential(item))
            if "," in item:  # sent more than once, its values joined with ", " (as httpx reads them): each is one
                for part in item.split(","):
                    yield Credential("header", lowered, _credential(part))


def _target_credentials(uri: str, body: bytes | None, extra_query_params: frozenset[str], document: Any = None) -> Iterator[Credential]:
    """The credentials in a request's URL (query parameters, userinfo) and JSON body fields;
    `document`: the body as `parse_json` read it, when the caller has it (not read again)."""
    if "?" not in uri and "@" not in uri:
        query, password, username = [], None, None  # nothing to parse (the common case, every request)
    else:
        try:
            parts = urlsplit(uri)
            query = parse_qsl(parts.query, keep_blank_values=True)
            password, username = parts.password, parts.username
        except ValueError:
            return
    for name, value in query:
        if is_credential_name(name, extra_query_params):
            yield Credential("query parameter", name.lower(), value)
    if password:
        yield Credential("userinfo", "URL", password)
        yield Credential("userinfo", "URL", f"{username or ''}:{password}")
    elif username:
        yield Credential("userinfo", "URL", username)
    if document is None:
        # Every JSON body is read: a name can be written with escapes ("api_\u006bey"), so no
        # search of its bytes finds every key-like field. One parse_json refused as too deep is
        # read by json itself (a body deeper than json reads fails loudly, not silently unread).
        if not body or body.lstrip()[:1] not in (b"{", b"["):
            return
        document = parse_json(body)
        if document is None:
            try:
                document = json.loads(body)
            except ValueError:
                return
    for name, value in _key_like_fields(document):
        yield Credential("body field", repr(name), value)


@functools.lru_cache(maxsize=4096)  # bodies repeat their field names
def _is_key_like_field(name: str) -> bool:
    """Whether a JSON body field called `name` holds a credential (see `_KEY_LIKE_FIELD`)."""
    return name.lower() not in NOT_CREDENTIALS and _KEY_LIKE_FIELD.search(name) is not None


# How many sets of header names, and header values, the session keeps what it read of (a suite sends a few).
_MAX_LEARNED = 256


@functools.lru_cache(maxsize=_MAX_LEARNED)
def _header_secrets(name: str, value: str, kind: str) -> tuple[tuple[str, str], ...]:
    """(credential, where it came from) of each credential header `name` with `value` holds, as
    `Scrubber.remember` keeps them. The values stay in this process's memory, as the scrubbers' do."""
    return tuple((credential.value.strip(), credential.source) for credential in _header_credentials(name, value, kind))


@functools.lru_cache(maxsize=_MAX_LEARNED)
def _credential_header_kinds(names: tuple[str, ...], extra_headers: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """The names among a request's header `names` that may hold credentials, with their kinds
    (`_header_kind`). A client sends the same names with every request of every test: decided once
    per set of names for the session, not once per test's scrubber."""
    return tuple((name, kind) for name in names if (kind := _header_kind(name, extra_headers)) is not None)


class _LogMasking:
    """`Scrubber.masking_logs`: while a cassette is in use, its scrubber masks every log record made
    (a class: every test enters one, and a generator with its closure is several objects for the
    garbage collector to go through). One record factory, `_masked_record`, serves every cassette in
    use (`_MASKING`), so cassettes left in any order (two threads' tests, say) leave the factory that
    was there before, and no scrubber behind."""

    def __init__(self, scrubber: Scrubber) -> None:
        self.scrubber = scrubber

    def __enter__(self) -> None:
        global _factory_before
        with _MASKING_LOCK:
            if not _MASKING:
                _factory_before = logging.getLogRecordFactory()
                logging.setLogRecordFactory(_masked_record)
            _MASKING.append(self.scrubber)

    def __exit__(self, *exc_info: object) -> None:
        with _MASKING_LOCK:
            for index in range(len(_MASKING) - 1, -1, -1):  # this one, wherever the order left it
                if _MASKING[index] is self.scrubber:
                    del _MASKING[index]
                    break
            if not _MASKING and logging.getLogRecordFactory() is _masked_record:
                logging.setLogRecordFactory(_factory_before)


_MASKING_LOCK = threading.Lock()
_MASKING: list[Scrubber] = []  # the scrubbers of the cassettes in use, first entered first
_factory_before: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()  # in place before the first


def _masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """The record `_factory_before` makes, masked by each scrubber in use (a factory installed on top
    of this one and left behind still gets it, unmasked once none is)."""
    record = _factory_before(*args, **kwargs)
    scrubbers = list(_MASKING)
    if not scrubbers:
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken format: logging reports it itself later
        return record
    masked = message
    for scrubber in scrubbers:
        masked = scrubber.mask_message(masked)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and record.exc_info[1] is not None:
        text = logging.Formatter().formatException(record.exc_info)
        for scrubber in scrubbers:
            text = scrubber.mask_message(text)
        record.exc_text = text
    return record


class MaskedRequest(NamedTuple):
    """`Scrubber.masked_request`: a request's URI and body as they will be stored."""

    uri: str
    body: bytes
    document: Any  # the masked body as `parse_json` reads it (None: not JSON)


@dataclass(frozen=True, repr=False)
class _Masks:
    """What masking replaces: every learned secret in each form it may be written in (as it is,
    URL-encoded, JSON-escaped), longest first, as text and as UTF-8; and the secret hosts, which
    are matched in any case."""

    text: tuple[tuple[str, str], ...]
    data: tuple[tuple[bytes, bytes], ...]
    hosts_text: re.Pattern[str] | None
    hosts_data: re.Pattern[bytes] | None

    def __repr__(self) -> str:  # never the values (pytest -l prints the locals of failing frames)
        return f"<masks: {len(self.text)} form(s) of learned values and hosts>"


# Every test's scrubber learns the same few values (the environment's, the Authorization header's):
# what they mask is built once. The values stay in this process's memory, as the scrubbers' do.
@functools.lru_cache(maxsize=64)
def _masks_of(secrets: tuple[str, ...], hosts: tuple[str, ...]) -> _Masks:
    pairs: dict[str, str] = {}
    for secret in secrets:
        # surrogatepass, as the encoded pairs below: a variable that is not UTF-8 reads with surrogates
        escaped = (quote(secret, safe="", errors="surrogatepass"), quote_plus(secret, safe="", errors="surrogatepass"))
        for form in (secret, *escaped, json.dumps(secret)[1:-1]):
            pairs.setdefault(form, REDACTED)
    for host in hosts:
        pairs.setdefault(host, provider_for(host).placeholder_host)
    text = tuple(sorted(pairs.items(), key=lambda pair: -len(pair[0])))
    data = tuple((found.encode("utf-8", "surrogatepass"), replacement.encode("utf-8")) for found, replacement in text)
    # Host names are case-insensitive: one written as ``Contoso-Prod`` is the same secret.
    pattern = "|".join(re.escape(host) for host in sorted(hosts, key=len, reverse=True) if host.isascii())
    return _Masks(text, data, re.compile(pattern, re.IGNORECASE) if pattern else None, re.compile(pattern.encode("ascii"), re.IGNORECASE) if pattern else None)


@dataclass(eq=False)
class Scrubber:
    """Scrubs recorded interactions and remembers the live credentials it saw, for masking and `check`.

    A project adds credential names through the ``llm_scrubber`` fixture::

        @pytest.fixture
        def llm_scrubber():
            return Scrubber(extra_headers=["x-gateway-pass"], extra_query_params=["ticket"])
    """

    secrets: dict[str, str] = field(default_factory=dict)  # value -> where it came from
    hosts: dict[str, str] = field(default_factory=dict)  # Azure resource host -> where it came from
    extra_headers: Iterable[str] = ()
    extra_query_params: Iterable[str] = ()

    def __post_init__(self) -> None:
        self.extra_headers = frozenset(name.lower() for name in self.extra_headers)
        self.extra_query_params = frozenset(name.lower() for name in self.extra_query_params)
        self.learn_environment()

    def __repr__(self) -> str:
        # Never the values: pytest prints fixture arguments and locals (-l) of failing frames.
        sources = sorted({*self.secrets.values(), *self.hosts.values()})
        return f"<Scrubber: {len(self.secrets)} credential(s), {len(self.hosts)} secret host(s) learned from {', '.join(sources) or 'nothing'}>"

    __str__ = __repr__

    # -- learning --------------------------------------------------------------------------

    def remember(self, values: Iterable[str], source: str) -> None:
        for value in values:
            value = value.strip()
            if len(value) >= _MIN_SECRET_LENGTH and value != REDACTED and value not in self.secrets and value not in _PLACEHOLDER_HOSTS:
                self.secrets[value] = source
                self._current_masks = None

    def remember_host(self, host: str | None, source: str) -> None:
        if host and host.lower() not in self.hosts:
            self.hosts[host.lower()] = source
            self._current_masks = None

    def learn_environment(self) -> None:
        """Learns the credentials in the environment now (a test may set them after this scrubber was made)."""
        snapshot = _environment_snapshot(_WATCHED_ENV_VARS)
        if snapshot == self._environment:
            return
        for value, source, host in _environment_credentials(snapshot):
            if host:
                self.remember_host(value, source)
            else:
                self.remember((value,), source)
        self._environment = snapshot  # after: another thread masking meanwhile reads it again

    def learn_request(self, uri: str, headers: Mapping[str, Any], body: bytes | None = None, document: Any = None) -> None:
        """Remembers the credentials a live request carries (the environment is read when recording),
        as `credentials_in` finds them (`document`: `body` as `parse_json` read it, if known).

        Every request of every test repeats its Authorization header and its URL: what a header
        value holds and whether a URL's host is secret are read once for the session
        (`_header_secrets`, `secret_host`)."""
        for name, kind, value in self._credential_headers_of(headers):
            if type(value) is not str:  # a list of values (a multidict's repeated name)
                for credential in _header_credentials(name, value, kind):
                    self.remember([credential.value], credential.source)
                continue
            for secret, source in _header_secrets(name, value, kind):
                self.remember((secret,), source)
        for credential in _target_credentials(uri, body, frozenset(self.extra_query_params), document):
            self.remember([credential.value], credential.source)
        self.remember_host(secret_host(uri), "the Azure endpoint")

    def _credential_headers_of(self, headers: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
        """(name, `_header_kind`, value) of the headers that may hold credentials. Of a dict, which
        names may is decided once per set of names (`_credential_header_kinds`); any other mapping
        (a multidict repeats names) is read item by item."""
        extra_headers = frozenset(self.extra_headers)
        if type(headers) is not dict:
            return [(name, kind, value) for name, value in headers.items() if (kind := _header_kind(name, extra_headers)) is not None]
        return [(name, kind, headers[name]) for name, kind in _credential_header_kinds(tuple(headers), extra_headers)]

    def learn_interaction(self, interaction: Mapping[str, Any]) -> None:
        """Remembers the credentials of a stored interaction's request, and the cookies its response set."""
        request, response = interaction["request"], interaction["response"]
        try:
            body = decode_body(request.get("body"))
        except ValueError:
            body = b""
        self.learn_request(str(request["uri"]), request.get("headers") or {}, body)
        for name in _COOKIE_HEADERS:
            for value in _values(response.get("headers") or {}, name):
                self.remember(_cookie_values(value.partition(";")[0]), f"a {name} header")

    # -- masking ---------------------------------------------------------------------------

    _current_masks: _Masks | None = field(default=None, init=False, repr=False, compare=False)  # None: learned since
    _environment: _EnvironmentSnapshot | None = field(default=None, init=False, repr=False, compare=False)

    def _masks(self) -> _Masks:
        if self._current_masks is None:
            self._current_masks = _masks_of(tuple(self.secrets), tuple(self.hosts))
        return self._current_masks

    def mask_text(self, text: str) -> str:
        """`text` with every learned credential replaced (a host in any case)."""
        masks = self._masks()
        for found, replacement in masks.text:
            if found in text:
                text = text.replace(found, replacement)
        if masks.hosts_text is not None:
            text = masks.hosts_text.sub(lambda match: self._placeholder(match.group(0)), text)
        return text

    def mask_bytes(self, data: bytes) -> bytes:
        """`data` with every learned credential replaced (compared as UTF-8 bytes)."""
        masks = self._masks()
        for found, replacement in masks.data:
            if found in data:
                data = data.replace(found, replacement)
        if masks.hosts_data is not None:
            data = masks.hosts_data.sub(lambda match: self._placeholder(match.group(0).decode("ascii")).encode("ascii"), data)
        return data

    def _placeholder(self, host: str) -> str:
        return provider_for(host.lower()).placeholder_host

    def masked_request(self, uri: str, headers: Mapping[str, Any], body: bytes | None) -> MaskedRequest:
        """The URI and body of a live request with its credentials masked, as they will be stored:
        what the request is keyed by, and what a missing-recording message may show. The environment
        is read first: a key the test set since is masked on replay as it was when recorded."""
        self.learn_environment()
        body = body or b""
        document = parse_json(body)
        self.learn_request(uri, headers, body, document)
        masked = self.mask_bytes(body)
        if masked is not body:  # (mask_bytes returns its argument when there is nothing to mask)
            document = parse_json(masked)
        return MaskedRequest(self.mask_text(without_userinfo(uri)), masked, document)

    def mask_message(self, text: str) -> str:
        """`text` (a log message, a failure report) with the credentials of every URL in it learned
        first (a log record may show a request before the scrubber saw it), learned values masked and
        URL userinfo removed whatever its length; a key the test put in the environment since it was
        last read is learned first too (a log record or warning may come before any request)."""
        self.learn_environment()
        if "://" in text:
            for url in _URL.findall(text):
                self.learn_request(url, {})
            text = _USERINFO.sub(rf"\1{REDACTED}@", text)
        return self.mask_text(text)

    def masking_logs(self) -> _LogMasking:
        """Masks learned credentials in every log record created while the block (``with``) runs."""
        return _LogMasking(self)

    # -- the stored forms ------------------------------------------------------------------

    def uri(self, uri: str, headers: Mapping[str, Any] | None = None) -> str:
        """`uri` with its provider's placeholder host, no userinfo, credential query values and
        learned credentials masked."""
        self.learn_environment()
        self.learn_request(uri, headers or {})
        parts = urlsplit(self.mask_text(without_userinfo(uri)))
        query = parse_qsl(parts.query, keep_blank_values=True)
        masked = [(name, REDACTED if is_credential_name(name, self.extra_query_params) else value) for name, value in query]
        base = urlsplit(provider_for(uri, headers).placeholder_url)
        return urlunsplit((base.scheme, base.netloc, parts.path, urlencode(masked, safe="-_.~<>"), ""))

    def request(self, method: str, uri: str, headers: Mapping[str, Any], body: bytes) -> dict[str, Any]:
        """The stored form of a live request, scrubbed."""
        self.learn_environment()
        self.learn_request(uri, headers, body)
        kept: dict[str, list[str]] = {}
        for name in headers:
            lowered = str(name).lower()
            if lowered in _VOLATILE_REQUEST_HEADERS or lowered in _KNOWN_CREDENTIAL_NAMES or lowered.startswith("x-stainless-"):
                continue
            if is_credential_name(lowered, self.extra_headers) or lowered in _MASKED_HEADERS:
                kept[lowered] = [REDACTED]
            else:
                kept[lowered] = [self.mask_text(value) for value in _values(headers, lowered)]
        content_type = (kept.get("content-type") or [""])[0]
        return {"method": method.upper(), "uri": self.uri(uri, headers), "headers": kept, "body": encode_body(self.mask_bytes(body), content_type)}

    def response(self, status: Mapping[str, Any], headers: Mapping[str, Any], body: bytes) -> dict[str, Any]:
        """The stored form of a live response, scrubbed and decompressed."""
        self.learn_environment()
        listed = {str(name): _values(headers, str(name).lower()) for name in headers}
        for name, values in listed.items():
            if name.lower() in _COOKIE_HEADERS:
                for value in values:
                    self.remember(_cookie_values(value.partition(";")[0]), f"a {name.lower()} header")
            elif name.lower() in _MASKED_HEADERS:
                self.remember(values, f"the {name.lower()} header")
        body, plain_headers = decompress(body, listed)
        kept = {
            name: [REDACTED] if name.lower() in _MASKED_HEADERS or is_credential_name(name, self.extra_headers) else [self.mask_text(value) for value in values]
            for name, values in plain_headers.items()
            if name.lower() not in _COOKIE_HEADERS
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

    def stored_interaction(self, interaction: Mapping[str, Any]) -> dict[str, Any]:
        """`interaction` (read from any cassette flavour) scrubbed as if it had just been recorded.

        Raises ValueError for a body that is not one."""
        request, response = interaction["request"], interaction["response"]
        body = decode_body(response.get("body"))
        scrubbed = self.response(response["status"], response.get("headers") or {}, body)
        for name in scrubbed["headers"]:
            if name.lower() == "content-length":
                # A re-serialised body (pydantic-ai's parsed_body) no longer has the recorded length.
                scrubbed["headers"][name] = [str(len(decode_body(scrubbed["body"])))]
        return {
            "request": self.request(request["method"], str(request["uri"]), request.get("headers") or {}, decode_body(request.get("body"))),
            "response": scrubbed,
        }

    def stored_interactions(self, interactions: Iterable[Any]) -> list[Any]:
        """Every interaction as it may be written: the credentials of all of them learned first (a key
        echoed by the first response is masked like the same echo later), then each one scrubbed.

        Items that are `cassette.Entry` objects read with their text from a file this plugin wrote
        were scrubbed when recorded and are kept as they are (parsing them all again would cost
        every save), unless their text holds a value learned since (a file written by a version
        with fewer rules); everything else (new recordings, a plain vcrpy cassette's
        interactions) is scrubbed again."""
        items = list(interactions)
        foreign = [index for index, item in enumerate(items) if getattr(item, "text", None) is None]
        for index in foreign:
            item = items[index]
            self.learn_interaction(getattr(item, "interaction", item))
        foreign += [index for index, item in enumerate(items) if getattr(item, "text", None) and self.mask_text(item.text) != item.text]
        for index in foreign:
            item = items[index]
            items[index] = self.stored_interaction(getattr(item, "interaction", item))
        return items

    # -- the last line of defence --------------------------------------------------------------

    def check(self, text: str, path: Path, interactions: Iterable[Any] = ()) -> None:
        """Raise SecretLeakError if `text` (about to be written to `path`) or the bodies of
        `interactions` (decoded, decompressed, streams put together) hold a live credential in any
        encoding."""
        self.learn_environment()
        where = self._find(text, line_numbers=True)
        for index, item in enumerate(interactions):
            interaction = getattr(item, "interaction", item)
            for side in ("request", "response"):
                for view in _body_views(interaction[side]):
                    where += [f"{found} in the {side} body of interaction #{index}" for found in self._find(view, line_numbers=False)]
        if where:
            raise SecretLeakError(path, list(dict.fromkeys(where)))

    def _find(self, text: str, line_numbers: bool) -> list[str]:
        """Where `text` holds a learned value, each named by its source, never by value."""
        found: list[str] = []
        views = _decoded_views(text)
        packed = text.translate(_WHITESPACE)  # base64 folded over several lines, joined again
        lowered = text.lower() if self.hosts else text
        for secret, source in [*self.secrets.items(), *self.hosts.items()]:
            name = f"the value of {source}"
            host = secret in self.hosts  # compared in any case
            if secret in text or (host and secret in lowered):
                if line_numbers:
                    pattern = re.compile(re.escape(secret), re.IGNORECASE if host else 0)
                    lines = sorted({text.count("\n", 0, match.start()) + 1 for match in pattern.finditer(text)})
                    found.append(f"{name} on line(s) {', '.join(map(str, lines[:5]))}")
                else:
                    found.append(name)
                continue
            encoding = next((label for label, view in views if secret in view), None)
            if encoding is None and any(core in packed for core in _base64_cores(secret)):
                encoding = "base64-encoded"
            if encoding is not None:
                found.append(f"{name} ({encoding})")
        return found


_PLACEHOLDER_HOSTS = providers.placeholder_hosts()
_MASKED_HEADERS = frozenset(name for provider in providers.PROVIDERS for name in provider.masked_headers)
_ENDPOINT_ENV_VARS = providers.endpoint_env_vars()
_WATCHED_ENV_VARS = (*providers.credential_env_vars(), *_ENDPOINT_ENV_VARS)


class _EnvironmentSnapshot(NamedTuple):
    """Environment variables' values at one moment, as cheaply as they can be compared: `raw`, the
    entries of os.environ's own table (encoded), or else what a stand-in for os.environ gives."""

    raw: bool
    values: tuple[Any, ...]

    def __repr__(self) -> str:  # never the values (pytest -l prints locals)
        return f"<environment snapshot of {len(self.values)} variable(s)>"

    def decoded(self) -> tuple[str | None, ...]:
        """The values as os.environ.get gives them (None: unset)."""
        if not self.raw:
            return self.values
        # os.environ's own decoding (the file system encoding, surrogateescape), whatever stands
        # in for os.environ by now
        return tuple(None if value is None else os.fsdecode(value) for value in self.values)


def _environment_snapshot(names: tuple[str, ...]) -> _EnvironmentSnapshot:
    """The values of environment variables `names` now (see `environment_values`).

    Read from os.environ's own table when it is the usual one: os.environ.get raises and catches
    a KeyError for each unset name (about 1.5 us each; every Scrubber made, every interaction
    recorded and every replaying test's placeholders read several). Anything else standing in for
    os.environ is read through get."""
    environ: Any = os.environ
    table = getattr(environ, "_data", None)
    if type(environ) is not os._Environ or not isinstance(table, dict):
        return _EnvironmentSnapshot(False, tuple(environ.get(name) for name in names))
    known = _ENV_KEYS.get(names)
    if known is None or known[0] is not environ:
        if len(_ENV_KEYS) >= 64:  # a project's own placeholder sets, if many: bounded
            _ENV_KEYS.clear()
        known = _ENV_KEYS[names] = (environ, tuple(environ.encodekey(name) for name in names))
    return _EnvironmentSnapshot(True, tuple(map(table.get, known[1])))


def environment_values(names: tuple[str, ...]) -> tuple[str | None, ...]:
    """The values of environment variables `names` now, as os.environ.get gives them (None: unset)."""
    return _environment_snapshot(names).decoded()


@functools.lru_cache(maxsize=16)  # a suite changes its credentials a few times at most
def _environment_credentials(snapshot: _EnvironmentSnapshot) -> tuple[tuple[str, str, bool], ...]:
    """(value, source, whether it is a secret host) of each credential in a snapshot of
    `_WATCHED_ENV_VARS`: what every test's fresh scrubber learns, read once per environment. The
    values stay in this process's memory, as the scrubbers' do."""
    found = []
    for name, value in zip(_WATCHED_ENV_VARS, snapshot.decoded(), strict=True):
        if not value:
            continue
        if name in _ENDPOINT_ENV_VARS:
            host = secret_host(value)
            if host:
                found.append((host, f"${name}", True))
        else:
            found.append((value, f"${name}", False))
    return tuple(found)


# Names as os.environ's table holds them (encoded), with the os.environ they are for.
_ENV_KEYS: dict[tuple[str, ...], tuple[Any, tuple[Any, ...]]] = {}


_URL = re.compile(r"""(?i)\b[a-z][a-z0-9+.-]*://[^\s'"<>]+""")
_USERINFO = re.compile(r"""(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s@'"<>]+@""")
_WHITESPACE = dict.fromkeys(map(ord, " \t\r\n"))
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def without_userinfo(uri: str) -> str:
    """`uri` without ``user:password@`` (a proxy's credentials must not reach a key or a message)."""
    scheme, separator, rest = uri.partition("://")
    if not separator:
        return uri
    authority, slash, tail = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{tail}"


def _decoded_views(text: str) -> list[tuple[str, str]]:
    """(encoding, `text` decoded from it) for the text encodings a credential may hide in."""
    unescaped = _UNICODE_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text).replace("\\/", "/")
    views = [("JSON-escaped", unescaped), ("URL-encoded", unquote(text)), ("JSON-escaped and URL-encoded", unquote(unescaped))]
    return [(label, view) for label, view in views if view != text]


def _base64_cores(secret: str) -> set[str]:
    """The base64 characters that encode `secret` whatever bytes surround it: for each of the three
    alignments, the characters fully determined by the secret's bits (standard and URL-safe)."""
    data = secret.encode("utf-8", "surrogatepass")  # as the masking pairs: a variable that is not UTF-8
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode("ascii")
        core = encoded[-(-8 * offset // 6) : (8 * (offset + len(data))) // 6]
        cores |= {core, core.translate(str.maketrans("+/", "-_"))}
    return {core for core in cores if len(core) >= _MIN_SECRET_LENGTH}


def _body_views(part: Mapping[str, Any]) -> Iterator[str]:
    """The texts a stored body holds beyond its stored form: each compressed layer undone (gzip or
    zlib streams anywhere in it, an uploaded .gz file too; a doubled content-encoding), and a
    stream's text fields put together across its events (a key split over two deltas)."""
    try:
        raw = decode_body(part.get("body"))
    except ValueError:
        return
    encodings = [item.strip().lower() for value in _values(part.get("headers") or {}, "content-encoding") for item in value.split(",")]
    for layer in _layers(raw, encodings):
        text = layer.decode("utf-8", "replace")
        if layer is not raw:
            yield text
        joined = _joined_stream_text(text)
        if joined:
            yield joined


def _layers(raw: bytes, encodings: list[str]) -> list[bytes]:
    """`raw` and every decompressed form found in it, up to `_MAX_LAYERS` deep."""
    layers, pending = [raw], [(raw, 0)]
    while pending:
        data, depth = pending.pop()
        if depth >= _MAX_LAYERS:
            continue
        for inflated in _inflate_all(data, encodings if depth == 0 else []):
            layers.append(inflated)
            pending.append((inflated, depth + 1))
    return layers


def _inflate_all(data: bytes, encodings: list[str]) -> Iterator[bytes]:
    """Each gzip / zlib stream starting anywhere in `data`, decompressed; and `data` undone by the
    content-encodings named (brotli and zstd have no magic bytes to look for)."""
    starts = [match.start() for match in re.finditer(rb"\x1f\x8b\x08|\x78[\x01\x5e\x9c\xda]", data[: _MAX_INFLATED])][:32]
    for start in starts:
        try:
            inflater = zlib.decompressobj(47)
            inflated = inflater.decompress(data[start:], _MAX_INFLATED)
        except zlib.error:
            continue
        if inflated:
            yield inflated
    for encoding in reversed(encodings):
        if encoding in ("gzip", "x-gzip", "deflate", "identity", ""):
            continue  # found by their magic bytes above
        decoded, _ = decompress(data, {"content-encoding": [encoding]})
        if decoded is not data:
            yield decoded


def _joined_stream_text(text: str) -> str:
    """For a server-sent-events stream of JSON events: each string field's values across all events
    joined (``choices.0.delta.content`` of every chunk, one line per field), else ""."""
    if "data:" not in text:
        return ""
    joined: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        try:
            document = json.loads(line[5:])
        except ValueError:
            continue
        stack: list[tuple[str, Any]] = [("", document)]
        while stack:
            path, node = stack.pop()
            if isinstance(node, str):
                joined.setdefault(path, []).append(node)
            elif isinstance(node, dict):
                stack.extend((f"{path}.{name}", value) for name, value in node.items())
            elif isinstance(node, list):
                stack.extend((f"{path}.{index}", value) for index, value in enumerate(node))
    return "\n".join("".join(values) for values in joined.values() if len(values) > 1)
