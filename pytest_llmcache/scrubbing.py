"""Keeping secrets out of cassettes.

Two layers: `Scrubber.request` / `Scrubber.response` drop or mask what is known to be sensitive
(auth headers, organisation/project ids, cookies, key-like query parameters, the endpoint host)
as interactions are recorded; then `Scrubber.check` looks for the live credential values in the
exact text about to be written and refuses the write if any is left.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pytest_llmcache.bodies import decompress, encode_body
from pytest_llmcache.errors import SecretLeakError

__all__ = ["AZURE_PLACEHOLDER_URL", "KEY_LIKE_PARAM", "OPENAI_PLACEHOLDER_URL", "REDACTED", "Scrubber", "is_azure"]

REDACTED = "<redacted>"
OPENAI_PLACEHOLDER_URL = "https://api.openai.test"
AZURE_PLACEHOLDER_URL = "https://placeholder.openai.azure.com"

# Request headers that are secret, or change between runs without changing meaning.
_DROPPED_REQUEST_HEADERS = frozenset(
    {"authorization", "api-key", "cookie", "user-agent", "host", "content-length", "accept-encoding", "connection"}
)
_MASKED_HEADERS = frozenset({"openai-organization", "openai-project"})
_DROPPED_RESPONSE_HEADERS = frozenset({"set-cookie"})
KEY_LIKE_PARAM = re.compile(r"(?i)(key|token|secret|sig|signature|password|credential)")
# Where live credentials come from besides the requests themselves.
_SECRET_ENV_VARS = ("OPENAI_API_KEY", "AZURE_OPENAI_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "OPENAI_ADMIN_KEY")
# Shorter values would match innocent text; real keys are far longer.
_MIN_SECRET_LENGTH = 8


def is_azure(uri: str) -> bool:
    """Whether `uri` is an Azure OpenAI endpoint (by host or by the /openai/ path prefix)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    return host.endswith((".openai.azure.com", ".cognitiveservices.azure.com")) or parts.path.startswith("/openai/")


def _values(headers: Mapping[str, Any], name: str) -> list[str]:
    value = next((value for key, value in headers.items() if key.lower() == name), None)
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, (list, tuple)) else [str(value)]


@dataclass
class Scrubber:
    """Scrubs recorded interactions and remembers the live credentials it saw, for `check`."""

    secrets: dict[str, str] = field(default_factory=dict)  # value -> where it came from

    def __post_init__(self) -> None:
        for name in _SECRET_ENV_VARS:
            self.remember([os.environ.get(name, "")], f"${name}")

    def remember(self, values: Iterable[str], source: str) -> None:
        for value in values:
            if len(value) >= _MIN_SECRET_LENGTH:
                self.secrets.setdefault(value, source)

    def uri(self, uri: str) -> str:
        """`uri` with a placeholder host and key-like query values masked."""
        parts = urlsplit(uri)
        query = parse_qsl(parts.query, keep_blank_values=True)
        self.remember((value for name, value in query if KEY_LIKE_PARAM.search(name)), "a query parameter")
        masked = [(name, REDACTED if KEY_LIKE_PARAM.search(name) else value) for name, value in query]
        base = urlsplit(AZURE_PLACEHOLDER_URL if is_azure(uri) else OPENAI_PLACEHOLDER_URL)
        return urlunsplit((base.scheme, base.netloc, parts.path, urlencode(masked, safe="-_.~<>"), ""))

    def request(self, method: str, uri: str, headers: Mapping[str, Any], body: bytes) -> dict[str, Any]:
        """The stored form of a live request, scrubbed."""
        self.remember((value.removeprefix("Bearer ").strip() for value in _values(headers, "authorization")), "the authorization header")
        self.remember(_values(headers, "api-key"), "the api-key header")
        kept: dict[str, list[str]] = {}
        for name, value in headers.items():
            lowered = name.lower()
            if lowered in _DROPPED_REQUEST_HEADERS or lowered.startswith("x-stainless-"):
                continue
            kept[lowered] = [REDACTED] if lowered in _MASKED_HEADERS else _values(headers, lowered)
        content_type = (kept.get("content-type") or [""])[0]
        return {"method": method.upper(), "uri": self.uri(uri), "headers": kept, "body": encode_body(body, content_type)}

    def response(self, status: Mapping[str, Any], headers: Mapping[str, list[str]], body: bytes) -> dict[str, Any]:
        """The stored form of a live response, scrubbed and decompressed."""
        body, plain_headers = decompress(body, dict(headers))
        kept = {
            name: [REDACTED] if name.lower() in _MASKED_HEADERS else list(values)
            for name, values in plain_headers.items()
            if name.lower() not in _DROPPED_RESPONSE_HEADERS
        }
        content_type = (_values(kept, "content-type") or [""])[0]
        return {
            "status": {"code": int(status["code"]), "message": str(status.get("message") or "")},
            "headers": kept,
            "body": encode_body(body, content_type),
        }

    def check(self, text: str, path: Path) -> None:
        """Raise SecretLeakError if `text` (about to be written to `path`) holds a live credential."""
        where = []
        for secret, source in self.secrets.items():
            lines = sorted({text.count("\n", 0, match.start()) + 1 for match in re.finditer(re.escape(secret), text)})
            if lines:
                # Name the credential by where it came from, never by value.
                where.append(f"the value of {source} on line(s) {', '.join(map(str, lines[:5]))}")
        if where:
            raise SecretLeakError(path, where)
