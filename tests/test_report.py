"""The session report: counts, tokens and their cost, slowest / most expensive tests, --llm-strict,
unused cassettes, and the same totals under pytest-xdist. Inner sessions record from the fake
server, which is then stopped, and replay."""
from __future__ import annotations

import re
import shutil

import pytest

from pytest_llmcache.pricing import load_prices, money_text
from builders import OPENAI_CHAT_URI, interaction
from pytest_llmcache.exchange import read_exchange

# The fake server's usage for one user message "What is the capital of France?" (30 characters):
# prompt = 30 // 4 + 1 = 8 tokens; the answer "echo: What is the capital of France?" = 7 words.
PROMPT, COMPLETION = 8, 7

INNER = '''
import os, time
import openai, pytest

def ask(model, **extra):
    return openai.OpenAI().chat.completions.create(
        model=model, messages=[{"role": "user", "content": "What is the capital of France?"}], **extra)

def test_known(llm_cassette):
    ask("gpt-4")

def test_unknown(llm_cassette):
    ask("my-own-model")

def test_stream_usage(llm_cassette):
    list(ask("gpt-4o-mini", stream=True, stream_options={"include_usage": True}))

def test_stream_no_usage(llm_cassette):
    list(ask("gpt-4o-mini", stream=True))

def test_slow(llm_cassette):
    time.sleep(float(os.environ.get("SLOW_TEST_SECONDS", "0")))
    ask("gpt-4")

def test_plain():
    pass
'''


def money(model: str, prompt: int, completion: int, unknown: bool = False) -> str:
    cost = load_prices().cost(model, prompt, completion)
    assert cost is not None, f"{model} is expected in the price table"
    return money_text(cost, unknown=unknown)


def section(output: str) -> str:
    """The llmcache part of the terminal summary."""
    match = re.search(r"^-+ llmcache -+$\n(.*?)(?=^=+ )", output, re.M | re.S)
    assert match, output
    return match.group(1)


def row(text: str, *cells: object) -> bool:
    return re.search(r"^\s+" + r"\s+".join(re.escape(str(cell)) for cell in cells) + r"\s*$", text, re.M) is not None


def test_replay_summary_counts_tokens_costs_and_ranks_tests(suite):
    suite.write(INNER)
    suite.live()
    recorded = suite.run("--llm-record-mode=once")
    recorded.assert_outcomes(passed=6)
    first = section(recorded.stdout.str())
    assert "llmcache: 0 replayed, 5 recorded, 0 missing in 5 cassette(s), record mode 'once'" in first
    assert "tokens recorded (live calls made now)" in first and "tokens replayed," not in first

    suite.offline()
    suite.monkeypatch.setenv("SLOW_TEST_SECONDS", "1")
    replayed = suite.run()
    replayed.assert_outcomes(passed=6)
    report = section(replayed.stdout.str())
    assert "llmcache: 5 replayed, 0 recorded, 0 missing in 5 cassette(s), record mode 'none'" in report
    assert "tokens recorded" not in report
    as_of = load_prices().as_of
    assert f"tokens replayed, and their live cost at list prices of {as_of} (USD):" in report
    gpt4 = money("gpt-4", 2 * PROMPT, 2 * COMPLETION)
    mini = money("gpt-4o-mini", PROMPT, COMPLETION)
    assert row(report, "gpt-4", 2, 2 * PROMPT, 2 * COMPLETION, gpt4)
    assert row(report, "gpt-4o-mini", 2, PROMPT, COMPLETION, mini)  # one stream carries no usage
    assert row(report, "my-own-model", 1, PROMPT, COMPLETION, "unknown")  # never guessed
    total = load_prices().cost("gpt-4", 2 * PROMPT, 2 * COMPLETION) + load_prices().cost("gpt-4o-mini", PROMPT, COMPLETION)
    assert row(report, "total", 5, 4 * PROMPT, 4 * COMPLETION, money_text(total, unknown=True))
    assert "(1 response(s) carry no usage" in report

    slowest = report.split("slowest tests (call duration):\n")[1].split("most expensive")[0].splitlines()
    assert len(slowest) == 5 and slowest[0].endswith("s  test_x.py::test_slow")  # test_plain used no cassette
    durations = [float(line.split()[0].rstrip("s")) for line in slowest]
    assert durations == sorted(durations, reverse=True) and durations[0] >= 1
    expensive = report.split("most expensive tests (tokens replayed + recorded, at list prices):\n")[1].splitlines()
    one = money("gpt-4", PROMPT, COMPLETION)
    assert [line.split() for line in expensive[:4]] == [
        [one, str(PROMPT + COMPLETION), "tokens", "test_x.py::test_known"],
        [one, str(PROMPT + COMPLETION), "tokens", "test_x.py::test_slow"],
        [mini, str(PROMPT + COMPLETION), "tokens", "test_x.py::test_stream_usage"],
        ["unknown", str(PROMPT + COMPLETION), "tokens", "test_x.py::test_unknown"],
    ]
    assert "unused cassettes" not in report


def test_quiet_when_no_test_uses_a_cassette(suite):
    suite.write("def test_plain():\n    pass\n")
    result = suite.run()
    result.assert_outcomes(passed=1)
    assert "- llmcache -" not in result.stdout.str()
    assert not suite.cassettes.exists()


STALE_BEFORE = '''
import openai

def chat(model, text):
    openai.OpenAI().chat.completions.create(model=model, messages=[{"role": "user", "content": text}])

def test_a(llm_cassette):
    chat("gpt-4o-mini", "one")
    chat("gpt-4o-mini", "two")
    openai.OpenAI().embeddings.create(model="text-embedding-3-small", input="three")

def test_b(llm_cassette):
    chat("gpt-4o-mini", "one")
'''
STALE_AFTER = STALE_BEFORE.replace('    chat("gpt-4o-mini", "two")\n    openai.OpenAI().embeddings.create(model="text-embedding-3-small", input="three")\n', "") + '''
def test_c_fails(llm_cassette):
    assert False, "failing on its own"
'''


def test_strict_fails_a_test_that_leaves_recordings_unplayed(suite):
    suite.write(STALE_BEFORE)
    suite.live()
    suite.run("--llm-record-mode=once").assert_outcomes(passed=2)
    suite.offline()
    suite.write(STALE_AFTER)  # test_a no longer sends two of its three requests

    suite.run().assert_outcomes(passed=2, failed=1)  # not strict: stale cassettes pass
    result = suite.run("--llm-strict")
    result.assert_outcomes(passed=1, failed=2)
    output = result.stdout.str()
    expected = [
        "--llm-strict: cassette cassettes/test_x/test_a.yaml holds 2 recorded interaction(s) this test never played:",
        "    #1 POST /v1/chat/completions (model gpt-4o-mini)",
        "    #2 POST /v1/embeddings (model text-embedding-3-small)",
        "The cassette is stale: the test no longer sends these requests. Re-record it:",
        "    pytest test_x.py::test_a --llm-record-mode=rewrite",
        "or, after a run of the whole suite, remove every interaction it did not play:",
        "    llmcache prune cassettes --yes",
    ]
    assert "\n".join(expected) in output
    # test_b played everything; test_c failed on its own, so neither is called stale
    assert "test_x/test_b.yaml holds" not in output
    assert "test_x/test_c_fails.yaml holds" not in output
    assert "failing on its own" in output

    suite.pytester.makeini("[pytest]\nllm_strict = true\n")
    suite.run().assert_outcomes(passed=1, failed=2)

    suite.server.start()  # the fix the message gives
    suite.live()
    suite.run("test_x.py::test_a", "--llm-record-mode=rewrite").assert_outcomes(passed=1)
    suite.offline()
    suite.run().assert_outcomes(passed=2, failed=1)


SHARED = '''
import openai, pytest

def chat(text):
    openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

@pytest.mark.llm(cassette="shared/one")
def test_first(llm_cassette):
    chat("first")

@pytest.mark.llm(cassette="shared/one")
def test_second(llm_cassette):
    chat("second")
'''


def test_strict_judges_a_shared_cassette_on_what_all_of_its_tests_played(suite):
    suite.write(SHARED, name="test_s")
    suite.live()
    suite.run("--llm-record-mode=new_episodes").assert_outcomes(passed=2)  # each adds its request
    suite.offline()
    result = suite.run("--llm-strict")
    result.assert_outcomes(passed=2)  # each test plays one of the two: together, all of them
    assert result.ret == 0 and "--llm-strict" not in result.stdout.str()
    partial = suite.run("--llm-strict", "-k", "first")  # test_second did not run: no verdict
    assert partial.ret == 0 and "--llm-strict" not in partial.stdout.str()

    suite.write(SHARED.replace('    chat("second")', "    pass"), name="test_s")
    result = suite.run("--llm-strict")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert (
        "--llm-strict: cassette cassettes/shared/one.yaml, shared by 2 tests, holds 1 recorded interaction(s) none of them played "
        "(the session fails):\n"
        "    #1 POST /v1/chat/completions (model gpt-4o-mini)\n"
        "The cassette is stale: its tests no longer send these requests. Re-record it (all of its tests):\n"
        "    pytest test_s.py::test_first test_s.py::test_second --llm-record-mode=rewrite\n"
    ) in result.stdout.str()
    assert suite.run().ret == 0  # not strict


UNUSED = '''
import openai, pytest

def chat(text):
    openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

def test_a(llm_cassette):
    chat("a")

def test_b(llm_cassette):
    chat("b")

@pytest.mark.llm(cassette="shared/common")
def test_shared(llm_cassette):
    chat("shared")

@pytest.mark.llm(api_types=["openai", "azure"])
def test_both(llm_client):
    llm_client.send_message([{"role": "user", "content": "both"}])

def test_deselected(llm_cassette):
    chat("deselected")
'''


def test_unused_cassettes_are_listed(suite):
    suite.write(UNUSED)
    suite.write("def test_y(llm_cassette):\n    pass\n", name="test_y")
    suite.live()
    suite.run("--llm-record-mode=once").assert_outcomes(passed=7)
    suite.offline()
    (suite.cassettes / "test_x" / "test_b.yaml").rename(suite.cassettes / "test_x" / "test_renamed.yaml")
    (suite.cassettes / "test_gone").mkdir()
    shutil.copy(suite.cassettes / "test_x" / "test_a.yaml", suite.cassettes / "test_gone" / "test_z.yaml")
    (suite.cassettes / "test_x" / "test_a.yaml.bak").write_text("not a cassette")  # backups are not listed

    result = suite.run("-k", "not deselected")  # renamed test_b has no cassette now: it fails
    result.assert_outcomes(passed=5, failed=1, deselected=1)
    report = section(result.stdout.str())
    listing = report.split("unused cassettes: ")[1].splitlines()
    assert listing == [
        "2 file(s) no collected test uses:",
        "  cassettes/test_gone/test_z.yaml",
        "  cassettes/test_x/test_renamed.yaml",
    ]

    # A partial run looks only in the folders of the modules it collected in full.
    partial = section(suite.run("test_x.py", "-k", "not test_b").stdout.str())
    assert "unused cassettes: 1 file(s) no collected test uses in the folders of the test modules collected" in partial
    assert "cassettes/test_x/test_renamed.yaml" in partial and "test_gone" not in partial
    assert "unused cassettes" not in section(suite.run("test_x.py::test_a").stdout.str())


def test_a_project_cassette_path_fixture_is_taken_from_the_run(suite):
    suite.write('''
import openai, pytest

@pytest.fixture
def llm_cassette_path(llm_cassette_dir):
    return llm_cassette_dir / "custom" / "mine.yaml"

def test_custom(llm_cassette):
    openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
''')
    suite.write("def test_other(llm_cassette):\n    pass\n", name="test_y")
    suite.live()
    suite.run("--llm-record-mode=once").assert_outcomes(passed=2)
    suite.offline()
    assert "unused cassettes" not in section(suite.run().stdout.str())
    report = section(suite.run("-k", "other").stdout.str())  # its cassette is unknown until it runs
    assert "unused cassettes: 1 file(s) no collected test uses:\n  cassettes/custom/mine.yaml\n" in report
    assert "(1 test(s) with their own llm_cassette_path fixture did not run; their cassettes may be listed)" in report


def test_xdist_workers_add_up_to_the_single_process_report(suite):
    suite.write(INNER)
    suite.write(SHARED, name="test_s")
    suite.live()
    suite.run("--llm-record-mode=new_episodes").assert_outcomes(passed=8)
    suite.offline()
    (suite.cassettes / "test_x" / "test_old.yaml").write_bytes((suite.cassettes / "test_x" / "test_known.yaml").read_bytes())
    single = suite.run("--llm-strict")
    assert single.ret == 0
    single = section(single.stdout.str())
    result = suite.run("-n", "2", "--llm-strict", "-p", "no:hypothesispytest")  # workers start faster without hypothesis
    result.assert_outcomes(passed=8)
    assert result.ret == 0  # the shared cassette is judged on what both workers played
    parallel = section(result.stdout.str())

    def without_durations(text: str) -> str:
        return text.split("slowest tests")[0] + text.split("most expensive")[1]

    assert "llmcache: 7 replayed, 0 recorded, 0 missing in 6 cassette(s)" in parallel
    assert without_durations(parallel) == without_durations(single)
    assert "unused cassettes: 1 file(s) no collected test uses:\n  cassettes/test_x/test_old.yaml" in parallel
    slowest = parallel.split("slowest tests (call duration):\n")[1].split("most expensive")[0].splitlines()
    durations = [float(line.split()[0].rstrip("s")) for line in slowest]
    assert len(slowest) == 5 and durations == sorted(durations, reverse=True)


def test_help_and_markers_describe_the_options(pytester):
    help_text = " ".join(pytester.runpytest("--help").stdout.str().split())
    assert "--llm-record-mode=MODE How tests using llm_cassette / llm_client reach the API." in help_text
    for mode in ("none:", "once:", "new_episodes:", "all:", "rewrite:"):
        assert mode in help_text
    assert "--llm-cassette-dir=DIR Directory of the cassettes, relative to the current directory." in help_text
    assert "--llm-strict Fail a test whose cassette holds recorded interactions the test did not play" in help_text
    assert "llm_strict (bool):" in help_text
    markers = pytester.runpytest("--markers").stdout.str()
    assert "@pytest.mark.llm(api_type=None, api_types=None, cache=False, cassette=None, record_mode=None, ignore_fields=()): pytest-llmcache" in markers


# -- usage of one recorded interaction ---------------------------------------------------------------


def _interaction(response_body, request_body=None, uri=OPENAI_CHAT_URI, content_type="application/json"):
    return interaction(request_body or {"model": "asked"}, response_body, uri=uri, content_type=content_type)


@pytest.mark.parametrize(
    ("response_body", "extra", "expected"),
    [
        ({"json": {"model": "gpt-4o-2024-08-06", "usage": {"prompt_tokens": 3, "completion_tokens": 4}}}, {}, ("gpt-4o-2024-08-06", 3, 4)),
        ({"json": {"model": "text-embedding-3-small", "usage": {"prompt_tokens": 5, "total_tokens": 5}}}, {}, ("text-embedding-3-small", 5, 0)),
        ({"json": {"error": {"message": "bad"}}}, {}, ("asked", None, None)),
        (
            {"sse": 'data: {"model":"m1","usage":null}\n\ndata: {"model":"m1","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":9}}\n\ndata: [DONE]\n\n'},
            {"content_type": "text/event-stream"},
            ("m1", 2, 9),
        ),
        ({"sse": 'data: {"model":"m1","usage":null}\n\ndata: [DONE]\n\n'}, {"content_type": "text/event-stream"}, ("m1", None, None)),
        (
            {"sse": 'event: response.completed\ndata: {"type":"response.completed","response":{"model":"r1","usage":{"input_tokens":6,"output_tokens":1}}}\n\n'},
            {"content_type": "text/event-stream", "uri": "https://api.openai.test/v1/responses"},
            ("r1", 6, 1),
        ),
        ({"string": '{"usage": {"prompt_tokens": 1, "completion_tokens": 2}}'}, {}, ("asked", 1, 2)),
        (
            {"json": {"usage": {"prompt_tokens": 1, "completion_tokens": 1}}},
            {"request_body": {"string": ""}, "uri": "https://x.openai.azure.com/openai/deployments/my-dep/chat/completions?api-version=1"},
            ("my-dep", 1, 1),
        ),
    ],
)
def test_interaction_usage(response_body, extra, expected):
    exchange = read_exchange(_interaction(response_body, **extra))
    usage = exchange.usage
    assert (exchange.billed_model, usage and usage.input_tokens, usage and usage.output_tokens) == expected


RECORD_TWICE = '''
import openai

def chat(text):
    openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

def test_one(llm_cassette):
    chat("one")
    chat("two")
'''


@pytest.mark.parametrize("mode", ["once", "all", "rewrite", "new_episodes"])
def test_a_cassette_recorded_in_the_session_counts_as_used_so_prune_keeps_it(suite, mode):
    import json

    from pytest_llmcache.cli import main

    suite.write(RECORD_TWICE)
    suite.live()
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    suite.run(f"--llm-record-mode={mode}").assert_outcomes(passed=1)  # re-recorded or replayed, same count
    record = json.loads((suite.pytester.path / ".pytest_cache/d/llmcache/played.json").read_text())["cassettes"]
    assert list(record) == ["test_x/test_one.yaml"] and record["test_x/test_one.yaml"]["tests"] == {"test_x.py::test_one": True}
    assert len(record["test_x/test_one.yaml"]["played"]) == 2 and record["test_x/test_one.yaml"]["played"] == record["test_x/test_one.yaml"]["interactions"]
    suite.monkeypatch.chdir(suite.pytester.path)
    assert main(["prune", str(suite.cassettes), "--yes"]) == 0
    suite.offline()
    suite.run().assert_outcomes(passed=1)  # nothing was pruned away
