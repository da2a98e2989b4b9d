"""TinyTroupe's LLM client layer on the openai 3.x SDK.

A call flows: parameters resolved from `default` at call time -> request body (None left out)
-> API cache lookup -> SDK call under the library's backoff -> cache store -> first choice.
"""
from __future__ import annotations

import copy
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import chevron
import openai

from tinytroupe import utils
from tinytroupe.backoff import RetryPolicy, Sleep, call_with_backoff
from tinytroupe.cache import ApiCache, request_key
from tinytroupe.config import API_TYPES, openai_defaults
from tinytroupe.errors import ConfigError, InvalidRequestError, NonTerminalError

__all__ = [
    "AzureClient",
    "InvalidRequestError",
    "LLMCall",
    "NonTerminalError",
    "OpenAIClient",
    "client",
    "default",
    "force_api_cache",
    "force_api_type",
    "force_default_value",
    "overrides",
    "register_client",
]

logger = logging.getLogger("tinytroupe")

config = utils.read_config_file()
default: dict[str, Any] = openai_defaults(config)

PROMPTS_DIR = Path(__file__).with_name("prompts")
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
_SAMPLING_PARAMS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")


class _Settings:
    """Process-wide overrides; `overrides()` saves and restores them."""

    api_type: str | None = None
    sleep: Sleep = time.sleep


def _is_reasoning_model(model: str) -> bool:
    name = model.rsplit("/", 1)[-1].lower()
    return name.startswith(_REASONING_PREFIXES)


def _policy(max_attempts: int | None, waiting_time: float | None, factor: float | None) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=int(default["max_attempts"] if max_attempts is None else max_attempts),
        waiting_time=float(default["waiting_time"] if waiting_time is None else waiting_time),
        factor=float(default["exponential_backoff_factor"] if factor is None else factor),
    )


class OpenAIClient:
    """Chat completions and embeddings through the OpenAI API (or an OpenAI-compatible BASE_URL)."""

    api_type = "openai"

    def __init__(self, cache_api_calls: bool | None = None, cache_file_name: str | None = None) -> None:
        self._sdk: openai.OpenAI | None = None
        self._sdk_lock = threading.Lock()
        self._cache: ApiCache | None = None
        self.set_api_cache(cache_api_calls, cache_file_name)

    # -- configuration -------------------------------------------------------------------------

    def set_api_cache(self, cache_api_calls: bool | None, cache_file_name: str | None = None) -> None:
        """Turns the API cache on or off; None follows `default` at call time."""
        self._close_cache()
        self.cache_api_calls = cache_api_calls
        self.cache_file_name = cache_file_name

    def cache_settings(self) -> tuple[bool | None, str | None]:
        return self.cache_api_calls, self.cache_file_name

    def _cache_in_use(self) -> ApiCache | None:
        enabled = default["cache_api_calls"] if self.cache_api_calls is None else self.cache_api_calls
        if not enabled:
            return None
        if self._cache is None:
            self._cache = ApiCache(self.cache_file_name or default["cache_file_name"])
        return self._cache

    def _close_cache(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    @property
    def sdk(self) -> openai.OpenAI:
        """The SDK client, built on first use and kept for this client's lifetime."""
        with self._sdk_lock:
            if self._sdk is None:
                self._sdk = self._build_sdk_client()
            return self._sdk

    def _build_sdk_client(self) -> openai.OpenAI:
        api_key = os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise ConfigError("OpenAIClient needs an API key: set the OPENAI_API_KEY environment variable")
        # base_url None lets the SDK read OPENAI_BASE_URL itself.
        return openai.OpenAI(api_key=api_key, base_url=default["base_url"], max_retries=0)

    def reset(self) -> None:
        """Drops the SDK client and the cache handle; the next call builds them from the current settings."""
        with self._sdk_lock:
            if self._sdk is not None:
                self._sdk.close()
                self._sdk = None
        self._close_cache()

    # -- public calls --------------------------------------------------------------------------

    def send_message(
        self,
        current_messages: list[dict[str, Any]],
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        stop: str | list[str] | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
        waiting_time: float | None = None,
        exponential_backoff_factor: float | None = None,
        n: int | None = None,
        response_format: dict[str, Any] | None = None,
        dedent_messages: bool = True,
        **extra_params: Any,
    ) -> dict[str, Any] | None:
        """Sends a chat request; returns the first choice's message as a plain dict, or None (logged)."""
        model = model or default["model"]
        messages = [_dedented(message) for message in current_messages] if dedent_messages else current_messages
        params: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": default["temperature"] if temperature is None else temperature,
            "max_tokens": default["max_tokens"] if max_tokens is None else max_tokens,
            "top_p": default["top_p"] if top_p is None else top_p,
            "frequency_penalty": default["frequency_penalty"] if frequency_penalty is None else frequency_penalty,
            "presence_penalty": default["presence_penalty"] if presence_penalty is None else presence_penalty,
            "stop": stop,
            "n": n,
            "response_format": response_format,
            **extra_params,
        }
        if _is_reasoning_model(model):
            # Reasoning models reject sampling parameters and take max_completion_tokens.
            for name in _SAMPLING_PARAMS:
                params.pop(name)
            params["max_completion_tokens"] = params.pop("max_tokens")
        params = {name: value for name, value in params.items() if value is not None}
        if "top_p" in params:
            params["top_p"] = float(params["top_p"])
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("Sending %d messages to %s (%d prompt tokens)", len(messages), model, self._count_tokens(messages, model))

        response = self._call("chat.completions", params, timeout, _policy(max_attempts, waiting_time, exponential_backoff_factor))
        if response is None:
            return None
        choices = response.get("choices") or []
        if not choices:
            logger.error("%s returned no choices", model)
            return None
        return choices[0].get("message")

    def get_embedding(self, text: str, model: str | None = None) -> list[float] | None:
        """The embedding of `text`, or None (logged) when the call failed."""
        params = {"model": model or default["embedding_model"], "input": [text]}
        response = self._call("embeddings", params, None, _policy(None, None, None))
        if response is None:
            return None
        return response["data"][0]["embedding"]

    def _count_tokens(self, messages: list[dict[str, Any]], model: str) -> int:
        """Prompt tokens of `messages` for `model` (see `tinytroupe.tokens.count_tokens`)."""
        from tinytroupe.tokens import count_tokens  # loads the rank files only when first needed

        return count_tokens(messages, model)

    # -- the call path -------------------------------------------------------------------------

    def _call(self, endpoint: str, params: dict[str, Any], timeout: float | None, policy: RetryPolicy) -> dict[str, Any] | None:
        cache = self._cache_in_use()
        if cache is not None:
            key = request_key(params.get("model"), {"api_type": self.api_type, "endpoint": endpoint, **params})
            hit = cache.get(key)
            if hit is not None:
                logger.debug("API cache hit for %s %s", endpoint, params.get("model"))
                return hit
        sdk = self.sdk  # configuration errors surface here, outside the retry loop
        resolved_timeout = default["timeout"] if timeout is None else timeout
        response = call_with_backoff(
            lambda: self._raw_call(sdk, endpoint, params, resolved_timeout), policy, sleep=_Settings.sleep
        )
        if response is not None and cache is not None:
            cache.put(key, response)
        return response

    def _raw_call(self, sdk: openai.OpenAI, endpoint: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        if endpoint == "embeddings":
            return sdk.embeddings.create(**params, timeout=timeout).to_dict(mode="json")
        return sdk.chat.completions.create(**params, timeout=timeout).to_dict(mode="json")


# TinyTroupe's name for the Azure key first, then the openai SDK's (what AzureOpenAI() reads).
AZURE_KEY_VARIABLES = ("AZURE_OPENAI_KEY", "AZURE_OPENAI_API_KEY")


class AzureClient(OpenAIClient):
    """Azure OpenAI: endpoint from AZURE_OPENAI_ENDPOINT, key from AZURE_OPENAI_KEY or
    AZURE_OPENAI_API_KEY (in that order), `model` = deployment."""

    api_type = "azure"

    def _build_sdk_client(self) -> openai.AzureOpenAI:
        endpoint = os.environ.get("AZURE_OPENAI_ENDPOINT")
        api_key = next((os.environ[name] for name in AZURE_KEY_VARIABLES if os.environ.get(name)), None)
        if not endpoint or not api_key:
            missing = [text for text, value in (("AZURE_OPENAI_ENDPOINT", endpoint), (" or ".join(AZURE_KEY_VARIABLES), api_key)) if not value]
            raise ConfigError(f"AzureClient needs {' and '.join(missing)}: set the environment variable(s)")
        return openai.AzureOpenAI(
            azure_endpoint=endpoint, api_key=api_key, api_version=default["azure_api_version"], max_retries=0
        )


def _dedented(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    return {**message, "content": utils.dedent(content)} if isinstance(content, str) else message


class LLMCall:
    """A call to the model with mustache templates from `prompts/` (or absolute template paths)."""

    def __init__(self, system_template_name: str, user_template_name: str | None = None, **model_params: Any) -> None:
        self.system_template_name = system_template_name
        self.user_template_name = user_template_name
        self.model_params = model_params
        self.messages: list[dict[str, str]] = []
        self.model_output: dict[str, Any] | None = None

    def call(self, **rendering_configs: Any) -> str | None:
        """Renders the templates with `rendering_configs`, sends them, returns the content or None (logged)."""
        self.messages = [{"role": "system", "content": _render(self.system_template_name, rendering_configs)}]
        if self.user_template_name is not None:
            self.messages.append({"role": "user", "content": _render(self.user_template_name, rendering_configs)})
        self.model_output = client().send_message(self.messages, **self.model_params)
        content = self.model_output.get("content") if self.model_output else None
        if content is None:
            logger.error("LLMCall(%s): the model returned no content", self.system_template_name)
        return content

    def __repr__(self) -> str:
        return f"LLMCall(sys={self.system_template_name!r}, user={self.user_template_name!r})"


def _render(template_name: str, data: dict[str, Any]) -> str:
    path = Path(template_name)
    path = path if path.is_absolute() else PROMPTS_DIR / template_name
    try:
        template = path.read_text(encoding="utf-8")
    except OSError as err:
        raise FileNotFoundError(f"prompt template {template_name!r} not found at {path}") from err
    return chevron.render(template, data)


# -- the client registry and the force_* switches ------------------------------------------------

_clients: dict[str, OpenAIClient] = {}


def register_client(api_type: str, client: OpenAIClient) -> None:
    """Registers `client` for `api_type` (replacing any client registered for it)."""
    _clients[api_type] = client


def client() -> OpenAIClient:
    """The client for the forced API type, or else the configured one."""
    api_type = _Settings.api_type or default["api_type"]
    try:
        return _clients[api_type]
    except KeyError:
        raise ConfigError(
            f"API type {api_type!r} has no registered client; use one of {', '.join(sorted(_clients))} "
            "(API_TYPE in config.ini) or register_client() first"
        ) from None


def force_api_type(api_type: str | None) -> None:
    """Uses `api_type` from now on, whatever the configuration says; None goes back to the configuration."""
    if api_type is not None and api_type not in _clients:
        raise ConfigError(f"unknown API type {api_type!r}; registered: {', '.join(sorted(_clients))}")
    _Settings.api_type = api_type


def force_api_cache(cache_api_calls: bool, cache_file_name: str | None = None) -> None:
    """Turns the API cache on or off for every registered client (`cache_file_name`: its SQLite file)."""
    for registered in _clients.values():
        registered.set_api_cache(cache_api_calls, cache_file_name)


def force_default_value(key: str, value: Any) -> None:
    """Changes a default for the next calls (e.g. `force_default_value("model", "gpt-4.1")`)."""
    if key not in default:
        raise ConfigError(f"unknown default {key!r}; known: {', '.join(sorted(default))}")
    default[key] = value


@contextmanager
def overrides(
    api_type: str | None = None,
    api_cache: bool | None = None,
    cache_file_name: str | None = None,
    sleep: Sleep | None = None,
) -> Iterator[None]:
    """Applies settings for a block and restores everything after it, whatever happens.

    Restores the API type, every client's cache settings, `default`, and the backoff's sleep, and
    drops the clients' SDK clients on entry and exit so environment changes take effect.
    """
    saved_type, saved_sleep, saved_default = _Settings.api_type, _Settings.sleep, copy.deepcopy(default)
    saved_caches = {name: registered.cache_settings() for name, registered in _clients.items()}
    for registered in _clients.values():
        registered.reset()
    try:
        if api_type is not None:
            force_api_type(api_type)
        if api_cache is not None:
            force_api_cache(api_cache, cache_file_name)
        if sleep is not None:
            _Settings.sleep = sleep
        yield
    finally:
        _Settings.api_type, _Settings.sleep = saved_type, saved_sleep
        default.clear()
        default.update(saved_default)
        for name, registered in _clients.items():
            registered.reset()
            if name in saved_caches:
                registered.set_api_cache(*saved_caches[name])


for _api_type, _client_class in zip(API_TYPES, (OpenAIClient, AzureClient), strict=True):
    register_client(_api_type, _client_class())
