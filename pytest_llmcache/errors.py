"""Exceptions raised by pytest-llmcache. Every message says what went wrong and what to do."""
from __future__ import annotations

from pathlib import Path

__all__ = ["CassetteError", "LLMCacheError", "MarkerError", "MissingRecording", "PlayedRecordError", "SecretLeakError", "WriteError"]


class LLMCacheError(Exception):
    """Base class of every pytest-llmcache error."""


class CassetteError(LLMCacheError):
    """A cassette file exists but can't be used (unreadable, corrupt, truncated, unknown version).

    It is never treated as empty, so a broken recording is never silently re-recorded over.
    """

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        backup = "" if self.path.name.endswith(".bak") else f" (a previous version may be at {self.path.name}.bak)"
        super().__init__(
            f"cassette {self.path} can't be used: {problem}. Fix or restore the file{backup}, "
            "or delete it and record again."
        )


class MarkerError(LLMCacheError, ValueError):
    """A test's ``llm`` marker has an argument that can't be used; an error of that test only."""

    def __init__(self, test_id: str, argument: str, problem: str) -> None:
        self.test_id = test_id
        self.argument = argument
        super().__init__(f"{test_id}: llm marker argument {argument} {problem}")


class SecretLeakError(LLMCacheError):
    """A live credential was about to be written into a cassette; nothing was written."""

    RECORD_ADVICE = "Add a scrubbing rule for that field (see the llm_scrubber fixture) and record again."

    def __init__(self, path: Path | str, where: list[str], advice: str = RECORD_ADVICE) -> None:
        # `where` names each credential by its source (an environment variable, a header), never by value.
        self.path = Path(path)
        self.where = where
        super().__init__(
            f"refusing to write cassette {self.path}: it would contain a live API key or credential "
            f"({'; '.join(where)}). Nothing was written. {advice}"
        )


class MissingRecording(LLMCacheError):
    """A request has no recorded response and the record mode forbids recording it.

    `retryable = False` tells retry loops (tinytroupe's backoff inspects the cause chain) that
    retrying can't help.
    """

    retryable = False

    def __init__(self, message: str, *, cassette_path: Path, request_summary: str) -> None:
        self.cassette_path = cassette_path
        self.request_summary = request_summary
        super().__init__(message)


class WriteError(LLMCacheError):
    """A file could not be written or removed (full disk, read-only folder...); it is as it was,
    and no temporary file is left behind. `errno` is the operating system's error number."""

    def __init__(self, path: Path | str, problem: str, errno: int | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.errno = errno
        super().__init__(f"{self.path}: {problem}; the file is as it was before")


class PlayedRecordError(LLMCacheError):
    """A played record (what a session played, read by ``llmcache prune``) can't be used."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"played record {self.path} can't be used: {problem}. Run the test suite again to write a new one")
