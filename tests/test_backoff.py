"""Examples for the backoff's classification and header parsing (the properties live beside it)."""
from __future__ import annotations

import email.utils
import time

import httpx2
import openai
import pytest

from tinytroupe.backoff import RetryPolicy, is_retryable, retry_after_seconds
from tinytroupe.errors import InvalidRequestError, NonTerminalError

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")


def rate_limited(headers: dict[str, str]) -> openai.RateLimitError:
    return openai.RateLimitError("slow down", response=httpx2.Response(429, headers=headers, request=REQUEST), body=None)


@pytest.mark.parametrize(
    "headers, expected",
    [({"retry-after-ms": "1500"}, 1.5), ({"retry-after": "3"}, 3.0), ({"retry-after-ms": "250", "retry-after": "9"}, 0.25), ({}, None), ({"retry-after": "soon"}, None)],
)
def test_retry_after_headers(headers, expected):
    assert retry_after_seconds(rate_limited(headers)) == expected


def test_retry_after_as_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_seconds(rate_limited({"retry-after": when})) <= 31


class NoRecording(Exception):
    retryable = False


def test_a_cause_that_vetoes_retries_wins_over_the_wrapper():
    try:
        try:
            raise NoRecording("no recording for this request")
        except NoRecording as inner:
            raise openai.APIConnectionError(request=REQUEST) from inner
    except openai.APIConnectionError as wrapped:
        assert not is_retryable(wrapped)
    assert is_retryable(openai.APIConnectionError(request=REQUEST))


def test_library_errors_and_unknown_errors():
    assert is_retryable(NonTerminalError("x"))
    assert not is_retryable(InvalidRequestError("x"))
    assert not is_retryable(TypeError("a bug is not retried"))


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"waiting_time": -1}, {"factor": 0.5}])
def test_policy_rejects_impossible_values(kwargs):
    values = {"max_attempts": 3, "waiting_time": 1.0, "factor": 2.0, **kwargs}
    with pytest.raises(ValueError, match=next(iter(kwargs)).replace("factor", "exponential_backoff_factor")):
        RetryPolicy(**values)
