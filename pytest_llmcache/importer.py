"""Converting other tools' cassettes (vcrpy, pytest-recording, pydantic-ai) to this project's format.

`cassette.load` already reads those flavours (string / ``!!binary`` bodies, gzip-encoded
responses, ``parsed_body``); importing keeps only the LLM API calls (every provider of
`pytest_llmcache.providers`, and OpenAI-compatible endpoints by path), scrubs them with
`Scrubber.stored_interactions` (the credentials of every request in the file are learned before
any response is scrubbed), and saves atomically, refusing to write a credential it saw. The output
depends only on the input, so importing again changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pytest_llmcache import cassette as cassette_file
from pytest_llmcache.errors import SecretLeakError
from pytest_llmcache.providers import OPENAI_COMPATIBLE, endpoint_for, provider_for
from pytest_llmcache.scrubbing import Scrubber

__all__ = ["ImportResult", "convert", "import_cassette", "is_llm_call"]

# What to do about a refused import: the source is what holds the credential, not a recording.
_LEAK_ADVICE = (
    "Remove it from the source cassette (or add a scrubbing rule for that field: "
    "Scrubber(extra_headers=..., extra_query_params=...)) and import again."
)


def is_llm_call(uri: str) -> bool:
    """Whether `uri` is a call to a known provider, or an LLM endpoint of an OpenAI-compatible one."""
    return provider_for(uri) is not OPENAI_COMPATIBLE or endpoint_for(uri) is not None


@dataclass
class ImportResult:
    source: Path
    destination: Path
    interactions: int = 0
    skipped_hosts: list[str] = field(default_factory=list)  # one per interaction left out
    status: str = "new"  # "new", "updated", "unchanged" or "empty" (nothing to import: not written)


def convert(interactions: list[cassette_file.Interaction], scrubber: Scrubber) -> tuple[list[cassette_file.Interaction], list[str]]:
    """The scrubbed LLM calls among `interactions`, and the hosts of the ones left out."""
    for interaction in interactions:
        scrubber.learn_interaction(interaction)  # a call left out may still carry the same cookie or key
    kept, skipped = [], []
    for interaction in interactions:
        if is_llm_call(interaction["request"]["uri"]):
            kept.append(interaction)
        else:
            skipped.append(urlsplit(interaction["request"]["uri"]).hostname or interaction["request"]["uri"])
    return scrubber.stored_interactions(kept), skipped


def import_cassette(source: Path, destination: Path, scrubber: Scrubber | None = None) -> ImportResult:
    """Import `source` into `destination`.

    Raises FileNotFoundError / CassetteError for an unusable source and SecretLeakError (nothing
    written) when a credential seen in the source would end up in the output.
    """
    scrubber = scrubber if scrubber is not None else Scrubber()
    kept, skipped = convert(cassette_file.load(source), scrubber)
    result = ImportResult(source, destination, len(kept), skipped)
    if not kept:
        result.status = "empty"
        return result
    text = cassette_file.dumps(kept)
    try:
        scrubber.check(text, destination, kept)
    except SecretLeakError as error:
        raise SecretLeakError(destination, error.where, advice=_LEAK_ADVICE) from None
    if destination.exists():
        if destination.read_bytes() == text.encode("utf-8"):
            result.status = "unchanged"
            return result
        result.status = "updated"
    cassette_file.save(destination, kept)
    return result
