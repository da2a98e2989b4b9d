"""The provider table: which provider, endpoint kind and usage fields a request gets, and what replay
sets so every provider's SDK builds a client without a key."""
from __future__ import annotations

import pytest

import builders
from pytest_llmcache import providers
from pytest_llmcache.providers import (
    ANTHROPIC,
    AZURE,
    GEMINI,
    OPENAI,
    OPENAI_COMPATIBLE,
    PROVIDERS,
    endpoint_for,
    is_azure,
    placeholder_env,
    provider_for,
    provider_named,
    secret_host,
)


@pytest.mark.parametrize(
    ("uri", "headers", "expected"),
    [
        ("https://api.openai.com/v1/chat/completions", {}, OPENAI),
        ("https://api.openai.test/v1/responses", {}, OPENAI),
        ("https://my-res.openai.azure.com/openai/deployments/gpt/chat/completions?api-version=2024-10-21", {}, AZURE),
        ("https://my-res.cognitiveservices.azure.com/openai/deployments/gpt/chat/completions", {}, AZURE),
        ("https://proj.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview", {}, AZURE),
        ("https://MY-RES.OpenAI.Azure.com./openai/v1/responses", {}, AZURE),
        ("http://127.0.0.1:8080/openai/deployments/gpt/chat/completions", {}, AZURE),  # a proxy in front of Azure
        ("https://api.anthropic.com/v1/messages", {}, ANTHROPIC),
        ("http://127.0.0.1:9/v1/messages", {}, ANTHROPIC),
        ("http://gateway.local/anthropic/v1/messages", {"anthropic-version": "2023-06-01"}, ANTHROPIC),
        ("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent", {}, GEMINI),
        ("http://127.0.0.1:9/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", {}, GEMINI),
        ("http://localhost:4000/v1/chat/completions", {}, OPENAI_COMPATIBLE),
        ("https://oai.helicone.ai/v1/chat/completions", {"Helicone-Auth": "Bearer x"}, OPENAI_COMPATIBLE),
        # look-alike hosts are not Azure: a suffix match needs the dot
        ("https://evilopenai.azure.com.example.org/v1/chat/completions", {}, OPENAI_COMPATIBLE),
        ("https://xopenai.azure.com/v1/chat/completions", {}, OPENAI_COMPATIBLE),
    ],
)
def test_provider_for(uri: str, headers: dict[str, str], expected: providers.Provider) -> None:
    assert provider_for(uri, headers) is expected
    assert is_azure(uri) == (expected is AZURE)


@pytest.mark.parametrize(
    ("uri", "kind", "streamed"),
    [
        ("https://api.openai.com/v1/chat/completions", "chat.completions", False),
        ("https://api.openai.com/v1/completions", "completions", False),
        ("https://api.openai.com/v1/embeddings", "embeddings", False),
        ("https://api.openai.com/v1/responses", "responses", False),
        ("https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=1", "chat.completions", False),
        ("https://api.anthropic.com/v1/messages", "messages", False),
        ("https://api.anthropic.com/v1/messages/count_tokens", "messages.count_tokens", False),
        ("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent", "generateContent", False),
        ("https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent?alt=sse", "streamGenerateContent", True),
        ("https://generativelanguage.googleapis.com/v1beta/models/text-embedding-004:embedContent", "embedContent", False),
    ],
)
def test_endpoint_kinds(uri: str, kind: str, streamed: bool) -> None:
    endpoint = endpoint_for(uri)
    assert endpoint is not None and endpoint.kind == kind and endpoint.streamed_by_path == streamed


def test_unknown_paths_have_no_endpoint() -> None:
    assert endpoint_for("https://api.openai.com/v1/models") is None
    assert endpoint_for("https://generativelanguage.googleapis.com/v1beta/models") is None


@pytest.mark.parametrize(
    ("uri", "document", "expected"),
    [
        ("https://api.openai.com/v1/chat/completions", {"usage": {"prompt_tokens": 12, "completion_tokens": 3}}, (12, 3)),
        ("https://api.openai.com/v1/responses", {"usage": {"input_tokens": 20, "output_tokens": 5}}, (20, 5)),
        ("https://api.openai.com/v1/embeddings", {"usage": {"prompt_tokens": 7, "total_tokens": 7}}, (7, None)),
        ("https://api.anthropic.com/v1/messages", {"usage": {"input_tokens": 9, "output_tokens": 4}}, (9, 4)),
        (
            "https://generativelanguage.googleapis.com/v1beta/models/g:generateContent",
            {"usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2, "totalTokenCount": 10}},
            (8, 2),
        ),
        ("https://api.openai.com/v1/chat/completions", {"usage": None}, (None, None)),
        ("https://api.openai.com/v1/chat/completions", {"usage": {"prompt_tokens": True}}, (None, None)),
        ("https://api.openai.com/v1/chat/completions", ["not", "a", "dict"], (None, None)),
    ],
)
def test_usage_fields(uri: str, document: object, expected: tuple[int | None, int | None]) -> None:
    endpoint = endpoint_for(uri)
    assert endpoint is not None
    assert endpoint.usage.read(document) == expected


def test_placeholders_cover_every_provider_with_keys() -> None:
    env = placeholder_env()
    for provider in PROVIDERS:
        if provider.credential_env_vars:
            assert any(name in env for name in provider.credential_env_vars), provider.name
    assert env["ANTHROPIC_API_KEY"] and env["GEMINI_API_KEY"] and env["OPENAI_API_KEY"]
    # stored hosts are placeholders under the reserved .test TLD (or the Azure placeholder resource)
    assert provider_for(ANTHROPIC.placeholder_url + "/v1/messages") is ANTHROPIC
    assert provider_for(GEMINI.placeholder_url + "/v1beta/models/g:generateContent") is GEMINI
    assert provider_for(AZURE.placeholder_url + "/openai/deployments/d/chat/completions") is AZURE


def test_secret_hosts_are_azure_resources_only() -> None:
    assert secret_host("https://my-res.openai.azure.com/") == "my-res.openai.azure.com"
    assert secret_host("proj.services.ai.azure.com") == "proj.services.ai.azure.com"
    assert secret_host(AZURE.placeholder_url) is None
    assert secret_host("https://api.openai.com/v1") is None
    assert secret_host("http://[bad") is None


def test_provider_named() -> None:
    assert provider_named("anthropic") is ANTHROPIC
    with pytest.raises(ValueError, match="unknown provider 'nope'; known: openai, azure"):
        provider_named("nope")


def test_names_are_unique_and_fallback_is_last() -> None:
    assert len({provider.name for provider in PROVIDERS}) == len(PROVIDERS)
    assert PROVIDERS[-1] is OPENAI_COMPATIBLE and not OPENAI_COMPATIBLE.hosts


def test_cassette_header_is_provider_neutral_and_old_headers_still_load(tmp_path) -> None:
    from pytest_llmcache import cassette as cassette_file
    from pytest_llmcache.errors import CassetteError

    interaction = builders.interaction({"json": {"a": 1}}, {"json": {"b": 2}}, uri="https://api.anthropic.test/v1/messages")
    text = cassette_file.dumps([interaction])
    first_line = text.splitlines()[0]
    assert "OpenAI" not in first_line and "Anthropic" not in first_line and first_line.startswith("# pytest-llmcache cassette")
    old = text.replace(first_line, "# pytest-llmcache cassette: recorded OpenAI / Azure OpenAI exchanges, replayed byte for byte.", 1)
    for version in (text, old):
        entries = cassette_file.loads_entries(version, tmp_path / "c.yaml")
        assert [entry.interaction["response"]["body"] for entry in entries] == [{"json": {"b": 2}}]
        with pytest.raises(CassetteError, match="truncated"):
            cassette_file.loads_entries(version[: len(version) - 20], tmp_path / "c.yaml")
