"""Tests of the fake OpenAI server, driven through the real openai SDK over real sockets."""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from fakeopenai import FakeOpenAIServer, Reply, embedding_vector

API_VERSION = "2024-10-21"
HELLO = [{"role": "user", "content": "hello big world"}]


@pytest.fixture
def client(server: FakeOpenAIServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


@pytest.fixture
def azure(server: FakeOpenAIServer) -> Iterator[openai.AzureOpenAI]:
    with openai.AzureOpenAI(
        azure_endpoint=server.azure_endpoint, api_key="az-key", api_version=API_VERSION, max_retries=0
    ) as c:
        yield c


def joined_stream(stream: openai.Stream) -> tuple[list, str]:
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return chunks, text


# --- chat -----------------------------------------------------------------------------------------


def test_chat_echoes_last_message(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    messages = [{"role": "system", "content": "be brief"}, *HELLO]
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    assert completion.choices[0].message.content == "echo: hello big world"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    assert completion.created == 1_700_000_000
    # prompt: (8 + 15) chars // 4 + 1; completion: 4 words.
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (6, 4)
    assert completion.usage.total_tokens == 10


def test_chat_accepts_content_parts(client: openai.OpenAI) -> None:
    parts = [{"type": "text", "text": "one "}, {"type": "text", "text": "two"}]
    completion = client.chat.completions.create(model="m", messages=[{"role": "user", "content": parts}])
    assert completion.choices[0].message.content == "echo: one two"


def test_chat_honours_n(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="m", messages=HELLO, n=2)
    assert [c.index for c in completion.choices] == [0, 1]
    assert {c.message.content for c in completion.choices} == {"echo: hello big world"}


def test_chat_empty_marker_gives_null_content(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x [[empty]]"}])
    assert completion.choices[0].message.content is None
    assert completion.usage.completion_tokens == 0


def test_responses_are_deterministic(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    first = client.chat.completions.with_raw_response.create(model="m", messages=HELLO)
    second = client.chat.completions.with_raw_response.create(model="m", messages=HELLO)
    question = [{"role": "user", "content": "?"}]
    other = client.chat.completions.with_raw_response.create(model="m", messages=question)

    assert first.http_response.content == second.http_response.content
    assert first.headers["x-request-id"] == second.headers["x-request-id"]
    assert first.headers["x-request-id"].startswith("req_")
    assert first.parse().id != other.parse().id
    assert "date" not in first.headers
    assert first.headers["content-type"] == "application/json"
    assert int(first.headers["content-length"]) == len(first.http_response.content)


def test_requests_are_recorded(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="m", messages=HELLO)

    assert server.hits == 1
    request = server.requests[0]
    assert (request.method, request.path, request.query) == ("POST", "/v1/chat/completions", {})
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-stainless-retry-count"] == "0"
    assert request.json() == {"model": "m", "messages": HELLO}


def test_azure_chat(server: FakeOpenAIServer, azure: openai.AzureOpenAI) -> None:
    completion = azure.chat.completions.create(model="my-deployment", messages=HELLO)

    assert completion.choices[0].message.content == "echo: hello big world"
    assert completion.model == "my-deployment"
    assert completion.prompt_filter_results[0]["prompt_index"] == 0
    request = server.requests[0]
    assert request.path == "/openai/deployments/my-deployment/chat/completions"
    assert request.query == {"api-version": API_VERSION}
    assert request.headers["api-key"] == "az-key"
    assert "authorization" not in request.headers


def test_azure_requires_api_version(server: FakeOpenAIServer) -> None:
    # A plain client pointed at an Azure path sends no api-version.
    plain = openai.OpenAI(
        base_url=server.url + "/openai/deployments/d", api_key="x", default_headers={"api-key": "k"}, max_retries=0
    )
    with plain, pytest.raises(openai.BadRequestError) as excinfo:
        plain.chat.completions.create(model="d", messages=HELLO)
    assert excinfo.value.code == "MissingApiVersionParameter"


def test_azure_requires_api_key(server: FakeOpenAIServer) -> None:
    plain = openai.OpenAI(
        base_url=server.url + "/openai/deployments/d",
        api_key="x",
        default_query={"api-version": API_VERSION},
        max_retries=0,
    )
    with plain, pytest.raises(openai.AuthenticationError) as excinfo:
        plain.chat.completions.create(model="d", messages=HELLO)
    assert excinfo.value.status_code == 401


def test_openai_requires_bearer_key(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as excinfo:
        client.chat.completions.create(model="m", messages=HELLO, extra_headers={"Authorization": openai.Omit()})
    assert "didn't provide an API key" in excinfo.value.body["message"]
    assert excinfo.value.body == {
        "message": excinfo.value.body["message"],
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert "authorization" not in server.requests[0].headers


def test_unknown_path_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as excinfo:
        client.models.list()
    assert excinfo.value.body["message"] == "Invalid URL (GET /v1/models)"


def test_missing_messages_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.post("/chat/completions", body={"model": "m"}, cast_to=object)
    assert excinfo.value.code == "missing_required_parameter"
    assert excinfo.value.param == "messages"


# --- streaming ------------------------------------------------------------------------------------


def test_stream_joins_to_non_stream_content(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "  spaced   out  words "}]
    plain = client.chat.completions.create(model="m", messages=messages)
    chunks, text = joined_stream(
        client.chat.completions.create(
            model="m", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )

    assert text == plain.choices[0].message.content == "echo:   spaced   out  words "
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks[1:-1]] == [None, None, None, None, "stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage == plain.usage
    assert len({c.id for c in chunks}) == 1


def test_stream_without_usage_has_no_usage_chunk(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="m", messages=HELLO, stream=True)
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["transfer-encoding"] == "chunked"
    chunks = list(raw.parse())
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_azure_stream_starts_with_prompt_filter_chunk(azure: openai.AzureOpenAI) -> None:
    chunks, text = joined_stream(azure.chat.completions.create(model="dep", messages=HELLO, stream=True))

    assert chunks[0].choices == []
    assert chunks[0].prompt_filter_results[0]["content_filter_results"]["hate"]["filtered"] is False
    assert text == "echo: hello big world"


# --- embeddings -----------------------------------------------------------------------------------


def test_embeddings_float(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"], encoding_format="float")

    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == embedding_vector("a")
    assert len(result.data[0].embedding) == 8
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens == result.usage.total_tokens == 2
    assert server.requests[0].json()["encoding_format"] == "float"


def test_embeddings_default_is_base64_decoded(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input="hello")

    # The SDK silently requests base64 and decodes it back to floats.
    assert server.requests[0].json()["encoding_format"] == "base64"
    assert result.data[0].embedding == embedding_vector("hello")


def test_embeddings_explicit_base64(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="e", input=[[1, 2, 3]], encoding_format="base64")

    encoded = result.data[0].embedding
    assert isinstance(encoded, str)
    assert list(struct.unpack("<8f", base64.b64decode(encoded))) == embedding_vector([1, 2, 3])
    assert result.usage.prompt_tokens == 3


def test_azure_embeddings(server: FakeOpenAIServer, azure: openai.AzureOpenAI) -> None:
    result = azure.embeddings.create(model="emb-deployment", input="x")
    assert result.data[0].embedding == embedding_vector("x")
    assert server.requests[0].path == "/openai/deployments/emb-deployment/embeddings"


# --- scripted replies -----------------------------------------------------------------------------


def test_rate_limit_then_success(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.script(Reply.error(429, "slow down", retry_after=2))

    with pytest.raises(openai.RateLimitError) as excinfo:
        client.chat.completions.create(model="m", messages=HELLO)
    assert excinfo.value.response.headers["retry-after"] == "2"
    assert excinfo.value.body["message"] == "slow down"
    assert excinfo.value.code == "rate_limit_exceeded"

    assert client.chat.completions.create(model="m", messages=HELLO).choices[0].message.content
    assert server.hits == 2


def test_sdk_retries_honour_retry_after_ms(server: FakeOpenAIServer) -> None:
    server.script(Reply.error(429, retry_after_ms=10))
    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=1) as retrying:
        retrying.chat.completions.create(model="m", messages=HELLO)

    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1"]


def test_server_error(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.script(Reply.error(500))
    with pytest.raises(openai.InternalServerError) as excinfo:
        client.chat.completions.create(model="m", messages=HELLO)
    assert excinfo.value.status_code == 500
    assert excinfo.value.type == "server_error"


def test_bad_request(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.script(Reply.error(400, "bad param", code="invalid_value"))
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.chat.completions.create(model="m", messages=HELLO)
    assert (excinfo.value.body["message"], excinfo.value.code, excinfo.value.type) == (
        "bad param",
        "invalid_value",
        "invalid_request_error",
    )


def test_script_is_fifo_then_default(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.script(Reply.json(200, {"anything": True}, headers={"x-custom": "yes"}), Reply.error(503))

    raw = client.chat.completions.with_raw_response.create(model="m", messages=HELLO)
    assert raw.headers["x-custom"] == "yes"
    assert raw.http_response.json() == {"anything": True}
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=HELLO)
    assert client.chat.completions.create(model="m", messages=HELLO).choices[0].message.content


def test_reset_clears_requests_and_script(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="m", messages=HELLO)
    server.script(Reply.error(500))
    server.reset()

    assert server.hits == 0
    assert client.chat.completions.create(model="m", messages=HELLO).choices[0].message.content
    assert server.hits == 1


def test_delay_triggers_client_timeout(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.script(Reply.delay(2))
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.2).chat.completions.create(model="m", messages=HELLO)


def test_delay_then_answers(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.script(Reply.delay(0.05))
    assert client.chat.completions.create(model="m", messages=HELLO).choices[0].message.content


def test_drop_is_connection_error(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.script(Reply.drop())
    with pytest.raises(openai.APIConnectionError) as excinfo:
        client.chat.completions.create(model="m", messages=HELLO)
    assert not isinstance(excinfo.value, openai.APITimeoutError)
    # The next request gets a fresh connection and a normal answer.
    assert client.chat.completions.create(model="m", messages=HELLO).choices[0].message.content


# --- lifecycle and concurrency --------------------------------------------------------------------


def test_stop_refuses_connections_and_restart_reuses_port(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="m", messages=HELLO)  # leaves a pooled keep-alive connection
    url = server.url
    server.stop()

    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=HELLO)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    assert server.url == url
    assert server.hits == 1

    server.start()
    assert server.url == url
    assert client.chat.completions.create(model="m", messages=HELLO).choices[0].message.content


def test_many_sequential_and_concurrent_requests(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    for i in range(20):
        assert client.embeddings.create(model="e", input=str(i)).data[0].embedding == embedding_vector(str(i))

    def ask(i: int) -> str | None:
        completion = client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"q{i}"}])
        return completion.choices[0].message.content

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, range(40)))
    assert answers == [f"echo: q{i}" for i in range(40)]
    assert server.hits == 60


def test_async_client(server: FakeOpenAIServer) -> None:
    async def main() -> tuple[list[str | None], str]:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="k", max_retries=0) as aclient:
            create = aclient.chat.completions.create
            completions = await asyncio.gather(
                *(create(model="m", messages=[{"role": "user", "content": f"a{i}"}]) for i in range(5))
            )
            stream = await aclient.chat.completions.create(model="m", messages=HELLO, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            return [c.choices[0].message.content for c in completions], text

    contents, streamed = asyncio.run(main())

    assert contents == [f"echo: a{i}" for i in range(5)]
    assert streamed == "echo: hello big world"
    assert server.requests[0].headers["x-stainless-async"].startswith("async:")
    assert server.hits == 6
