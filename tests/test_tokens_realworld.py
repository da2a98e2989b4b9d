"""Token counts against what OpenAI / Azure OpenAI really billed.

The exchanges in ``data/realworld_exchanges.jsonl`` were recorded by public
projects against the live services (attribution in ``data/NOTICE``).
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import tiktoken_ext.openai_public as openai_public

from pytest_llmcache.token_report import count_input_tokens, record_exchange
from tinytroupe import tokens

DATA = Path(__file__).parent / "data" / "realworld_exchanges.jsonl"
MEDIA_PARTS = {"image_url", "input_audio", "file"}


def _load() -> list[dict]:
    with DATA.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _category(record: dict) -> str | None:
    """Target category of an exchange, or None when it is not measured."""
    request = record["request_json"]
    if record["endpoint"] == "embeddings":
        return "embeddings"
    for message in request["messages"]:
        content = message.get("content")
        if isinstance(content, list) and any(part.get("type") in MEDIA_PARTS for part in content):
            return None  # images and audio are not counted
    response_format = (request.get("response_format") or {}).get("type")
    if request.get("tools") or request.get("functions") or response_format not in (None, "text"):
        return "chat+tools"
    return "chat"


def _outcomes() -> dict[str, list[tuple[str, int, int]]]:
    outcomes: dict[str, list[tuple[str, int, int]]] = {"chat": [], "chat+tools": [], "embeddings": []}
    for record in _load():
        category = _category(record)
        if category is None:
            continue
        exchange = record_exchange(record)
        counted = count_input_tokens(exchange, str(exchange.billed_model))
        where = f"{record['source']}#{record['interaction_index']}"
        outcomes[category].append((where, counted, record["usage"]["prompt_tokens"]))
    return outcomes


OUTCOMES = _outcomes()


@pytest.mark.parametrize(
    ("category", "minimum", "target"),
    [("chat", 40, 0.98), ("chat+tools", 45, 0.90), ("embeddings", 9, 0.95)],
)
def test_exact_share_meets_target(category: str, minimum: int, target: float) -> None:
    results = OUTCOMES[category]
    assert len(results) >= minimum, "the copied data lost exchanges"
    misses = [r for r in results if r[1] != r[2]]
    share = 1 - len(misses) / len(results)
    assert share >= target, f"{category}: {share:.1%} exact; misses (where, counted, billed): {misses}"


def test_every_measured_exchange_uses_a_known_model() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", tokens.UnknownModelWarning)
        _outcomes()


def test_encodings_load_without_network(tmp_path: Path) -> None:
    """A fresh interpreter builds both encodings with sockets disabled and an empty cache."""
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    script = textwrap.dedent(
        """
        import socket

        def refuse(*args, **kwargs):
            raise AssertionError("network access attempted")

        socket.socket.connect = refuse
        socket.create_connection = refuse

        from tinytroupe.tokens import encoding_for_model

        assert encoding_for_model("gpt-4o").encode("hello world") == [24912, 2375]
        assert encoding_for_model("gpt-3.5-turbo").encode("hello world") == [15339, 1917]
        """
    )
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache), "DATA_GYM_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert list(cache.iterdir()) == []


def test_unknown_model_warns_and_falls_back_to_o200k() -> None:
    with pytest.warns(tokens.UnknownModelWarning, match="acme-llm-9000.*o200k_base"):
        encoding = tokens.encoding_for_model("acme-llm-9000")
    assert encoding.name == "o200k_base"
    assert tokens.count_tokens([{"role": "user", "content": "hi"}], "acme-llm-9000") == 8


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-2024-08-06", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1-mini", "o200k_base"),
        ("gpt-4.5-preview", "o200k_base"),
        ("gpt-5-nano-2025-08-07", "o200k_base"),
        ("gpt-5.2-chat-latest", "o200k_base"),
        ("o1-mini-2024-09-12", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini-2025-04-16", "o200k_base"),
        ("gpt-6", "o200k_base"),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "o200k_base"),
        ("azure/my-gpt-4o-mini-deployment", "o200k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo-2024-04-09", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("text-embedding-ada-002-v2", "cl100k_base"),
    ],
)
def test_model_to_encoding(model: str, encoding: str) -> None:
    assert tokens.encoding_name_for_model(model) == encoding


def test_encoding_constants_match_tiktoken_ext() -> None:
    """pat_str, special tokens and hashes equal the literals in tiktoken_ext.openai_public."""
    source = ast.parse(inspect.getsource(openai_public))
    functions = {node.name: node for node in source.body if isinstance(node, ast.FunctionDef)}
    for name, spec in tokens._SPECS.items():
        body = functions[name]
        literals = {node.value for node in ast.walk(body) if isinstance(node, ast.Constant)}
        pieces = [
            "|".join(element.value for element in node.elts)
            for node in ast.walk(body)
            if isinstance(node, ast.List) and all(isinstance(e, ast.Constant) for e in node.elts)
        ]
        assert spec.pat_str in literals | set(pieces)
        assert spec.sha256 in literals
        # special-token ids are int literals next to their names in the same function
        assert set(spec.special_tokens.values()) <= literals


# Prompt-token counts measured against gpt-3.5-turbo by hmarr/openai-chat-tokens
# (its test suite); they exercise the gpt-3.5/gpt-4 function renderer.
GPT35_FUNCTION_CASES = [
    ([{"role": "user", "content": "hello"}], [{"name": "foo", "parameters": {"type": "object", "properties": {}}}], 31),
    (
        [{"role": "user", "content": "hello"}],
        [
            {
                "name": "bing_bong",
                "description": "Do a bing bong",
                "parameters": {
                    "type": "object",
                    "properties": {"foo": {"type": "string"}, "bar": {"type": "number", "description": "A number"}},
                },
            }
        ],
        57,
    ),
    (
        [{"role": "system", "content": "Hello:"}, {"role": "user", "content": "Hi there"}],
        [{"name": "do_stuff", "parameters": {"type": "object", "properties": {}}}],
        35,
    ),
    ([{"role": "user", "content": "hello world"}, {"role": "function", "name": "do_stuff", "content": "{}"}], None, 15),
    (
        [
            {
                "role": "assistant",
                "content": "",
                "function_call": {"name": "do_stuff", "arguments": '{"foo": "bar", "baz": 1.5}'},
            }
        ],
        None,
        26,
    ),
]


@pytest.mark.parametrize(("messages", "functions", "billed"), GPT35_FUNCTION_CASES)
def test_gpt35_function_format(messages: list, functions: list | None, billed: int) -> None:
    assert tokens.count_tokens(messages, "gpt-3.5-turbo-0613", functions=functions) == billed
