"""Inputs aimed at this session's speed work: the scrubber's session-wide caches (6ed6055), vcrpy
imported by the session's first cassette user (3e79f9e) and the billing of a large replayed body
by its indented members (c992087). Each test records from the loopback server through the real SDK
and vcrpy, then replays with the server stopped; each pins a promise that held under the attack."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import AZURE_KEY, OPENAI_KEY, InnerSuite
from fakeopenai import Reply
from test_report_stats_agree import report_and_stats

# -- c992087: a large pretty-printed response is billed as parsing it whole gives ------------------

_ANSWER = "Paris, capitale de la France — 巴黎 — \u00e9t\u00e9. " * 300  # ~15 kB: past the 8 kB shortcut


def _chat_body(model: str, prompt: int, completion: int, ascii_only: bool) -> bytes:
    document = {
        "id": "chatcmpl-big",
        "object": "chat.completion",
        "created": 1700000000,
        # Look-alike members: nested "model" and "usage" before the top-level ones.
        "choices": [{"index": 0, "message": {"role": "assistant", "content": _ANSWER, "usage": {"prompt_tokens": 999}}, "finish_reason": "stop", "model": "nested"}],
        "model": model,
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        "system_fingerprint": "fp_1",
    }
    return json.dumps(document, indent=2, ensure_ascii=ascii_only).encode()


def _embeddings_body(model: str, prompt: int) -> bytes:
    data = [{"object": "embedding", "index": index, "embedding": [0.000123 * (index + 1)] * 1500} for index in range(2)]
    return json.dumps({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": prompt, "total_tokens": prompt}}, indent=4).encode()


BIG_INNER = '''
import openai

def chat(client, model):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Capital of France?"}])

def test_chat_utf8(llm_cassette):
    assert chat(openai.OpenAI(), "gpt-4o-mini").choices[0].message.content.startswith("Paris")

def test_chat_ascii(llm_cassette):
    assert chat(openai.OpenAI(), "gpt-4o-mini").choices[0].message.content.startswith("Paris")

def test_embeddings(llm_cassette):
    assert len(openai.OpenAI().embeddings.create(model="text-embedding-3-small", input=["one", "two"]).data) == 2

def test_azure(llm_cassette):
    assert chat(openai.AzureOpenAI(api_version="2024-10-21"), "prod-4o-mini").choices[0].message.content.startswith("Paris")
'''

_JSON = {"content-type": "application/json"}
BIG_EXPECTED = {  # model -> (calls, prompt, completion), as parsing each response whole gives
    "gpt-big-utf8": (1, 1234, 56),
    "gpt-big-ascii": (1, 2345, 67),
    "text-embedding-big": (1, 3456, 0),
    "gpt-big-azure": (1, 4567, 78),
}


def test_large_indented_responses_bill_alike_in_the_report_and_stats(suite: InnerSuite, capsys: pytest.CaptureFixture[str]) -> None:
    """Chat (UTF-8 and ASCII-escaped), embeddings (indent=4) and Azure chat responses over 8 kB,
    pretty-printed, with look-alike nested members: the replaying session's report reads their
    model and usage from the indented text; its rows must equal `llmcache stats` and the figures
    each whole response holds, also once a cassette is edited by hand."""
    suite.write(BIG_INNER)
    suite.live()
    suite.server.script(
        Reply.raw(200, _chat_body("gpt-big-utf8", 1234, 56, ascii_only=False), _JSON),
        Reply.raw(200, _chat_body("gpt-big-ascii", 2345, 67, ascii_only=True), _JSON),
        Reply.raw(200, _embeddings_body("text-embedding-big", 3456), _JSON),
        Reply.raw(200, _chat_body("gpt-big-azure", 4567, 78, ascii_only=False), _JSON),
    )
    suite.run("--llm-record-mode=once").assert_outcomes(passed=4)
    stored = suite.files_text()
    assert OPENAI_KEY not in stored and AZURE_KEY not in stored
    assert '\n          "model": "gpt-big-utf8",' in (suite.cassettes / "test_x" / "test_chat_utf8.yaml").read_text()  # kept verbatim

    suite.offline()
    rows, document = report_and_stats(suite, capsys, passed=4)
    stats = {entry["model"]: entry for entry in document["models"]}
    assert {model: (entry["calls"], entry["prompt_tokens"], entry["completion_tokens"]) for model, entry in stats.items()} == BIG_EXPECTED
    for model, (calls, prompt, completion) in BIG_EXPECTED.items():
        assert rows[model][:3] == [str(calls), str(prompt), str(completion)], model

    # Edited by hand (its digest no longer matches): read whole, by the report as by stats.
    edited = suite.cassettes / "test_x" / "test_chat_utf8.yaml"
    text = edited.read_text()
    assert text.count('"prompt_tokens": 1234,') == 1
    edited.write_text(text.replace('"prompt_tokens": 1234,', '"prompt_tokens": 1000,').replace('"model": "gpt-big-utf8"', '"model": "gpt-big-edited"'))
    rows, document = report_and_stats(suite, capsys, passed=4)
    stats = {entry["model"]: entry for entry in document["models"]}
    assert (stats["gpt-big-edited"]["prompt_tokens"], stats["gpt-big-edited"]["completion_tokens"]) == (1000, 56) and "gpt-big-utf8" not in stats
    assert rows["gpt-big-edited"][:3] == ["1", "1000", "56"] and "gpt-big-utf8" not in rows


# -- 3e79f9e: the session's rules between tests and at exit start with its first cassette ----------

BY_NAME_TESTS = '''
import os
from conftest import _upload

def test_a_takes_its_cassette_by_name(request):
    request.getfixturevalue("llm_cassette")  # not a collected cassette user: vcrpy comes with it

def test_b_uploads_with_no_cassette_active():
    status = _upload("between tests")
    with open(os.environ["STATUS_FILE"], "a") as handle:
        handle.write(f"{status}\\n")

def test_c_deselected(llm_cassette):
    pass
'''


def test_a_replaying_session_whose_only_cassette_is_asked_for_by_name_refuses_ignored_uploads_after_it(suite: InnerSuite, tmp_path) -> None:
    """No collected test that runs uses llm_cassette (one asks for it by name, the user is
    deselected with -k), so the session holds nothing until that first cassette; from then on a
    replaying session refuses what its rules ignore, between tests and at exit (the subprocess is
    the process's outermost session): nothing reaches the server."""
    from test_ignore import OUTSIDE_CONFTEST

    suite.pytester.makeini("[pytest]\nllm_ignore = POST 127.0.0.1/telemetry\n")
    suite.pytester.makepyfile(conftest=OUTSIDE_CONFTEST, test_by_name=BY_NAME_TESTS)
    status_file = tmp_path / "status.txt"
    suite.monkeypatch.setenv("TELEMETRY_URL", f"{suite.server.url}/telemetry")
    suite.monkeypatch.setenv("STATUS_FILE", str(status_file))
    result = suite.run("--llm-record-mode=none", "-k", "not test_c", subprocess=True)
    result.assert_outcomes(passed=2, deselected=1)
    assert status_file.read_text() == "403\n"
    assert [request.body for request in suite.server.requests if request.path == "/telemetry"] == []


# -- 6ed6055: scrubbers of one process share what they read, never what they learned ------------------

GATEWAY_PASS = "gw-pass-0123456789abcdef"
TICKET = "ticket-0123456789abcdef"
MID_TEST_KEY = "sk-live-set-mid-test-0123456789abcdef"


def _ask(base_url: str, api_key: str, content: str, **options) -> str:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, **options)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": content}])
    return answer.choices[0].message.content or ""


def test_scrubbers_of_one_process_each_mask_what_they_learned(tmp_path, server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four cassettes in a row, as four tests: (a) a project scrubber with an extra header and query
    parameter; (b) the default one, sent the same names, which are not credentials to it; (c) a key
    put in the environment mid-test, echoed by the answer; (d) learned keys taken back with
    ``secrets.clear()`` and sent again. The session-wide caches (what a set of header names holds,
    what a header value holds, the masks of a set of values) must give each exactly its own masks."""
    from pytest_llmcache.recorder import LLMCassette
    from pytest_llmcache.scrubbing import Scrubber

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    extras = {"default_headers": {"x-gateway-pass": GATEWAY_PASS}, "default_query": {"ticket": TICKET}}
    paths = {name: tmp_path / f"{name}.yaml" for name in "abcd"}

    with LLMCassette.use(path=paths["a"], record_mode="once", scrubber=Scrubber(extra_headers=["X-Gateway-Pass"], extra_query_params=["ticket"])) as a:
        assert _ask(server.base_url, OPENAI_KEY, f"say {GATEWAY_PASS}", **extras) == f"echo: say {GATEWAY_PASS}"
    a.save()
    with LLMCassette.use(path=paths["b"], record_mode="once", scrubber=Scrubber()) as b:
        _ask(server.base_url, OPENAI_KEY, "hello", **extras)
    b.save()
    scrubber_c = Scrubber()
    with LLMCassette.use(path=paths["c"], record_mode="once", scrubber=scrubber_c) as c:
        monkeypatch.setenv("OPENAI_API_KEY", MID_TEST_KEY)
        _ask(server.base_url, OPENAI_KEY, f"repeat {MID_TEST_KEY}")
    c.save()
    monkeypatch.delenv("OPENAI_API_KEY")
    scrubber_d = Scrubber()
    with LLMCassette.use(path=paths["d"], record_mode="once", scrubber=scrubber_d) as d:
        _ask(server.base_url, OPENAI_KEY, "first")
        assert OPENAI_KEY in scrubber_d.secrets
        scrubber_d.secrets.clear()
        _ask(server.base_url, OPENAI_KEY, f"second {OPENAI_KEY}")
        assert OPENAI_KEY in scrubber_d.secrets  # learned again from the same Authorization header
    d.save()

    text = {name: path.read_text() for name, path in paths.items()}
    assert all(OPENAI_KEY not in each for each in text.values())
    assert GATEWAY_PASS not in text["a"] and TICKET not in text["a"] and "<redacted>" in text["a"]
    assert GATEWAY_PASS in text["b"] and TICKET in text["b"]  # not credentials to the default scrubber
    assert MID_TEST_KEY not in text["c"] and "repeat <redacted>" in text["c"]
    assert "second <redacted>" in text["d"]
    assert MID_TEST_KEY not in repr(scrubber_c) and OPENAI_KEY not in repr(scrubber_d)

    server.stop()  # each replays offline with another key in its place (a: with the project's scrubber)
    for name, content in (("a", "say <redacted>"), ("c", "repeat <redacted>")):
        scrubber = Scrubber(extra_headers=["x-gateway-pass"], extra_query_params=["ticket"]) if name == "a" else Scrubber()
        with LLMCassette.use(path=paths[name], record_mode="none", scrubber=scrubber) as replaying:
            assert _ask(server.base_url, "sk-replay-placeholder-0000", content, **(extras if name == "a" else {})) == f"echo: {content}"
        assert replaying.played == [0] and not replaying.misses


NESTED_OUTER = '''
import os, sys

pytest_plugins = ["pytester"]

INNER = """
import openai

def ask():
    client = openai.OpenAI(max_retries=0)
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]).choices[0].message.content

def test_collected(llm_cassette):
    assert ask() == "echo: hi"

def test_by_name(request):
    request.getfixturevalue("llm_cassette")
    assert ask() == "echo: hi"
"""

def test_inline_sessions_one_after_another(pytester, monkeypatch):
    sys.path.insert(0, os.environ["FAKE_DIR"])
    from fakeopenai import FakeOpenAIServer

    assert "pytest_llmcache.stacks" not in sys.modules  # this session uses no cassette itself
    pytester.makepyfile(test_inner=INNER)
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-live-nested-0123456789abcdef")
        pytester.inline_run("-p", "no:cacheprovider", "--llm-record-mode=once").assertoutcome(passed=2)
    monkeypatch.delenv("OPENAI_API_KEY")
    # pytester dropped the modules the first session imported (vcrpy, the stacks, the SDK): each
    # later session imports them again, and must patch the copies its own client uses.
    pytester.inline_run("-p", "no:cacheprovider").assertoutcome(passed=2)
    pytester.inline_run("-p", "no:cacheprovider", "-k", "by_name").assertoutcome(passed=1)
'''


def test_inline_sessions_after_the_first_replay_through_the_modules_they_import(suite: InnerSuite) -> None:
    """An outer session that uses no cassette runs inline pytester sessions one after another
    (a plugin's own test suite does): pytester drops what each imported, vcrpy, the stacks module,
    the SDK and httpx with them, so the next session imports fresh copies. Its patches must go on
    the stacks its client uses, whether its first cassette user was collected or asked for by
    name. Before the fix, the second session took the dropped stacks module (still an attribute of
    the package), patched the first session's httpx classes, and its replay reached the network
    (refused by the guard: the test failed)."""
    suite.pytester.makepyfile(test_outer=NESTED_OUTER)
    suite.monkeypatch.setenv("FAKE_DIR", str(Path(__file__).parent))
    result = suite.run("-p", "pytester", subprocess=True)
    result.assert_outcomes(passed=1)


PLAIN_VCR_TESTS = '''
import os
import httpx
import openai
import requests
import vcr

def plain(name, send):
    with vcr.use_cassette(os.path.join(os.environ["VCR_DIR"], name), record_mode=os.environ["VCR_MODE"]) as cassette:
        status = send(os.environ["OPENAI_BASE_URL"] + "/models")
    return status, cassette.play_count

def test_a_vcr_with_httpx(out):
    out(plain("httpx.yaml", lambda url: httpx.get(url, headers={"authorization": "Bearer sk-plain-vcr-0000000000"}).status_code))

def test_b_llm(llm_cassette):
    answer = openai.OpenAI(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "echo: hi"

def test_c_vcr_with_requests(out):
    out(plain("requests.yaml", lambda url: requests.get(url, headers={"authorization": "Bearer sk-plain-vcr-0000000000"}).status_code))
'''


def test_a_project_using_vcrpy_itself_around_cassette_tests_replays_offline(suite: InnerSuite, tmp_path: Path) -> None:
    """vcrpy is now imported by the session's first cassette user, after the test modules: a
    project's own ``vcr.use_cassette`` tests (httpx before, requests after an llm_cassette test)
    record and replay their own cassettes, and the plugin's test replays offline between them."""
    pytest.importorskip("requests")
    suite.write(PLAIN_VCR_TESTS)
    suite.monkeypatch.setenv("VCR_DIR", str(tmp_path / "plain"))
    suite.live()
    suite.monkeypatch.setenv("VCR_MODE", "once")
    suite.run("--llm-record-mode=once", subprocess=True).assert_outcomes(passed=3)
    live = suite.read_outputs()
    hits = suite.server.hits
    assert sorted(path.name for path in (tmp_path / "plain").iterdir()) == ["httpx.yaml", "requests.yaml"]

    suite.offline()
    suite.monkeypatch.setenv("OPENAI_BASE_URL", suite.server.base_url)  # the address the plain cassettes hold
    suite.monkeypatch.setenv("VCR_MODE", "none")
    suite.run(subprocess=True).assert_outcomes(passed=3)
    replayed = suite.read_outputs()
    assert [value[0] for value in replayed.values()] == [value[0] for value in live.values()]
    assert all(value[1] == 1 for value in replayed.values())  # each answered by its own vcr cassette
    assert suite.server.hits == hits


IMPORT_TIME_PATCH_TESTS = '''
import os
import httpx

SENT = []
_real = httpx.HTTPTransport.handle_request

def _counting(self, request):  # a project's own wrapper, put in place when the module is imported
    SENT.append(str(request.url))
    return _real(self, request)

httpx.HTTPTransport.handle_request = _counting

def test_chat_through_a_wrapped_transport(llm_cassette, out):
    with httpx.Client() as client:
        response = client.post(os.environ["OPENAI_BASE_URL"] + "/chat/completions", headers={"authorization": "Bearer " + os.environ.get("OPENAI_API_KEY", "sk-replay")},
                               json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    out([response.json()["choices"][0]["message"]["content"], len(SENT), len(llm_cassette.recorded), list(llm_cassette.played)])
'''


def test_a_transport_wrapped_at_import_time_records_through_the_wrapper_and_replays_offline(suite: InnerSuite) -> None:
    """The stacks are now taken after the test modules are imported: a wrapper a module put on
    httpx's transport at import is the send recording goes through (it sees the live request),
    and replay answers from the cassette without reaching it or the stopped server."""
    suite.write(IMPORT_TIME_PATCH_TESTS)
    suite.live()
    suite.run("--llm-record-mode=once", subprocess=True).assert_outcomes(passed=1)
    assert next(iter(suite.read_outputs().values())) == ["echo: hi", 1, 1, []]
    assert OPENAI_KEY not in suite.files_text()
    hits = suite.server.hits

    suite.offline()
    suite.monkeypatch.setenv("OPENAI_BASE_URL", suite.server.base_url)
    suite.run(subprocess=True).assert_outcomes(passed=1)
    assert next(iter(suite.read_outputs().values())) == ["echo: hi", 0, 0, [0]]
    assert suite.server.hits == hits
