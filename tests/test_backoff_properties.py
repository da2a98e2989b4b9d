"""Properties of the backoff: for any policy and any scripted sequence of outcomes."""
from __future__ import annotations

import itertools
import logging

import httpx2
import openai
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinytroupe.backoff import Outcome, RetryPolicy, call_with_backoff, planned_wait
from tinytroupe.errors import InvalidRequestError, NonTerminalError

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
STATUS_ERRORS = {429: openai.RateLimitError, 500: openai.InternalServerError, 502: openai.InternalServerError,
                 503: openai.InternalServerError, 400: openai.BadRequestError, 401: openai.AuthenticationError,
                 403: openai.PermissionDeniedError, 404: openai.NotFoundError, 422: openai.UnprocessableEntityError}
TERMINAL_STATUSES = {400, 401, 403, 404, 422}


def status_error(status: int, headers: dict[str, str]) -> openai.APIStatusError:
    response = httpx2.Response(status, headers=headers, request=REQUEST)
    return STATUS_ERRORS[status](f"status {status}", response=response, body=None)


# An outcome is ("ok", value) or ("error", kind, status, retry_after_header).
retry_after_headers = st.one_of(
    st.just({}),
    st.floats(0, 120, allow_nan=False).map(lambda s: {"retry-after": repr(round(s, 3))}),
    st.integers(0, 120_000).map(lambda ms: {"retry-after-ms": str(ms)}),
)
outcomes = st.one_of(
    st.tuples(st.just("ok"), st.integers()),
    st.tuples(st.just("status"), st.sampled_from(sorted(STATUS_ERRORS)), retry_after_headers),
    st.tuples(st.just("timeout")),
    st.tuples(st.just("connection")),
    st.tuples(st.just("nonterminal")),
    st.tuples(st.just("invalid")),
)
policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 10),
    waiting_time=st.floats(0, 30, allow_nan=False),
    factor=st.floats(1, 5, allow_nan=False),
)


def make_error(outcome: tuple) -> Exception:
    kind = outcome[0]
    if kind == "status":
        return status_error(outcome[1], outcome[2])
    if kind == "timeout":
        return openai.APITimeoutError(request=REQUEST)
    if kind == "connection":
        return openai.APIConnectionError(request=REQUEST)
    if kind == "nonterminal":
        return NonTerminalError("try again")
    return InvalidRequestError("bad request")


def is_terminal(outcome: tuple) -> bool:
    return outcome[0] == "invalid" or (outcome[0] == "status" and outcome[1] in TERMINAL_STATUSES)


def asked_seconds(outcome: tuple) -> float:
    if outcome[0] != "status":
        return 0.0
    headers = outcome[2]
    if "retry-after-ms" in headers:
        return float(headers["retry-after-ms"]) / 1000
    return float(headers.get("retry-after", 0.0))


class Script:
    """Plays the outcomes in order; records what the injected clock saw."""

    def __init__(self, outcomes: list[tuple]):
        self.outcomes = outcomes
        self.calls = 0
        self.clock = 0.0
        self.sleep_times: list[float] = []
        self.attempt_times: list[float] = []

    def attempt(self):
        self.attempt_times.append(self.clock)
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if outcome[0] == "ok":
            return {"value": outcome[1]}
        raise make_error(outcome)

    def sleep(self, seconds: float) -> None:
        self.sleep_times.append(self.clock)
        self.clock += seconds


def run(policy: RetryPolicy, script_outcomes: list[tuple]):
    script = Script(script_outcomes)
    outcome = Outcome()
    result = call_with_backoff(script.attempt, policy, sleep=script.sleep, outcome=outcome)
    return script, outcome, result


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(policies, st.lists(outcomes, min_size=1, max_size=12))
def test_attempts_never_exceed_max_and_the_first_success_is_returned(policy, script_outcomes):
    script, _outcome, result = run(policy, script_outcomes)
    assert 1 <= script.calls <= policy.max_attempts
    played = [script_outcomes[min(i, len(script_outcomes) - 1)] for i in range(script.calls)]
    if played[-1][0] == "ok":
        assert result == {"value": played[-1][1]}
        assert all(o[0] != "ok" for o in played[:-1])
    else:
        assert result is None


@FAST
@given(policies, st.lists(outcomes, min_size=1, max_size=12))
def test_terminal_errors_stop_at_once_without_waiting(policy, script_outcomes):
    script, outcome, result = run(policy, script_outcomes)
    played = [script_outcomes[min(i, len(script_outcomes) - 1)] for i in range(script.calls)]
    if is_terminal(played[-1]):
        assert result is None
        assert len(outcome.waits) == script.calls - 1  # no wait after the terminal error
    assert not any(is_terminal(o) for o in played[:-1])


@FAST
@given(policies, st.lists(outcomes, min_size=1, max_size=12))
def test_waits_follow_the_schedule_honour_retry_after_and_never_shrink(policy, script_outcomes):
    script, outcome, result = run(policy, script_outcomes)
    played = [script_outcomes[min(i, len(script_outcomes) - 1)] for i in range(script.calls)]
    waits = outcome.waits
    assert result is None or played[-1][0] == "ok"
    assert len(waits) == script.calls - 1
    for k, wait in enumerate(waits):
        assert wait >= policy.waiting_time * policy.factor**k - 1e-9
        assert wait >= min(asked_seconds(played[k]), policy.max_retry_after) - 1e-9
        assert wait == planned_wait(policy, k, waits[k - 1] if k else 0.0, asked_seconds(played[k]) or None)
    assert all(later >= earlier for earlier, later in itertools.pairwise(waits))


@FAST
@given(policies, st.lists(outcomes, min_size=1, max_size=12))
def test_waits_sum_to_what_the_clock_saw_with_none_before_the_first_or_after_the_last(policy, script_outcomes):
    script, outcome, _ = run(policy, script_outcomes)
    assert script.attempt_times[0] == 0.0  # no wait before the first attempt
    assert abs(script.clock - sum(outcome.waits)) < 1e-6
    assert len(script.sleep_times) == script.calls - 1  # no sleep after the last attempt
    assert script.sleep_times == sorted(script.sleep_times)


@settings(max_examples=100, deadline=None)
@given(policies, st.lists(st.sampled_from([("timeout",), ("connection",), ("nonterminal",), ("status", 503, {})]), min_size=1, max_size=3))
def test_exhausting_the_attempts_returns_none_and_logs_it(policy, retryable):
    handler = _ListHandler()
    logger = logging.getLogger("tinytroupe")
    logger.addHandler(handler)
    try:
        script, _outcome, result = run(policy, retryable)
    finally:
        logger.removeHandler(handler)
    assert result is None and script.calls == policy.max_attempts
    assert any(f"Giving up after {policy.max_attempts} attempts" in r.getMessage() for r in handler.records)


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@given(st.integers(0, 9), st.floats(0, 1e6, allow_nan=False), st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)), policies)
def test_planned_wait_is_capped_by_max_retry_after_but_not_below_the_schedule(k, previous, asked, policy):
    wait = planned_wait(policy, k, previous, asked)
    assert wait >= previous
    assert wait >= policy.waiting_time * policy.factor**k
    if asked is not None:
        assert wait >= min(asked, policy.max_retry_after)
        assert wait == max(policy.waiting_time * policy.factor**k, min(asked, policy.max_retry_after), previous)
