"""Embeddings, replayed: the SDK asks for base64 vectors unless told otherwise."""
from __future__ import annotations

import array
import base64

import openai
import pytest


@pytest.mark.llm(cassette="examples/realworld/pydanticai-embeddings_documents.yaml")
def test_openai_sdk_embeddings(llm_cassette):
    """The SDK sends ``encoding_format: base64`` by default and decodes the answer to floats."""
    response = openai.OpenAI().embeddings.create(model="text-embedding-3-small", input=["hello", "world"])

    assert [len(item.embedding) for item in response.data] == [1536, 1536]
    assert all(isinstance(value, float) for value in response.data[0].embedding)
    assert response.usage.prompt_tokens == 2


@pytest.mark.llm(cassette="examples/realworld/otel-embeddings_with_encoding_format.yaml")
def test_base64_embedding_when_asked_for(llm_cassette):
    """Asking for base64 explicitly, the vector stays a string of little-endian float32s."""
    response = openai.OpenAI().embeddings.create(
        model="text-embedding-3-small",
        input="This is a test for embeddings with encoding format",
        encoding_format="base64",
    )

    vector = array.array("f", base64.b64decode(response.data[0].embedding))
    assert len(vector) == 1536
    assert response.usage.total_tokens == 9


@pytest.mark.llm(cassette="examples/realworld/pydanticai-embeddings_query.yaml")
def test_tinytroupe_get_embedding(llm_client):
    """`get_embedding` sends ``{"model", "input": [text]}`` (plus the SDK's base64) and returns the vector."""
    vector = llm_client.get_embedding("Hello, world!")  # EMBEDDING_MODEL: text-embedding-3-small

    assert len(vector) == 1536
    assert abs(sum(value * value for value in vector) - 1.0) < 1e-3  # OpenAI embeddings are unit length
