"""What the plugin knows about each LLM provider, as data: one entry per provider.

Scrubbing (credential headers, query parameters, environment variables, secret hosts), replay
(placeholder credentials so SDK clients build without a key), the stored URL of a request (a
placeholder per provider: matching ignores hosts, so old cassettes still replay), and reading a
recorded exchange (endpoint kinds by path, usage field names) all read this table. Adding a
provider is one `Provider` entry in `PROVIDERS` (before the fallback) plus its tests.

This module depends on nothing else of the plugin, so every layer may import it.
"""
from __future__ import annotations

import functools

import re
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

__all__ = [
    "AZURE",
    "PROVIDERS",
    "Endpoint",
    "Provider",
    "Usage",
    "credential_env_vars",
    "endpoint_env_vars",
    "endpoint_for",
    "is_azure",
    "placeholder_env",
    "placeholder_hosts",
    "provider_for",
    "provider_named",
    "secret_host",
]


@dataclass(frozen=True)
class Usage:
    """Where a response document keeps its token counts: ``document[container][prompt]`` etc."""

    container: str
    prompt: str
    completion: str | None

    def read(self, document: Any) -> tuple[int | None, int | None]:
        """(prompt tokens, completion tokens) of one response document (or stream event), None when absent."""
        usage = document.get(self.container) if isinstance(document, dict) else None
        if not isinstance(usage, dict):
            return None, None

        def count(name: str | None) -> int | None:
            value = usage.get(name) if name else None
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return count(self.prompt), count(self.completion)


CHAT_USAGE = Usage("usage", "prompt_tokens", "completion_tokens")
RESPONSES_USAGE = Usage("usage", "input_tokens", "output_tokens")
EMBEDDINGS_USAGE = Usage("usage", "prompt_tokens", None)
ANTHROPIC_USAGE = Usage("usage", "input_tokens", "output_tokens")
GEMINI_USAGE = Usage("usageMetadata", "promptTokenCount", "candidatesTokenCount")


@dataclass(frozen=True)
class Endpoint:
    """One kind of API call, recognised by the end of its URL path."""

    kind: str  # "chat.completions", "responses", "messages", "generateContent", ...
    path: re.Pattern[str]  # searched in the URL path
    usage: Usage
    streamed_by_path: bool = False  # the path alone says the answer is a stream (Gemini)


def _suffix(suffix: str) -> re.Pattern[str]:
    return re.compile(re.escape(suffix) + r"/?$")


# Longest first: chat/completions must win over completions.
_OPENAI_ENDPOINTS = (
    Endpoint("chat.completions", _suffix("/chat/completions"), CHAT_USAGE),
    Endpoint("embeddings", _suffix("/embeddings"), EMBEDDINGS_USAGE),
    Endpoint("responses", _suffix("/responses"), RESPONSES_USAGE),
    Endpoint("completions", _suffix("/completions"), CHAT_USAGE),
)
_ANTHROPIC_ENDPOINTS = (
    Endpoint("messages.count_tokens", _suffix("/messages/count_tokens"), ANTHROPIC_USAGE),
    Endpoint("messages", _suffix("/messages"), ANTHROPIC_USAGE),
    *_OPENAI_ENDPOINTS,  # Anthropic's OpenAI-compatible endpoints
)
_GEMINI_ENDPOINTS = (
    Endpoint("streamGenerateContent", re.compile(r"/models/[^/]+:streamGenerateContent$"), GEMINI_USAGE, streamed_by_path=True),
    Endpoint("generateContent", re.compile(r"/models/[^/]+:generateContent$"), GEMINI_USAGE),
    Endpoint("embedContent", re.compile(r"/models/[^/]+:(?:batchE|e)mbedContents?$"), GEMINI_USAGE),
    Endpoint("countTokens", re.compile(r"/models/[^/]+:countTokens$"), GEMINI_USAGE),
)


@dataclass(frozen=True)
class Provider:
    """What the plugin knows about one provider."""

    name: str  # stable identifier: "openai", "azure", "anthropic", "gemini", "openai-compatible"
    label: str  # how reports and cassette comments name it
    hosts: tuple[str, ...]  # exact host names, or "*.suffix" for any host under a domain
    credential_headers: tuple[str, ...]  # request headers whose value is a live credential (lower case)
    masked_headers: tuple[str, ...]  # identifying request/response headers kept, value masked
    credential_query_params: tuple[str, ...]  # query parameters whose value is a live credential
    credential_env_vars: tuple[str, ...]  # environment variables holding live credentials
    endpoint_env_vars: tuple[str, ...]  # environment variables holding an endpoint URL (its host may be secret)
    placeholder_url: str  # scheme and host a stored request gets
    placeholder_credentials: tuple[tuple[str, str], ...]  # (env var, value) set when replaying without keys
    endpoints: tuple[Endpoint, ...]
    host_is_secret: bool = False  # the host names the customer's resource (Azure): masked wherever it appears
    path_prefixes: tuple[str, ...] = ()  # URL paths that identify the provider on any host (a proxy)
    request_markers: tuple[str, ...] = ()  # request headers only this provider's SDK sends
    key_aliases: tuple[str, ...] = ()  # other names the key is read under (the SDK's, after the library's own)

    @property
    def credential_hint(self) -> str:
        """The environment variables to set for recording, as a miss message names them."""
        names = (*self.endpoint_env_vars[:1], *self.credential_env_vars[:1])
        hint = " and ".join(names) if names else "the client's base URL and key"
        return f"{hint} (or {' or '.join(self.key_aliases)})" if self.key_aliases else hint

    @property
    def placeholder_host(self) -> str:
        return urlsplit(self.placeholder_url).netloc

    def owns_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host.endswith(pattern[1:]) if pattern.startswith("*.") else host == pattern for pattern in self.hosts)

    def endpoint(self, path: str) -> Endpoint | None:
        """The endpoint kind of a URL path of this provider, None when unknown."""
        return next((endpoint for endpoint in self.endpoints if endpoint.path.search(path)), None)


OPENAI = Provider(
    name="openai",
    label="OpenAI",
    hosts=("api.openai.com", "api.openai.test"),
    credential_headers=("authorization",),
    masked_headers=("openai-organization", "openai-project"),
    credential_query_params=(),
    credential_env_vars=("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"),
    endpoint_env_vars=(),
    placeholder_url="https://api.openai.test",
    placeholder_credentials=(("OPENAI_API_KEY", "sk-llmcache-placeholder"),),
    endpoints=_OPENAI_ENDPOINTS,
)
AZURE = Provider(
    name="azure",
    label="Azure OpenAI",
    # Azure OpenAI resources, Cognitive Services multi-service resources and Azure AI Foundry projects.
    hosts=("*.openai.azure.com", "*.cognitiveservices.azure.com", "*.services.ai.azure.com"),
    credential_headers=("api-key", "authorization", "ocp-apim-subscription-key"),
    masked_headers=(),
    credential_query_params=(),
    credential_env_vars=("AZURE_OPENAI_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "AZURE_INFERENCE_CREDENTIAL"),
    endpoint_env_vars=("AZURE_OPENAI_ENDPOINT", "AZURE_INFERENCE_ENDPOINT"),
    placeholder_url="https://placeholder.openai.azure.com",
    placeholder_credentials=(
        ("AZURE_OPENAI_KEY", "llmcache-placeholder"),
        ("AZURE_OPENAI_API_KEY", "llmcache-placeholder"),
        ("AZURE_OPENAI_ENDPOINT", "https://placeholder.openai.azure.com"),
    ),
    endpoints=_OPENAI_ENDPOINTS,
    host_is_secret=True,
    path_prefixes=("/openai/",),
    key_aliases=("AZURE_OPENAI_API_KEY",),
)
ANTHROPIC = Provider(
    name="anthropic",
    label="Anthropic",
    hosts=("api.anthropic.com", "api.anthropic.test"),
    credential_headers=("x-api-key", "authorization"),
    masked_headers=(),
    credential_query_params=(),
    credential_env_vars=("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
    endpoint_env_vars=(),
    placeholder_url="https://api.anthropic.test",
    placeholder_credentials=(("ANTHROPIC_API_KEY", "sk-ant-llmcache-placeholder"),),
    endpoints=_ANTHROPIC_ENDPOINTS,
    path_prefixes=("/v1/messages",),
    request_markers=("anthropic-version",),
)
GEMINI = Provider(
    name="gemini",
    label="Google Gemini",
    hosts=("generativelanguage.googleapis.com", "generativelanguage.googleapis.test"),
    credential_headers=("x-goog-api-key", "authorization"),
    masked_headers=(),
    credential_query_params=("key",),
    credential_env_vars=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    endpoint_env_vars=(),
    placeholder_url="https://generativelanguage.googleapis.test",
    # google-genai reads either variable (and warns when both are set): one placeholder is enough.
    placeholder_credentials=(("GEMINI_API_KEY", "llmcache-placeholder"),),
    endpoints=_GEMINI_ENDPOINTS,
    request_markers=("x-goog-api-key", "x-goog-api-client"),
)
# Anything else speaking the OpenAI API through a base URL (LiteLLM proxy, Helicone, vLLM, Ollama,
# a loopback test server): stored under OpenAI's placeholder host; must stay last.
OPENAI_COMPATIBLE = Provider(
    name="openai-compatible",
    label="OpenAI-compatible",
    hosts=(),
    credential_headers=("authorization",),
    masked_headers=("openai-organization", "openai-project"),
    credential_query_params=(),
    credential_env_vars=(),
    endpoint_env_vars=(),
    placeholder_url=OPENAI.placeholder_url,
    placeholder_credentials=(),
    endpoints=_OPENAI_ENDPOINTS,
)

PROVIDERS: tuple[Provider, ...] = (OPENAI, AZURE, ANTHROPIC, GEMINI, OPENAI_COMPATIBLE)
_SPECIFIC = PROVIDERS[:-1]


def provider_named(name: str) -> Provider:
    """The provider called `name` (its `Provider.name`); ValueError naming the known ones otherwise."""
    for provider in PROVIDERS:
        if provider.name == name:
            return provider
    raise ValueError(f"unknown provider {name!r}; known: {', '.join(provider.name for provider in PROVIDERS)}")


def provider_for(uri: str, headers: Iterable[Any] | None = None) -> Provider:
    """The provider a request goes to: by host, else by a path only it uses (a proxy in front of
    it, a loopback test server), else by a header only its SDK sends (`headers`: the request's
    header names, or its headers); else OpenAI-compatible."""
    try:
        parts = urlsplit(uri if "//" in uri else "https://" + uri)
        host = parts.hostname or ""
    except ValueError:
        return OPENAI_COMPATIBLE
    for provider in _SPECIFIC:
        if host and provider.owns_host(host):
            return provider
    for provider in _SPECIFIC:
        if any(parts.path.startswith(prefix) for prefix in provider.path_prefixes):
            return provider
    if GEMINI.endpoint(parts.path) is not None:
        return GEMINI
    names = {str(name).lower() for name in headers or ()}
    for provider in _SPECIFIC:
        if names.intersection(provider.request_markers):
            return provider
    return OPENAI_COMPATIBLE


def endpoint_for(uri: str, headers: Mapping[str, Any] | None = None) -> Endpoint | None:
    """The endpoint kind of a request (see `Provider.endpoint`)."""
    try:
        path = urlsplit(uri).path
    except ValueError:
        return None
    return provider_for(uri, headers).endpoint(path)


def is_azure(uri: str) -> bool:
    """Whether `uri` is an Azure OpenAI / Azure AI Foundry endpoint (by host or by the /openai/ path)."""
    return provider_for(uri) is AZURE


def credential_env_vars() -> tuple[str, ...]:
    """Every environment variable holding a live credential, all providers."""
    return tuple(dict.fromkeys(name for provider in PROVIDERS for name in provider.credential_env_vars))


def endpoint_env_vars() -> tuple[str, ...]:
    """Every environment variable holding an endpoint URL whose host is secret."""
    return tuple(dict.fromkeys(name for provider in PROVIDERS if provider.host_is_secret for name in provider.endpoint_env_vars))


def placeholder_env() -> dict[str, str]:
    """What replay sets (when unset) so every provider's SDK client builds without a real key."""
    return {name: value for provider in PROVIDERS for name, value in provider.placeholder_credentials}


def placeholder_hosts() -> frozenset[str]:
    """The hosts stored requests get: never a secret."""
    return frozenset(provider.placeholder_host for provider in PROVIDERS)


@functools.lru_cache(maxsize=1024)  # every test's scrubber asks of the same few URLs
def secret_host(uri: str) -> str | None:
    """The host of `uri` when it names a customer's resource (an Azure resource), else None."""
    try:
        # A trailing dot (a fully qualified name) names the same host: learned without it, the
        # dotless form is masked too, and the dotted one around it.
        host = (urlsplit(uri if "//" in uri else "https://" + uri).hostname or "").lower().rstrip(".")
    except ValueError:
        return None
    return _secret(host)


@functools.lru_cache(maxsize=1024)
def _secret(host: str) -> str | None:
    """`secret_host` once `uri` is parsed: decided once per host (every request repeats it)."""
    if not host or host in placeholder_hosts():
        return None
    return host if any(provider.host_is_secret and provider.owns_host(host) for provider in PROVIDERS) else None
