"""Azure OpenAI: the deployment is in the URL and the api-version in the query string.

Both take part in matching (the host does not), so a test names the recorded api-version. In
replay the plugin sets AZURE_OPENAI_ENDPOINT and the keys to placeholders when they are unset.
"""
from __future__ import annotations

import asyncio

import openai
import pytest

from tinytroupe import openai_utils


@pytest.mark.llm(cassette="examples/realworld/pydanticai-azure_provider_call.yaml")
def test_azure_with_the_openai_sdk(llm_cassette):
    """``model`` names the deployment: ``/openai/deployments/gpt-4o/chat/completions``."""
    client = openai.AzureOpenAI(api_version="2024-12-01-preview")

    completion = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "What is the capital of France?"}], n=1, stream=False
    )

    assert completion.choices[0].message.content == "The capital of France is **Paris**."
    assert completion.model == "gpt-4o-2024-11-20"  # the model behind the deployment
    assert completion.choices[0].content_filter_results["hate"] == {"filtered": False, "severity": "safe"}


@pytest.mark.llm(api_type="azure", cassette="examples/realworld/pydanticai-azure_provider_call.yaml")
def test_azure_with_tinytroupe(plain_client):
    """``api_type="azure"`` hands the test tinytroupe's AzureClient; AZURE_API_VERSION must match."""
    openai_utils.force_default_value("azure_api_version", "2024-12-01-preview")

    reply = plain_client.send_message([{"role": "user", "content": "What is the capital of France?"}], model="gpt-4o", n=1, stream=False)

    assert reply["content"] == "The capital of France is **Paris**."


@pytest.mark.llm(cassette="examples/realworld/crewai-azure_async_conversation.yaml")
def test_azure_async_conversation(llm_cassette):
    """The async client replays too; the earlier turns are part of the recorded request."""

    async def ask() -> str:
        async with openai.AsyncAzureOpenAI(api_version="2024-12-01-preview", azure_deployment="gpt-4o-mini") as client:
            completion = await client.chat.completions.create(
                model=openai.omit,  # crewAI sends no model: the deployment in the URL decides
                messages=[
                    {"role": "user", "content": "My name is Alice."},
                    {"role": "assistant", "content": "Hello Alice! Nice to meet you."},
                    {"role": "user", "content": "What is my name?"},
                ],
                stream=False,
            )
            return completion.choices[0].message.content

    assert asyncio.run(ask()) == "Your name is Alice."
