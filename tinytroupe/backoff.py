"""Retries with exponential backoff: the only retry layer (the SDK's own retries are off).

The schedule is a pure function (`planned_wait`) and the sleep is injected, so tests check every
wait without sleeping. Retry k (k = 0 for the first retry) waits at least
`waiting_time * factor ** k`, at least what the server asked for in `retry-after-ms` /
`retry-after` (capped at `max_retry_after`), and never less than the wait before it.
"""
from __future__ import annotations

import email.utils
import logging
import time
from dataclasses import dataclass, field
from typing import TypeVar
from collections.abc import Callable

import openai

from tinytroupe.errors import InvalidRequestError, NonTerminalError

logger = logging.getLogger("tinytroupe")

T = TypeVar("T")
Sleep = Callable[[float], None]

DEFAULT_MAX_RETRY_AFTER = 60.0
_TERMINAL_STATUSES = frozenset({400, 401, 403, 404, 422})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    waiting_time: float
    factor: float
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.waiting_time < 0:
            raise ValueError(f"waiting_time must be >= 0, got {self.waiting_time}")
        if self.factor < 1:
            raise ValueError(f"exponential_backoff_factor must be >= 1, got {self.factor}")


def planned_wait(policy: RetryPolicy, retry_index: int, previous_wait: float, server_asks: float | None) -> float:
    """Seconds to wait before retry `retry_index` (0-based)."""
    scheduled = policy.waiting_time * policy.factor**retry_index
    asked = min(server_asks, policy.max_retry_after) if server_asks is not None else 0.0
    return max(scheduled, asked, previous_wait)


def retry_after_seconds(error: BaseException) -> float | None:
    """What the server asked for in `retry-after-ms` or `retry-after`, in seconds, if anything."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    seconds = headers.get("retry-after")
    if seconds is None:
        return None
    try:
        return max(float(seconds), 0.0)
    except ValueError:
        pass
    try:  # the HTTP-date form
        moment = email.utils.parsedate_to_datetime(seconds)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def is_retryable(error: BaseException) -> bool:
    """Whether retrying can help: 429, 5xx, 408/409, timeouts, connection errors, NonTerminalError."""
    # Anything in the cause chain may veto a retry, e.g. a replay tool's "no recording" error
    # that the SDK wrapped into an APIConnectionError.
    if any(getattr(cause, "retryable", None) is False for cause in _causes(error)):
        return False
    if isinstance(error, (NonTerminalError, openai.APIConnectionError)):
        return True
    if isinstance(error, InvalidRequestError):
        return False
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        if status in _TERMINAL_STATUSES:
            return False
        return status in (408, 409, 429) or status >= 500
    return False


@dataclass
class Outcome:
    """What a backoff run did: the waits it made and why it stopped."""

    attempts: int = 0
    waits: list[float] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


def call_with_backoff(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    sleep: Sleep = time.sleep,
    outcome: Outcome | None = None,
) -> T | None:
    """Calls `attempt` until it succeeds, a terminal error occurs, or the attempts run out.

    Returns the first success unchanged, or None (logged) on a terminal error or exhaustion.
    """
    outcome = outcome if outcome is not None else Outcome()
    previous_wait = 0.0
    for attempt_number in range(1, policy.max_attempts + 1):
        outcome.attempts = attempt_number
        try:
            return attempt()
        except Exception as error:  # classified below; anything unknown is terminal
            outcome.errors.append(error)
            if not is_retryable(error):
                logger.error("[%d] %s: %s; not retrying", attempt_number, type(error).__name__, error)
                return None
            if attempt_number == policy.max_attempts:
                break
            wait = planned_wait(policy, attempt_number - 1, previous_wait, retry_after_seconds(error))
            logger.warning(
                "[%d] %s: %s; retrying in %.3g s", attempt_number, type(error).__name__, error, wait
            )
            outcome.waits.append(wait)
            sleep(wait)
            previous_wait = wait
    logger.error(
        "Giving up after %d attempts; last error: %s: %s",
        policy.max_attempts,
        type(outcome.errors[-1]).__name__,
        outcome.errors[-1],
    )
    return None
