"""Converting other tools' cassettes (vcrpy, pytest-recording, pydantic-ai) to this project's format.

`cassette.load` already reads those flavours (string / ``!!binary`` bodies, gzip-encoded
responses, ``parsed_body``); importing then scrubs every interaction as if it had just been
recorded (placeholder host, no auth headers or cookies, masked organisation ids), keeps only the
OpenAI / Azure OpenAI calls, and saves atomically, refusing to write a credential it saw. The
output depends only on the input, so importing again changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pytest_llmcache import cassette as cassette_file
from pytest_llmcache._commands.exchange import endpoint_name
from pytest_llmcache.bodies import decode_body
from pytest_llmcache.scrubbing import OPENAI_PLACEHOLDER_URL, Scrubber, is_azure

__all__ = ["ImportResult", "convert", "import_cassette", "is_openai_call"]

_OPENAI_HOSTS = frozenset({"api.openai.com", urlsplit(OPENAI_PLACEHOLDER_URL).hostname})


def is_openai_call(uri: str) -> bool:
    """Whether `uri` is an OpenAI / Azure OpenAI (or OpenAI-compatible) API call worth keeping."""
    parts = urlsplit(uri)
    return is_azure(uri) or parts.hostname in _OPENAI_HOSTS or endpoint_name(parts.path) is not None


@dataclass
class ImportResult:
    source: Path
    destination: Path
    interactions: int = 0
    skipped_hosts: list[str] = field(default_factory=list)  # one per interaction left out
    status: str = "new"  # "new", "updated", "unchanged" or "empty" (nothing to import: not written)


def convert(interactions: list[cassette_file.Interaction], scrubber: Scrubber) -> tuple[list[cassette_file.Interaction], list[str]]:
    """The scrubbed OpenAI calls among `interactions`, and the hosts of the ones left out."""
    kept, skipped = [], []
    for interaction in interactions:
        request, response = interaction["request"], interaction["response"]
        if not is_openai_call(request["uri"]):
            skipped.append(urlsplit(request["uri"]).hostname or request["uri"])
            continue
        body = decode_body(response["body"])
        scrubbed = scrubber.response(response["status"], response["headers"], body)
        for name in scrubbed["headers"]:
            if name.lower() == "content-length":
                # pydantic-ai's parsed_body is re-serialised, so the original length no longer holds.
                scrubbed["headers"][name] = [str(len(body))]
        kept.append(
            {
                "request": scrubber.request(request["method"], request["uri"], request["headers"], decode_body(request["body"])),
                "response": scrubbed,
            }
        )
    return kept, skipped


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
    scrubber.check(text, destination)
    if destination.exists():
        if destination.read_bytes() == text.encode("utf-8"):
            result.status = "unchanged"
            return result
        result.status = "updated"
    cassette_file.save(destination, kept)
    return result
