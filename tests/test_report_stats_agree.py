"""The session report and ``llmcache stats --json`` read the same cassettes the same way.

An inner session records, through the openai SDK, from the loopback server (which answers the
Responses API calls from a script): a chat call, a streamed chat call with its usage, Responses API
calls as JSON and as an event stream, an embeddings call and an Azure chat call. One stream's
recording then loses its response headers (as many public cassettes have), the server stops, and
the session replays: the report's per-model rows and total must be what ``stats --json`` says.
"""
from __future__ import annotations

import json
import re
from typing import Any
from decimal import Decimal

import pytest

from fakeopenai import Reply
from pytest_llmcache import cassette as cassette_file
from pytest_llmcache.cli import main
from pytest_llmcache.pricing import money_text

RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1700000000,
    "status": "completed",
    "model": "gpt-4o-2024-08-06",
    "output": [
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Paris.", "annotations": []}],
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {"input_tokens": 165, "output_tokens": 3, "total_tokens": 168},
}


def _sse(events: list[dict]) -> bytes:
    return "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events).encode()


STREAMED = {**RESPONSE, "id": "resp_2", "usage": {"input_tokens": 158, "output_tokens": 2, "total_tokens": 160}}
RESPONSE_EVENTS = [
    {"type": "response.created", "sequence_number": 0, "response": {**STREAMED, "status": "in_progress", "output": [], "usage": None}},
    {"type": "response.output_text.delta", "sequence_number": 1, "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "Par"},
    {"type": "response.output_text.delta", "sequence_number": 2, "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "is."},
    {"type": "response.completed", "sequence_number": 3, "response": STREAMED},
]

INNER = '''
import openai

def chat(**extra):
    return openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of France?"}], **extra)

def test_chat(llm_cassette):
    chat()

def test_stream(llm_cassette):
    assert "".join(c.choices[0].delta.content or "" for c in chat(stream=True, stream_options={"include_usage": True}) if c.choices)

def test_stream_headerless(llm_cassette):
    assert "".join(c.choices[0].delta.content or "" for c in chat(stream=True, stream_options={"include_usage": True}) if c.choices)

def test_responses(llm_cassette):
    assert openai.OpenAI().responses.create(model="gpt-4o", input="Capital of France?").output_text == "Paris."

def test_responses_stream(llm_cassette):
    events = list(openai.OpenAI().responses.create(model="gpt-4o", input="Capital of France?", stream=True))
    assert events[-1].response.usage.input_tokens == 158

def test_embeddings(llm_cassette):
    openai.OpenAI().embeddings.create(model="text-embedding-3-small", input=["one", "two"])

def test_azure(llm_cassette):
    openai.AzureOpenAI(api_version="2024-10-21").chat.completions.create(model="prod-4o-mini", messages=[{"role": "user", "content": "Capital of France?"}])
'''


def _report_rows(output: str) -> dict[str, list[str]]:
    """The replayed-tokens table of the session report: first cell -> the other cells."""
    section = output.split("tokens replayed, and their live cost")[1].split("slowest tests")[0]
    rows = {}
    for line in section.splitlines()[2:]:
        if not line.startswith("  ") or line.lstrip().startswith("("):
            continue
        model, *cells = re.split(r"\s{2,}", line.strip())
        rows[model] = cells
    return rows


def report_and_stats(suite: Any, capsys: pytest.CaptureFixture[str], passed: int) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Run `suite` (its `passed` tests pass): the report's replayed-tokens rows, and what
    ``llmcache stats --json`` says of its cassettes."""
    replayed = suite.run()
    replayed.assert_outcomes(passed=passed)
    rows = _report_rows(replayed.stdout.str())
    capsys.readouterr()
    assert main(["stats", str(suite.cassettes), "--json"]) == 0
    return rows, json.loads(capsys.readouterr().out)


def test_session_report_and_stats_agree(suite, capsys: pytest.CaptureFixture[str]):
    suite.write(INNER)
    suite.live()
    default = Reply()
    suite.server.script(
        default,  # chat
        default,  # stream
        default,  # header-less stream
        Reply.json(200, RESPONSE),
        Reply.raw(200, _sse(RESPONSE_EVENTS), headers={"content-type": "text/event-stream"}),
    )
    suite.run("--llm-record-mode=once").assert_outcomes(passed=7)

    # Public cassettes often keep no response headers: the stream must still be recognised by its content.
    headerless = suite.cassettes / "test_x" / "test_stream_headerless.yaml"
    interactions = cassette_file.load(headerless)
    for interaction in interactions:
        interaction["response"]["headers"] = {}
        interaction["response"]["body"] = {"string": cassette_file.response_body(interaction).decode()}
    cassette_file.save(headerless, interactions)

    suite.offline()
    rows, stats = report_and_stats(suite, capsys, passed=7)
    by_model = {entry["model"]: entry for entry in stats["models"]}
    assert set(rows) == {*by_model, "total"}
    for model, entry in by_model.items():
        cost = None if entry["cost"] is None else Decimal(entry["cost"])
        assert rows[model] == [str(entry["calls"]), str(entry["prompt_tokens"]), str(entry["completion_tokens"]), money_text(cost)], model
    total = stats["total"]
    assert rows["total"][:3] == [str(total["calls"]), str(total["prompt_tokens"]), str(total["completion_tokens"])]

    # The figures themselves: every call carries its usage, the Responses ones included.
    assert total["calls"] == 7
    assert by_model["gpt-4o-2024-08-06"]["calls"] == 2 and by_model["gpt-4o-2024-08-06"]["prompt_tokens"] == 165 + 158
    assert all(entry["without_usage"] == 0 for entry in by_model.values())
    streams = [entry for name, entry in by_model.items() if name.startswith("gpt-4o-mini")]
    assert sum(entry["calls"] for entry in streams) == 3  # the header-less stream counts like the others

    # list agrees too, per cassette.
    capsys.readouterr()
    assert main(["list", str(suite.cassettes), "--json"]) == 0
    listed = {entry["path"].rsplit("/", 1)[-1]: entry for entry in json.loads(capsys.readouterr().out)["cassettes"]}
    assert (listed["test_responses_stream.yaml"]["prompt_tokens"], listed["test_responses_stream.yaml"]["streamed"]) == (158, 1)
    assert listed["test_stream_headerless.yaml"]["streamed"] == 1 and listed["test_stream_headerless.yaml"]["prompt_tokens"] > 0
    assert sum(entry["prompt_tokens"] for entry in listed.values()) == total["prompt_tokens"]

    # show renders the streamed Responses call (input, answer, usage) and the header-less stream.
    capsys.readouterr()
    assert main(["show", str(suite.cassettes / "test_x" / "test_responses_stream.yaml")]) == 0
    shown = capsys.readouterr().out
    assert "[user]:\n    Capital of France?" in shown and "answer [assistant]:\n    Paris." in shown
    assert "usage: input 158, output 2, total 160" in shown
    assert main(["show", str(headerless)]) == 0
    shown = capsys.readouterr().out
    assert "streamed" in shown and "answer [assistant]:\n    echo: Capital of France?" in shown and "(not JSON)" not in shown
