"""The ``llmcache`` command: every subcommand in-process on real files, plus the console entry.

Cassettes are written with the cassette module (project format) or copied from
``tests/data/realworld`` (real vcrpy / pydantic-ai files, see the NOTICE there).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from builders import AZURE_CHAT_URI as AZURE_URI
from builders import OPENAI_CHAT_URI as OPENAI_URI
from builders import chat, interaction
from pytest_llmcache import cassette as cassette_file
from pytest_llmcache.pricing import load_prices

REALWORLD = Path(__file__).parent / "data" / "realworld"
EXAMPLES = Path(__file__).parent.parent / "cassettes" / "examples"
LIVE_LOOKING_KEY = "sk-proj-Ab3dEf9hIj2kLm8nOp4qRs7tUv1wXy5z"


# -- building cassettes -----------------------------------------------------------------------


def write(path: Path, *interactions: dict[str, Any]) -> Path:
    cassette_file.save(path, interactions)
    path.with_name(path.name + ".bak").unlink(missing_ok=True)
    return path


@pytest.fixture
def corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "cassettes" / "test_broken" / "test_half.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(cassette_file.dumps([chat()])[:-40], encoding="utf-8")  # cut mid-write
    return path


# -- the command itself ------------------------------------------------------------------------


def test_console_script_help_documents_every_command_and_the_exit_codes():
    result = subprocess.run([sys.executable, "-m", "pytest_llmcache.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("list", "show", "verify", "prune", "import", "stats", "tokens"):
        assert command in result.stdout
    assert "exit codes:" in result.stdout and "  2  bad arguments" in result.stdout


def test_console_script_reports_bad_input_without_a_traceback(corrupt: Path):
    result = subprocess.run([sys.executable, "-m", "pytest_llmcache.cli", "show", str(corrupt)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "test_half.yaml" in result.stderr and "truncated" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(cli):
    with pytest.raises(SystemExit) as raised:
        cli("frobnicate")
    assert raised.value.code == 2
    code, _, err = cli("list", "no/such/dir")
    assert code == 2 and "no/such/dir: no such file or directory" in err


def test_progress_goes_to_stderr_when_asked(cli, tmp_path: Path):
    write(tmp_path / "a.yaml", chat())
    code, out, err = cli("list", tmp_path, "--progress")
    assert code == 0 and "[1/1]" in err and "[1/1]" not in out


# -- list ---------------------------------------------------------------------------------------


def test_list_one_line_per_cassette(cli, tmp_path: Path):
    write(tmp_path / "test_a" / "test_plain.yaml", chat(usage=(8, 2)), chat("Again", usage=(9, 3)))
    write(tmp_path / "test_a" / "test_azure_stream.yaml", chat(uri=AZURE_URI, model="gpt-4o", stream=True, usage=(5, 1)))
    code, out, _ = cli("list", tmp_path)
    assert code == 0
    header, plain_line, stream_line = out.splitlines()[0], *sorted(out.splitlines()[1:])[::-1]
    assert header.split() == ["cassette", "calls", "api", "models", "streamed", "prompt", "completion", "cost", "size"]
    assert plain_line.split()[1:7] == ["2", "openai", "gpt-4o-mini", "no", "17", "5"]
    assert stream_line.split()[1:7] == ["1", "azure", "gpt-4o", "yes", "5", "1"]

    code, out, _ = cli("list", tmp_path, "--json")
    listed = {Path(entry["path"]).name: entry for entry in json.loads(out)["cassettes"]}
    assert listed["test_plain.yaml"] | {"path": None, "bytes": None} == {
        "path": None,
        "interactions": 2,
        "api_types": ["openai"],
        "models": ["gpt-4o-mini"],
        "streamed": 0,
        "prompt_tokens": 17,
        "completion_tokens": 5,
        "cost": "0.00000555",
        "bytes": None,
    }
    assert listed["test_plain.yaml"]["bytes"] == (tmp_path / "test_a" / "test_plain.yaml").stat().st_size


def test_list_names_a_corrupt_cassette_and_still_lists_the_rest(cli, tmp_path: Path, corrupt: Path):
    write(corrupt.parent / "test_fine.yaml", chat())
    code, out, err = cli("list", tmp_path / "cassettes")
    assert code == 2
    assert "test_fine.yaml" in out
    assert "test_half.yaml: the file is truncated" in err


def test_list_reads_real_vcrpy_cassettes(cli):
    code, out, _ = cli("list", REALWORLD, "--json")
    listed = {Path(entry["path"]).name: entry for entry in json.loads(out)["cassettes"]}
    assert code == 0
    assert listed["mirascope-call_with_empty_string.yaml"]["prompt_tokens"] == 7  # from a gzip !!binary body
    assert listed["pydanticai-azure_provider_call.yaml"]["api_types"] == ["azure"]


# -- show ---------------------------------------------------------------------------------------


def test_show_prints_messages_answer_usage_and_status(cli, tmp_path: Path):
    path = write(
        tmp_path / "c.yaml",
        chat("What is the capital of France?", "Paris.", usage=(14, 2)),
        chat("Stream it", "Streamed words here", stream=True, usage=(9, 3)),
        chat("Nope", "The model `gpt-9` does not exist", model="gpt-9", status=404, usage=None),
    )
    code, out, _ = cli("show", path)
    assert code == 0
    first, second, third = out.split("\n\n")[1:]
    assert "#0  POST /v1/chat/completions  (openai, gpt-4o-mini -> gpt-4o-mini-2024-07-18)  status 200" in first
    assert "[user]:\n    What is the capital of France?" in first
    assert "answer [assistant]:\n    Paris." in first
    assert "usage: input 14, output 2, total 16" in first
    assert "streamed" in second and "answer [assistant]:\n    Streamed words here" in second  # deltas put together
    assert "status 404" in third and "error 404 model_not_found:\n    The model `gpt-9` does not exist" in third

    code, out, _ = cli("show", path, "--json")
    exchanges = json.loads(out)["exchanges"]
    assert [exchange["status"] for exchange in exchanges] == [200, 200, 404]
    assert exchanges[1]["answer"]["text"] == "Streamed words here" and exchanges[1]["usage"]["input_tokens"] == 9
    assert exchanges[2]["error"]["code"] == "model_not_found"


def test_show_real_azure_stream_and_embeddings(cli):
    code, out, _ = cli("show", EXAMPLES / "realworld" / "crewai-azure_streaming_completion.yaml")
    assert code == 0
    assert "(azure, gpt-4o-mini -> gpt-4o-mini-2024-07-18, streamed)" in out  # past the empty filter chunk
    assert "Hello! How can I assist you today?" in out
    code, out, _ = cli("show", EXAMPLES / "realworld" / "pydanticai-embeddings_documents.yaml")
    assert "input:\n    hello\n    world" in out and "2 vector(s) of 1536 dimensions" in out


def test_show_bad_input(cli, tmp_path: Path, corrupt: Path):
    code, out, err = cli("show", corrupt)
    assert (code, out) == (2, "")
    assert "test_half.yaml: the file is truncated" in err
    code, _, err = cli("show", tmp_path / "missing.yaml")
    assert code == 2 and "missing.yaml: no such file" in err


# -- verify -------------------------------------------------------------------------------------


def test_verify_passes_clean_cassettes(cli, tmp_path: Path):
    write(tmp_path / "ok.yaml", chat(), chat(uri=AZURE_URI))
    code, out, _ = cli("verify", tmp_path, "--no-tokens")
    assert code == 0 and out.startswith("ok: 1 cassette(s), 2 interaction(s)")


def test_verify_finds_key_like_strings_without_printing_them(cli, tmp_path: Path):
    write(tmp_path / "body.yaml", chat(f"my key is {LIVE_LOOKING_KEY}"))
    write(tmp_path / "header.yaml", chat(headers={"content-type": ["application/json"], "authorization": ["Bearer eyJhbGciOi.abcdefghijklmnop.zyx"]}))
    write(tmp_path / "host.yaml", chat(uri=AZURE_URI.replace("placeholder", "contoso-prod")))
    write(tmp_path / "azure_key.yaml", chat('config: {"subscription_key": "0c2e5b8d9a7f41e3b6d4c1a2e9f87d65"}', uri=AZURE_URI))
    write(tmp_path / "scrubbed.yaml", chat("sk-llmcache-placeholder", headers={"api-key": ["<redacted>"]}))
    code, out, _ = cli("verify", tmp_path, "--no-tokens")
    assert code == 1
    assert "body.yaml #0: secret: request body: OpenAI API key sk-pro…(40 characters)" in out
    assert "header.yaml #0: secret: request header authorization holds" in out
    assert "host.yaml #0: secret: request URI: Azure host 'contoso-prod.openai.azure.com'" in out
    assert "azure_key.yaml #0: secret: request body: API key field 0c2e5b…(32 characters)" in out
    assert "scrubbed.yaml" not in out
    assert LIVE_LOOKING_KEY not in out and "0c2e5b8d9a7f41e3b6d4c1a2e9f87d65" not in out
    assert out.splitlines()[-1].startswith("4 problem(s): 5 cassette(s)")


def test_verify_decodes_gzip_bodies_and_real_hosts(cli):
    code, out, _ = cli("verify", REALWORLD / "pydanticai-azure_provider_call.yaml", "--no-tokens", "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    assert {problem["message"].split(":")[0] for problem in report["problems"]} == {"request URI", "request header host"}
    assert all("pydanticai7521574644.openai.azure.com" in problem["message"] for problem in report["problems"])


def test_verify_reports_a_corrupt_cassette(cli, corrupt: Path):
    code, out, _ = cli("verify", corrupt.parent, "--json")
    assert code == 1
    [problem] = json.loads(out)["problems"]
    assert problem["check"] == "parse" and problem["path"].endswith("test_half.yaml") and "truncated" in problem["message"]


def test_verify_checks_prompt_tokens_against_the_library(cli, tmp_path: Path):
    from tinytroupe import tokens

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    right = tokens.count_tokens(messages, "gpt-4o-mini-2024-07-18")
    write(tmp_path / "right.yaml", chat("What is the capital of France?", usage=(right, 2)))
    write(tmp_path / "wrong.yaml", chat("What is the capital of France?", usage=(right + 3, 2)))
    code, out, _ = cli("verify", tmp_path)
    assert code == 1
    assert f"wrong.yaml #0: tokens: usage.prompt_tokens is {right + 3} (gpt-4o-mini-2024-07-18); the library counts {right} (-3)" in out
    assert "right.yaml" not in out and "2 token count(s) checked" in out
    assert cli("verify", tmp_path, "--tolerance", "3")[0] == 0
    assert cli("verify", tmp_path, "--no-tokens")[0] == 0


def test_verify_the_example_cassettes(cli):
    code, out, _ = cli("verify", EXAMPLES, "--json")
    report = json.loads(out)
    assert code == 0, report["problems"]
    assert report["checked"]["cassettes"] == 19


# -- import -------------------------------------------------------------------------------------


def test_import_a_gzip_base64_vcrpy_cassette(cli, tmp_path: Path):
    source = REALWORLD / "mirascope-call_with_empty_string.yaml"
    code, out, _ = cli("import", source, "--to", tmp_path / "out")
    assert code == 0 and out.startswith("new") and "1 interaction(s)" in out
    target = tmp_path / "out" / "mirascope-call_with_empty_string.yaml"
    text = target.read_text()
    assert "!!binary" not in text and "authorization" not in text.lower() and "cookie" not in text.lower()
    [imported] = cassette_file.load(target)
    [original] = cassette_file.load(source)
    assert imported["request"]["uri"] == "https://api.openai.test/v1/chat/completions"
    assert cassette_file.response_body(imported) == cassette_file.response_body(original)  # decompressed once, kept exact
    assert imported["response"]["body"]["json"]["choices"][0]["message"]["content"].startswith("Hello! It looks like your message")
    assert not any(name.lower() == "content-encoding" for name in imported["response"]["headers"])

    before = target.read_bytes()
    code, out, _ = cli("import", source, "--to", tmp_path / "out")
    assert code == 0 and out.startswith("unchanged")
    assert target.read_bytes() == before and not target.with_name(target.name + ".bak").exists()


def test_import_pydantic_ai_parsed_body_and_azure(cli, tmp_path: Path):
    code, out, _ = cli("import", REALWORLD / "pydanticai-azure_provider_call.yaml", REALWORLD / "pydanticai-valid_response.yaml", "--to", tmp_path, "--json")
    assert code == 0
    assert [entry["status"] for entry in json.loads(out)["imported"]] == ["new", "new"]
    [azure] = cassette_file.load(tmp_path / "pydanticai-azure_provider_call.yaml")
    assert azure["request"]["uri"] == "https://placeholder.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-12-01-preview"
    assert azure["request"]["body"]["json"]["messages"] == [{"content": "What is the capital of France?", "role": "user"}]
    assert azure["response"]["headers"]["content-length"] == [str(len(cassette_file.response_body(azure)))]
    assert "host" not in azure["request"]["headers"]
    assert cli("verify", tmp_path)[0] == 0  # the real Azure host verify found above is gone


def test_import_keeps_every_provider_and_leaves_out_other_services(cli, tmp_path: Path):
    code, out, _ = cli("import", REALWORLD / "pydanticai-multiple_agent_tool_calls.yaml", "--to", tmp_path)
    assert code == 0 and "4 interaction(s)" in out and "left out" not in out
    hosts = [item["request"]["uri"].split("/")[2] for item in cassette_file.load(tmp_path / "pydanticai-multiple_agent_tool_calls.yaml")]
    assert hosts == ["generativelanguage.googleapis.test"] * 2 + ["api.openai.test"] * 2
    source = tmp_path / "mixed.yaml"
    other = cassette_file.load(REALWORLD / "pydanticai-valid_response.yaml")[0]
    telemetry = {**other, "request": {**other["request"], "uri": "https://telemetry.example.org/v1/events"}}
    source.write_text(cassette_file.dumps([telemetry, other]))
    code, out, _ = cli("import", source, "--to", tmp_path / "out")
    assert code == 0 and "1 interaction(s)" in out and "left out 1 call(s) to telemetry.example.org" in out


def test_import_a_directory_keeps_relative_paths(cli, tmp_path: Path):
    source = tmp_path / "vcr"
    for name in ("a/one.yml", "b/one.yml"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REALWORLD / "pydanticai-valid_response.yaml", source / name)
    code, out, _ = cli("import", source, "--to", tmp_path / "out")
    assert code == 0 and "2 cassette(s) written" in out
    assert (tmp_path / "out" / "a" / "one.yaml").exists() and (tmp_path / "out" / "b" / "one.yaml").exists()
    code, _, err = cli("import", source / "a" / "one.yml", source / "b" / "one.yml", "--to", tmp_path / "flat")
    assert code == 2 and "would both be imported as" in err and not (tmp_path / "flat").exists()


def test_import_never_writes_a_credential_it_saw(cli, tmp_path: Path):
    source = tmp_path / "leaky.yaml"
    source.write_text(
        textwrap.dedent(
            f"""\
            interactions:
            - request:
                method: POST
                uri: https://api.openai.com/v1/chat/completions
                headers:
                  Authorization: [Bearer {LIVE_LOOKING_KEY}]
                body: '{{"model":"gpt-4o","messages":[{{"role":"user","content":"key {LIVE_LOOKING_KEY}"}}]}}'
              response:
                status: {{code: 200, message: OK}}
                headers: {{}}
                body: {{string: '{{}}'}}
            """
        )
    )
    code, out, err = cli("import", source, "--to", tmp_path / "out")
    written = "".join(path.read_text() for path in (tmp_path / "out").rglob("*") if path.is_file())
    assert LIVE_LOOKING_KEY not in out + err + written
    # The scrubber masks what it learned wherever it finds it; what it can't mask, the write refuses.
    assert (code, "<redacted>" in written) == (0, True) or (code, written) == (1, "")


def test_import_reports_a_refused_write(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from pytest_llmcache._commands import importing
    from pytest_llmcache.errors import SecretLeakError

    def refuse(source: Path, destination: Path, scrubber: Any) -> None:
        raise SecretLeakError(destination, ["the value of $OPENAI_API_KEY on line(s) 12"])

    monkeypatch.setattr(importing, "import_cassette", refuse)
    code, out, err = cli("import", REALWORLD / "pydanticai-valid_response.yaml", "--to", tmp_path)
    assert code == 1
    assert "refusing to write cassette" in err and "$OPENAI_API_KEY on line(s) 12" in err
    assert "0 cassette(s) written, 0 unchanged, 1 failed" in out


def test_import_a_corrupt_source(cli, tmp_path: Path, corrupt: Path):
    code, out, err = cli("import", corrupt, REALWORLD / "pydanticai-valid_response.yaml", "--to", tmp_path / "out")
    assert code == 2
    assert "test_half.yaml: the file is truncated" in err
    assert "1 cassette(s) written, 0 unchanged, 1 failed" in out


# -- stats --------------------------------------------------------------------------------------


def test_stats_totals_and_list_prices(cli, tmp_path: Path):
    write(tmp_path / "a.yaml", chat(usage=(1000, 500)), chat(usage=(2000, 0)))
    write(tmp_path / "b.yaml", chat(model="my-finetune", usage=(10, 10)), chat(status=404, usage=None))
    code, out, _ = cli("stats", tmp_path, "--json")
    report = json.loads(out)
    assert code == 0
    models = {entry["model"]: entry for entry in report["models"]}
    mini = models["gpt-4o-mini-2024-07-18"]
    assert (mini["calls"], mini["prompt_tokens"], mini["completion_tokens"], mini["priced_as"]) == (2, 3000, 500, "gpt-4o-mini")
    assert mini["cost"] == "0.00075"  # (3000 * 0.15 + 500 * 0.60) / 1M, an exact decimal string
    assert models["my-finetune-2024-07-18"]["cost"] is None  # unknown: no price, never a guess
    assert models["gpt-4o-mini"] == {**models["gpt-4o-mini"], "calls": 1, "without_usage": 1, "prompt_tokens": 0}
    assert report["total"]["calls"] == 4 and report["total"]["unpriced_models"] == ["my-finetune-2024-07-18"]
    assert report["prices_as_of"] == load_prices().as_of

    code, out, _ = cli("stats", tmp_path)
    assert "my-finetune-2024-07-18" in out and out.splitlines()[-1].startswith("list prices of ")
    row = next(line for line in out.splitlines() if line.startswith("my-finetune"))
    assert row.split()[-1] == "unknown"
    assert next(line for line in out.splitlines() if line.startswith("gpt-4o-mini-2024")).split()[-1] == "$0.00075"
    assert out.splitlines()[-2].split()[-3:] == ["$0.00075", "+", "unknown"]


def test_price_table_prices_exact_names_and_listed_snapshots_only():
    prices = load_prices()
    assert prices.price("gpt-4o-2024-08-06") == prices.price("gpt-4o")
    assert prices.price("gpt-4o-2024-05-13") is None  # a different price; not in the table
    assert prices.price("gpt-4o-mini").cost(1_000_000, 1_000_000) == Decimal("0.75")
    assert prices.price(None) is None and prices.as_of


# -- tokens ---------------------------------------------------------------------------------------


def test_tokens_runs_the_token_report(cli):
    code, out, _ = cli("tokens", REALWORLD / "pydanticai-valid_response.yaml", "--json")
    assert code == 0 and json.loads(out)


# -- odd but well-formed cassettes ---------------------------------------------------------------


ODD_BODIES = [
    ({"json": [1, 2], "layout": "compact"}, {"json": {"choices": "none", "usage": "n/a", "model": 7}, "layout": "compact"}),
    ({"json": {"messages": "hi", "tools": ["x", {"function": "f"}]}, "layout": "compact"}, {"sse": "data: {oops\n\ndata: [1]\n\n"}),
    (
        {"json": {"messages": [{"role": "assistant", "tool_calls": ["x", {"function": None}]}, "text"]}, "layout": "compact"},
        {"json": {"choices": [{"message": {"tool_calls": [None, {"function": {"arguments": 3}}]}}], "data": [{"embedding": "%%"}]}, "layout": "compact"},
    ),
    ({"base64": "AAEC/w=="}, {"string": "not json at all"}),
]


@pytest.mark.parametrize("command", ["list", "show", "verify", "stats"])
def test_commands_survive_odd_bodies(cli, tmp_path: Path, command: str):
    path = write(
        tmp_path / "odd.yaml",
        *(interaction(request, response, uri=OPENAI_URI) for request, response in ODD_BODIES),
    )
    code, out, err = cli(command, path)
    assert code == 0 and out and not err
