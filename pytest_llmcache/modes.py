"""Record modes: what a test may do with its cassette. No dependencies, so that the recorder,
the options, the marker and the CLI all import this one definition.

The API types a test can ask for (``openai``, ``azure``) are the client library's:
`tinytroupe.config.API_TYPES`.
"""
from __future__ import annotations

__all__ = ["RECORD_MODES"]

# none: replay only; once: record a test whose cassette does not exist yet; new_episodes: replay
# what is recorded, record what is not; all: record every request again; rewrite: a fresh cassette.
RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")
