"""Requests that are not LLM API calls: telemetry, trace uploads, price lists, anything a user marks.

They are never recorded. While recording they go out as they would without the plugin; while a
cassette only replays they get a refusal response (`refusal`: 403 with ``x-should-retry: false``,
so SDKs and exporters give up at once instead of retrying) and nothing else happens: no miss, no
failed test, whichever test a background thread's upload lands in.

A rule is ``[METHOD ]HOST[PATH]``: HOST and PATH are shell-style patterns (``*`` also matches
``/`` and ``.``), HOST is matched without the port, no PATH means any path, no METHOD any method;
a leading ``http://`` or ``https://`` is allowed. A rule never covers a request to an LLM endpoint
(a path the provider table knows: chat completions, responses, messages, generateContent, ...):
those are recorded and replayed whatever the rules say, so a test's own LLM call never goes
unnoticed.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from pytest_llmcache.providers import endpoint_for
from pytest_llmcache.scrubbing import without_userinfo

__all__ = ["DEFAULT_IGNORE", "OFFLINE_ENV", "IgnorePolicy", "IgnoreRule", "refusal"]

# (rule, why it is there): documented in the README's Frameworks section.
DEFAULT_IGNORE: tuple[tuple[str, str], ...] = (
    ("POST api.openai.com/v1/traces/ingest", "openai-agents' trace uploads"),
    ("GET raw.githubusercontent.com/BerriAI/litellm/*", "litellm's model price map and beta-header list"),
    ("*.smith.langchain.com", "LangSmith tracing (langchain)"),
    ("*.posthog.com", "PostHog product telemetry"),
    ("logfire-*.pydantic.dev", "Logfire (pydantic-ai instrumentation)"),
)
# Set (when unset) for the whole session: frameworks' run-time downloads that have an offline switch.
OFFLINE_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}

_METHOD = re.compile(r"[A-Za-z]+")
REFUSAL_STATUS = 403
_SEEN_LIMIT = 1024


@dataclass(frozen=True)
class IgnoreRule:
    """One ``[METHOD ]HOST[PATH]`` rule (see the module docstring)."""

    host: str
    path: str = "*"
    method: str = "*"
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> IgnoreRule:
        """A rule from its text; ValueError naming the text when it is not one."""
        words = text.split()
        if not words or len(words) > 2 or (len(words) == 2 and not _METHOD.fullmatch(words[0])):
            raise ValueError(f"llm_ignore rule {text!r} is not '[METHOD ]HOST[PATH]' (e.g. 'POST api.openai.com/v1/traces/ingest')")
        method = words[0].upper() if len(words) == 2 else "*"
        target = re.sub(r"^https?://", "", words[-1], flags=re.IGNORECASE)
        host, slash, path = target.partition("/")
        if not host or ":" in host:
            raise ValueError(f"llm_ignore rule {text!r} needs a host pattern without a port, e.g. '*.posthog.com'")
        return cls(host.lower(), slash + path if slash else "*", method, " ".join(words))

    def covers(self, method: str, host: str, path: str) -> bool:
        return (self.method == "*" or self.method == method.upper()) and fnmatchcase(host, self.host) and fnmatchcase(path, self.path)


@dataclass(frozen=True)
class IgnorePolicy:
    """The rules in force for a cassette."""

    rules: tuple[IgnoreRule, ...] = ()
    # Every request a cassette sees is checked, and tests send the same few URLs again and again.
    _seen: dict[tuple[str, str], IgnoreRule | None] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, rules: Iterable[IgnoreRule | str]) -> IgnorePolicy:
        return cls(tuple(rule if isinstance(rule, IgnoreRule) else IgnoreRule.parse(rule) for rule in rules))

    def rule_for(self, method: str, url: str) -> IgnoreRule | None:
        """The first rule covering this request, None when none does or it is an LLM API call."""
        if not self.rules:
            return None
        try:
            return self._seen[method, url]
        except KeyError:
            if len(self._seen) > _SEEN_LIMIT:
                self._seen.clear()
            rule = self._seen[method, url] = self._find(method, url)
            return rule

    def _find(self, method: str, url: str) -> IgnoreRule | None:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        rule = next((rule for rule in self.rules if rule.covers(method, host, parts.path or "/")), None)
        if rule is None or endpoint_for(url) is not None:
            return None
        return rule


def refusal(method: str, url: str, rule: IgnoreRule) -> tuple[int, dict[str, list[str]], bytes]:
    """Status, headers and body answering an ignored request while replaying."""
    target = f"{method.upper()} {urlsplit(without_userinfo(url))._replace(query='', fragment='').geturl()}"
    message = (
        f"pytest-llmcache refused {target} while replaying: llm_ignore rule {rule.text!r} marks it as not an LLM API "
        "call, so it is never recorded and never sent in replay."
    )
    body = json.dumps({"error": {"message": message, "type": "llmcache_ignored_request", "code": "ignored_request"}}).encode()
    headers = {"content-type": ["application/json"], "x-should-retry": ["false"], "content-length": [str(len(body))]}
    return REFUSAL_STATUS, headers, body
