"""Configuration: the packaged `config.ini` read under a local one, key by key, with typed values.

`read_config()` returns the merged `configparser.ConfigParser`; `openai_defaults()` turns its
`[OpenAI]` section into the typed `default` dict that the clients resolve their parameters from.
"""
from __future__ import annotations

import configparser
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable

from tinytroupe.errors import ConfigError

logger = logging.getLogger("tinytroupe")

PACKAGED_CONFIG = Path(__file__).with_name("config.ini")
LOCAL_CONFIG_NAME = "config.ini"
SECTION = "OpenAI"
API_TYPES = ("openai", "azure")


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError("expected True or False")


def _parse_api_type(text: str) -> str:
    lowered = text.strip().lower()
    if lowered not in API_TYPES:
        raise ValueError(f"expected one of {', '.join(API_TYPES)}")
    return lowered


def _number(text: str) -> float:
    """A finite float (NaN or infinity would reach the API as invalid JSON, or never time out)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def _at_least(minimum: float, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse_bounded(text: str) -> Any:
        value = parse(text)
        if value < minimum:
            raise ValueError(f"expected a number >= {minimum}")
        return value

    return parse_bounded


def _optional_text(text: str) -> str | None:
    return text.strip() or None


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An empty value means None: the parameter is not sent and the service default applies."""

    def parse_optional(text: str) -> Any:
        return parse(text) if text.strip() else None

    return parse_optional


@dataclass(frozen=True)
class _Key:
    name: str  # as in config.ini
    default_name: str  # as in the `default` dict
    parse: Callable[[str], Any]
    kind: str  # for error messages


_KEYS = (
    _Key("API_TYPE", "api_type", _parse_api_type, "openai or azure"),
    _Key("AZURE_API_VERSION", "azure_api_version", str.strip, "text"),
    _Key("MODEL", "model", str.strip, "text"),
    _Key("MAX_TOKENS", "max_tokens", _optional(_at_least(1, int)), "a whole number >= 1 or nothing"),
    _Key("TEMPERATURE", "temperature", _optional(_number), "a number or nothing"),
    _Key("TOP_P", "top_p", _optional(_number), "a number or nothing"),
    _Key("FREQ_PENALTY", "frequency_penalty", _optional(_number), "a number or nothing"),
    _Key("PRESENCE_PENALTY", "presence_penalty", _optional(_number), "a number or nothing"),
    _Key("TIMEOUT", "timeout", _at_least(0, _number), "a number of seconds >= 0"),
    _Key("MAX_ATTEMPTS", "max_attempts", _at_least(1, int), "a whole number >= 1"),
    _Key("WAITING_TIME", "waiting_time", _at_least(0, _number), "a number of seconds >= 0"),
    _Key("EXPONENTIAL_BACKOFF_FACTOR", "exponential_backoff_factor", _at_least(1, _number), "a number >= 1"),
    _Key("EMBEDDING_MODEL", "embedding_model", str.strip, "text"),
    _Key("CACHE_API_CALLS", "cache_api_calls", _parse_bool, "True or False"),
    _Key("CACHE_FILE_NAME", "cache_file_name", str.strip, "a file path"),
    _Key("BASE_URL", "base_url", _optional_text, "a URL or nothing"),
)
CONFIG_KEYS: tuple[str, ...] = tuple(key.name for key in _KEYS)


class _TrackedConfig(configparser.ConfigParser):
    """A ConfigParser that remembers which file each [OpenAI] value came from."""

    def __init__(self) -> None:
        super().__init__(interpolation=None)
        self.origins: dict[str, Path] = {}

    def read_tracked(self, path: Path) -> None:
        layer = configparser.ConfigParser(interpolation=None)
        try:
            with path.open(encoding="utf-8") as handle:
                layer.read_file(handle, source=str(path))
        except (configparser.Error, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: cannot parse the file: {err}; fix it (an INI file with an [{SECTION}] section)") from err
        except OSError as err:
            raise ConfigError(f"{path}: cannot read the file ({err.strerror or err}); fix its permissions or remove it") from err
        for section in layer.sections():
            if section != SECTION and section.lower() == SECTION.lower():
                logger.warning("%s: section [%s] is ignored; section names are case-sensitive: use [%s]", path, section, SECTION)
            if not self.has_section(section):
                self.add_section(section)
            for name, value in layer.items(section, raw=True):
                self.set(section, name, value)
                if section == SECTION:
                    self.origins[name.upper()] = path


def read_config(directory: Path | str | None = None) -> _TrackedConfig:
    """The packaged defaults, overridden key by key by `config.ini` in `directory` (default: cwd)."""
    config = _TrackedConfig()
    config.read_tracked(PACKAGED_CONFIG)
    local = Path(directory or Path.cwd()) / LOCAL_CONFIG_NAME
    if local.is_file() and local.resolve() != PACKAGED_CONFIG.resolve():
        config.read_tracked(local)
        unknown = [name for name in config.options(SECTION) if name.upper() not in CONFIG_KEYS]
        for name in unknown:
            logger.warning("%s: [%s] %s is not a known key; it is ignored", local, SECTION, name.upper())
    return config


def openai_defaults(config: configparser.ConfigParser) -> dict[str, Any]:
    """The typed `[OpenAI]` values, keyed by the names the clients use (`model`, `top_p`, ...)."""
    origins = getattr(config, "origins", {})
    values: dict[str, Any] = {}
    for key in _KEYS:
        raw = config.get(SECTION, key.name, fallback=None)
        source = origins.get(key.name, "the configuration")
        if raw is None:
            raise ConfigError(f"{source}: [{SECTION}] {key.name} is missing; set it to {key.kind}")
        try:
            values[key.default_name] = key.parse(raw)
        except ValueError as err:
            raise ConfigError(
                f"{source}: [{SECTION}] {key.name} = {raw!r} is not valid ({err}); set it to {key.kind}"
            ) from err
    return values
