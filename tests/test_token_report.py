"""The ``tokens`` report command on recorded exchanges and on cassettes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import yaml

from builders import completion, vcrpy_interaction
from pytest_llmcache.cli import main
from tinytroupe import tokens

DATA = Path(__file__).parent / "data" / "realworld_exchanges.jsonl"
CHAT_URI = "https://api.openai.com/v1/chat/completions"


def _run(paths: list[str], *flags: str) -> int:
    return main(["tokens", *paths, *flags])


def test_report_on_recorded_exchanges(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run([str(DATA)]) == 0
    out = capsys.readouterr().out
    total = next(line for line in out.splitlines() if line.startswith("TOTAL"))
    count, exact, off_one, off_more = map(int, total.split()[1:5])
    assert count == 102 and exact + off_one + off_more == count
    assert exact / count >= 0.95
    assert "gpt-4o-mini-2024-07-18" in out and "text-embedding-3-small" in out
    assert "skipped: image/audio/file parts: 2" in out


def test_json_report_on_recorded_exchanges(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run([str(DATA)], "--json") == 0
    report = json.loads(capsys.readouterr().out)
    mini = report["models"]["gpt-4o-mini-2024-07-18"]
    assert mini["count"] == 32 and mini["exact"] == 32 and mini["exact_pct"] == 100.0
    assert report["total"]["count"] == 102
    for stats in report["models"].values():
        for case in stats["worst"]:
            assert case["location"].startswith(str(DATA) + ":")
            assert case["diff"] == case["counted"] - case["billed"] != 0
    assert report["fallback_models"] == []


def _chat(messages: list[dict], model: str = "gpt-4o-mini") -> dict:
    return {"model": model, "messages": messages}


def test_report_on_cassettes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hello = [{"role": "user", "content": "Say hello"}]
    plain = tokens.count_tokens(hello, "gpt-4o-mini-2024-07-18")
    system = [{"role": "system", "content": "Be brief."}, *hello]
    with_system = tokens.count_tokens(system, "gpt-4o-2024-08-06")
    stream = "".join(
        f"data: {json.dumps(event)}\n\n"
        for event in [
            {"choices": [], "prompt_filter_results": []},  # Azure's opening chunk names no model
            {"model": "gpt-4o-2024-11-20", "choices": [{"delta": {"content": "hi"}}]},
            {"model": "gpt-4o-2024-11-20", "choices": [], "usage": {"prompt_tokens": plain, "completion_tokens": 1}},
        ]
    ) + "data: [DONE]\n\n"
    interactions = [
        vcrpy_interaction(CHAT_URI, _chat(hello), completion("gpt-4o-mini-2024-07-18", plain)),
        vcrpy_interaction(CHAT_URI, _chat(system, "gpt-4o"), completion("gpt-4o-2024-08-06", with_system + 5)),
        vcrpy_interaction(
            "https://example.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
            {"messages": hello, "stream": True},
            stream,
        ),
        vcrpy_interaction(
            CHAT_URI,
            _chat(hello),
            gzip.compress(json.dumps(completion("gpt-4o-mini-2024-07-18", plain)).encode()),
        ),
        vcrpy_interaction(
            "https://api.openai.com/v1/embeddings",
            {"model": "text-embedding-3-small", "input": ["hello", "world"]},
            {"object": "list", "model": "text-embedding-3-small", "usage": {"prompt_tokens": 2, "total_tokens": 2}},
            parsed=True,
        ),
        vcrpy_interaction(CHAT_URI, _chat(hello), {"error": {"message": "Incorrect API key provided"}}, status=401),
        vcrpy_interaction("https://api.openai.com/v1/models", {}, {"data": []}),
    ]
    cassette = tmp_path / "cassettes" / "test_chat.yaml"
    cassette.parent.mkdir()
    cassette.write_text(yaml.safe_dump({"interactions": interactions, "version": 1}), encoding="utf-8")
    assert "!!binary" in cassette.read_text(encoding="utf-8")

    assert _run([str(tmp_path / "cassettes")]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split()[1:5] for line in out.splitlines() if line and not line.startswith(" ")}
    assert lines["gpt-4o-mini-2024-07-18"] == ["2", "2", "0", "0"]  # JSON and gzip bodies
    assert lines["gpt-4o-2024-11-20"] == ["1", "1", "0", "0"]  # Azure stream, model from the SSE chunks
    assert lines["gpt-4o-2024-08-06"] == ["1", "0", "0", "1"]
    assert lines["text-embedding-3-small"] == ["1", "1", "0", "0"]
    assert f"{cassette}#1  gpt-4o-2024-08-06: counted {with_system}, billed {with_system + 5} (-5)" in out
    assert "error response: 1" in out and "other endpoint: 1" in out


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run([str(tmp_path / "missing.yaml")]) == 2
    empty = tmp_path / "empty.yaml"
    empty.write_text("interactions: []\n", encoding="utf-8")
    assert _run([str(empty)]) == 1
    capsys.readouterr()
    assert _run([str(DATA), "--json", "--progress"]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["count"] == 102
