"""Exceptions of the client library."""
from __future__ import annotations


class TinyTroupeError(Exception):
    """Base class of the library's own errors."""


class ConfigError(TinyTroupeError, ValueError):
    """A configuration value is missing or has the wrong type."""


class CacheError(TinyTroupeError):
    """The API cache file cannot be used (corrupt, foreign or unreadable)."""


class InvalidRequestError(TinyTroupeError):
    """The request is invalid: retrying it cannot help."""

    retryable = False


class NonTerminalError(TinyTroupeError):
    """An error that is worth retrying."""

    retryable = True
