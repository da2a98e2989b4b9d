"""The benchmark's only contact with pytest-llmcache: write, load, replay and record cassettes
through the plugin's own API (`pytest_llmcache.cassette` and `pytest_llmcache.recorder`).

If the plugin's API changes, this is the file to update; `available()` says why it can't run.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any
from collections.abc import Iterator

from workload import API_KEY, BASE_URL, SDK_REQUEST_HEADERS, Interaction


def available() -> str | None:
    """None when the plugin's record/replay API is importable, else the reason it is not."""
    try:
        from pytest_llmcache import cassette, recorder, scrubbing

        recorder.LLMCassette.use  # noqa: B018
        cassette.save  # noqa: B018
        cassette.load  # noqa: B018
        scrubbing.Scrubber  # noqa: B018
    except (ImportError, AttributeError) as err:
        return f"pytest_llmcache's replay API is not usable: {err}"
    return None


def compile_modules() -> None:
    """Byte code for the plugin's modules (and tinytroupe's), as a wheel install has it. The
    generated suite's pytest processes run with PYTHONDONTWRITEBYTECODE, so a module edited since
    its byte code was written would be compiled again by every one of them, at start-up."""
    import compileall

    import pytest_llmcache
    import tinytroupe

    for package in (pytest_llmcache, tinytroupe):
        compileall.compile_dir(package.__path__[0], quiet=1)


def stored_interactions(interactions: list[Interaction], base_url: str = BASE_URL) -> list[dict[str, Any]]:
    """The interactions in the plugin's in-memory form, built as the recorder builds them (scrubbed)."""
    from pytest_llmcache.scrubbing import Scrubber

    scrubber = Scrubber()
    out = []
    for interaction in interactions:
        headers = dict(SDK_REQUEST_HEADERS, **{"content-length": str(len(interaction.request_bytes))})
        out.append({
            "request": scrubber.request("POST", base_url + interaction.path, headers, interaction.request_bytes),
            "response": scrubber.response(
                {"code": 200, "message": "OK"},
                {name: [value] for name, value in interaction.response_headers.items()},
                interaction.response_bytes,
            ),
        })
    return out


def write_cassette(path: Path, interactions: list[Interaction], base_url: str = BASE_URL) -> Path:
    """A plugin cassette written by the plugin's own save API."""
    from pytest_llmcache import cassette

    cassette.save(path, stored_interactions(interactions, base_url))
    return path


def load(path: Path) -> list[dict[str, Any]]:
    """Load a cassette file with the plugin's own loader, every interaction parsed (replay itself
    indexes the file and parses an interaction only when it is played)."""
    from pytest_llmcache import cassette

    return cassette.load(path)


@contextmanager
def replaying(path: Path) -> Iterator[Any]:
    """The plugin's cassette, replay only (record mode 'none'), active for the openai SDK."""
    from pytest_llmcache.recorder import LLMCassette

    with LLMCassette.use(path=path, record_mode="none") as cassette:
        yield cassette


@contextmanager
def recording(path: Path) -> Iterator[Any]:
    """The plugin's cassette recording into a new file at `path`; saved when the block ends
    (the save is timed by the caller through `save`)."""
    from pytest_llmcache.recorder import LLMCassette

    with LLMCassette.use(path=path, record_mode="once") as cassette:
        yield cassette


def save(cassette: Any) -> None:
    """Write what a `recording` cassette recorded (the plugin saves after its context)."""
    cassette.save()


def record_in_memory(path: Path, interactions: list[Interaction]) -> Path:
    """A plugin cassette as the plugin records it: each interaction's request sent through the
    openai SDK inside a `recording` cassette, answered by an in-memory transport (which the
    plugin intercepts like any other), so what `write_cassette` writes can be checked against it."""
    import httpx2
    import openai

    answers = {interaction.request_bytes: interaction for interaction in interactions}

    def answer(request: httpx2.Request) -> httpx2.Response:
        interaction = answers[request.content]
        return httpx2.Response(200, headers=interaction.response_headers, content=interaction.response_bytes)

    client = openai.OpenAI(api_key=API_KEY, base_url=BASE_URL, max_retries=0,
                           http_client=httpx2.Client(transport=httpx2.MockTransport(answer)))
    path.unlink(missing_ok=True)
    with recording(path) as cassette:
        for interaction in interactions:
            client.chat.completions.create(**interaction.body)
    save(cassette)
    return path


def default_cassette(rootdir: Path, module: Path, test_name: str) -> Path:
    """Where the plugin looks for the cassette of `test_name` in `module` (default cassette directory)."""
    from pytest_llmcache.paths import cassette_path

    return cassette_path(rootdir / "cassettes", rootdir, module, test_name)
