"""Volatile request fields: prompt_cache_key always, JSON paths per test (marker) or suite (fixture,
ini), and a normaliser function; recordings keyed again when the test's normalisation differs."""
from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import OPENAI_KEY
from fakeopenai import FakeOpenAIServer
from pytest_llmcache import cassette as cassette_file
from pytest_llmcache.errors import MissingRecording
from pytest_llmcache.matching import FieldPath, Normalizer, request_key
from pytest_llmcache.recorder import LLMCassette

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Capital of France?"}]}
URL = "https://api.openai.test/v1/chat/completions"


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("prompt_cache_key", ("prompt_cache_key",)),
        ("metadata.request_id", ("metadata", "request_id")),
        ("messages[*].content", ("messages", "*", "content")),
        ("input[0]", ("input", 0)),
        ("a[1][*].b-c", ("a", 1, "*", "b-c")),
    ],
)
def test_field_paths_parse(text: str, parts: tuple[object, ...]) -> None:
    assert FieldPath.parse(text).parts == parts


@pytest.mark.parametrize("text", ["", ".a", "a.", "a..b", "a[", "a[x]", "a]b", "[*]x", "a b"])
def test_a_malformed_path_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="is not a field path") as caught:
        FieldPath.parse(text)
    assert repr(text) in str(caught.value)


def test_paths_remove_what_they_name_and_nothing_else() -> None:
    body = {"messages": [{"role": "user", "content": "a", "name": "x"}, {"role": "user", "content": "b"}], "metadata": {"request_id": "1", "k": 2}}
    assert FieldPath.parse("messages[*].content").without(body)["messages"] == [{"role": "user", "name": "x"}, {"role": "user"}]
    assert FieldPath.parse("metadata.request_id").without(body)["metadata"] == {"k": 2}
    assert FieldPath.parse("messages[0]").without(body)["messages"] == [{"role": "user", "content": "b"}]
    assert FieldPath.parse("messages[-1].name").without(body) == body  # nothing there: unchanged
    assert FieldPath.parse("absent.field").without(body) == body


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abc"), children, max_size=3),
    max_leaves=12,
)
_PATHS = st.lists(st.sampled_from(["a", "b", "c", "*"]), min_size=1, max_size=4).map(lambda parts: FieldPath.parse(".".join(p if p != "*" else "c" for p in parts).replace(".c.", ".c[*].")))


@given(_JSON, _PATHS)
def test_removing_a_path_never_mutates_the_body_and_leaves_nothing_it_names(body: Any, path: FieldPath) -> None:
    before = copy.deepcopy(body)
    result = path.without(body)
    assert body == before
    assert path.values(result) == []


@given(st.text(max_size=30))
def test_any_text_is_a_path_or_a_value_error(text: str) -> None:
    try:
        path = FieldPath.parse(text)
    except ValueError:
        return
    assert path.parts and path.text == text


def test_prompt_cache_key_never_decides_a_match() -> None:
    keys = {request_key("POST", URL, json.dumps({**CHAT, "prompt_cache_key": uuid.uuid4().hex}).encode()) for _ in range(3)}
    assert keys == {request_key("POST", URL, json.dumps(CHAT).encode())}
    assert request_key("POST", URL, json.dumps({**CHAT, "model": "gpt-4.1"}).encode()) not in keys


def test_a_normaliser_gets_a_copy_and_its_result_is_matched() -> None:
    seen: list[Any] = []

    def normalise(body: Any) -> Any:
        seen.append(body)
        body["messages"][0]["content"] = body["messages"][0]["content"].split(" on ")[0]
        return body

    normalize = Normalizer((FieldPath.parse("metadata"),), normalise)
    monday = {**CHAT, "messages": [{"role": "user", "content": "Plan on 2026-12-01"}], "metadata": {"run": 1}}
    tuesday = {**CHAT, "messages": [{"role": "user", "content": "Plan on 2026-12-02"}], "metadata": {"run": 2}}
    assert request_key("POST", URL, document=monday, normalize=normalize) == request_key("POST", URL, document=tuesday, normalize=normalize)
    assert monday["messages"][0]["content"] == "Plan on 2026-12-01" and "metadata" in monday  # the caller's body is untouched
    assert request_key("POST", URL, document=monday) != request_key("POST", URL, document=tuesday)


def _send(url: str, body: dict[str, Any]) -> httpx2.Response:
    return httpx2.post(url, json=body, headers={"Authorization": f"Bearer {OPENAI_KEY}"})


def test_a_recording_with_another_prompt_cache_key_replays(tmp_path: Path, server: FakeOpenAIServer) -> None:
    path, url = tmp_path / "c.yaml", server.base_url + "/chat/completions"
    with LLMCassette.use(path=path, record_mode="once") as recording:
        live = _send(url, {**CHAT, "prompt_cache_key": uuid.uuid4().hex}).content
    recording.save()
    server.stop()
    with LLMCassette.use(path=path, record_mode="none") as replaying:
        assert _send(url, {**CHAT, "prompt_cache_key": uuid.uuid4().hex}).content == live
    assert replaying.played == [0]


def _index_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("# llmcache-key "))


def test_old_index_keys_are_trusted_unless_the_request_names_a_volatile_field(tmp_path: Path, server: FakeOpenAIServer) -> None:
    """k1 keys (before prompt_cache_key was ignored) are kept where they can't differ, so old
    cassettes open without parsing; where the field appears the request is keyed again."""
    url = server.base_url + "/chat/completions"
    bodies = {"plain": CHAT, "volatile": {**CHAT, "prompt_cache_key": "run-1"}}
    for name, body in bodies.items():
        with LLMCassette.use(path=tmp_path / f"{name}.yaml", record_mode="once") as recording:
            _send(url, body)
        recording.save()
        text = (tmp_path / f"{name}.yaml").read_text()
        line = _index_line(text)
        scheme, key = line.split()[2:4]
        assert scheme == "k2"
        # What an old file looks like if its key is stale: the loader must not need it.
        (tmp_path / f"{name}.yaml").write_text(text.replace(line, line.replace(f"k2 {key}", "k1 " + "0" * 32)))
    server.stop()
    with LLMCassette.use(path=tmp_path / "volatile.yaml", record_mode="none") as replaying:
        assert _send(url, {**CHAT, "prompt_cache_key": "run-2"}).status_code == 200
    assert replaying.played == [0]
    with LLMCassette.use(path=tmp_path / "plain.yaml", record_mode="none"), pytest.raises(MissingRecording):
        _send(url, CHAT)  # the (deliberately wrong) k1 key was trusted: nothing parsed


def test_with_a_normaliser_recordings_are_keyed_again_from_their_requests_only(tmp_path: Path, server: FakeOpenAIServer) -> None:
    path, url = tmp_path / "c.yaml", server.base_url + "/chat/completions"
    with LLMCassette.use(path=path, record_mode="once") as recording:  # recorded with no normalisation
        live = [_send(url, {**CHAT, "metadata": {"request_id": str(n)}}).content for n in range(3)]
    recording.save()
    server.stop()
    normalize = Normalizer((FieldPath.parse("metadata.request_id"),))
    with LLMCassette.use(path=path, record_mode="none", normalize=normalize) as replaying:
        assert [_send(url, {**CHAT, "metadata": {"request_id": f"new-{n}"}}).content for n in range(3)] == live
        assert all(entry._interaction is None for entry in replaying.loaded)  # responses read, requests parsed alone
    assert replaying.played == [0, 1, 2]


def test_all_mode_replaces_a_recording_whose_ignored_field_differs(tmp_path: Path, server: FakeOpenAIServer) -> None:
    path, url = tmp_path / "c.yaml", server.base_url + "/chat/completions"
    normalize = Normalizer((FieldPath.parse("metadata.request_id"),))
    for run in ("1", "2"):
        with LLMCassette.use(path=path, record_mode="all", normalize=normalize) as recording:
            _send(url, {**CHAT, "metadata": {"request_id": run}})
        recording.save()
    stored = cassette_file.load(path)
    assert [interaction["request"]["body"]["json"]["metadata"] for interaction in stored] == [{"request_id": "2"}]


MARKED = """
import json, os, httpx2, pytest

def send(request_id, question="Capital of France?"):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}],
            "metadata": {"request_id": request_id}, "prompt_cache_key": request_id}
    return httpx2.post(os.environ.get("OPENAI_BASE_URL", "https://api.openai.test/v1") + "/chat/completions", json=body,
                       headers={"Authorization": "Bearer " + os.environ.get("OPENAI_API_KEY", "none")}).json()

@pytest.mark.llm(ignore_fields=["metadata.request_id"])
def test_marked(llm_cassette, out):
    out(send(os.environ["RUN"])["choices"][0]["message"]["content"])

def test_unmarked(llm_cassette, out):
    out(send(os.environ["RUN"])["choices"][0]["message"]["content"])

@pytest.mark.llm(ignore_fields=["metadata.request_id"])
def test_marked_other_question(llm_cassette, out):
    out(send(os.environ["RUN"], "Capital of " + os.environ["RUN"])["choices"][0]["message"]["content"])
"""


def test_the_marker_ignores_fields_per_test_and_the_miss_names_the_ignored_ones(suite) -> None:
    suite.write(MARKED)
    suite.live()
    suite.monkeypatch.setenv("RUN", "run-1")
    suite.run("--llm-record-mode=once").assert_outcomes(passed=3)
    suite.offline()
    suite.monkeypatch.setenv("RUN", "run-2")
    result = suite.run("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=2)
    assert suite.read_outputs() == {"test_x.py::test_marked": "echo: Capital of France?"}
    output = result.stdout.str()
    assert "Ignored when matching (so not why it missed): prompt_cache_key, metadata.request_id." in output  # the marked miss
    assert output.count("Ignored when matching") == 2  # the unmarked test: prompt_cache_key only
    assert "Ignored when matching (so not why it missed): prompt_cache_key." in output


NORMALISED = """
import datetime, os, re, pytest, httpx2

@pytest.fixture
def llm_normalize():
    def undated(body):
        for message in body.get("messages", []):
            message["content"] = re.sub(r"\\d{4}-\\d{2}-\\d{2}", "<date>", message["content"])
        return body
    return undated

def test_dated_prompt(llm_cassette, out):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Today is " + os.environ["TODAY"]}]}
    response = httpx2.post(os.environ.get("OPENAI_BASE_URL", "https://api.openai.test/v1") + "/chat/completions", json=body,
                           headers={"Authorization": "Bearer " + os.environ.get("OPENAI_API_KEY", "none")})
    out(response.json()["choices"][0]["message"]["content"])
"""


def test_a_normaliser_fixture_matches_a_prompt_with_todays_date(suite) -> None:
    suite.write(NORMALISED)
    suite.live()
    suite.monkeypatch.setenv("TODAY", "2026-12-01")
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    suite.offline()
    suite.monkeypatch.setenv("TODAY", "2026-12-02")
    suite.run().assert_outcomes(passed=1)
    assert suite.read_outputs() == {"test_x.py::test_dated_prompt": "echo: Today is 2026-12-01"}  # the recorded answer


def test_the_ini_key_ignores_fields_for_the_suite_and_a_bad_path_stops_it(suite) -> None:
    suite.write(MARKED.replace('@pytest.mark.llm(ignore_fields=["metadata.request_id"])\n', ""))
    suite.pytester.makeini("[pytest]\nllm_ignore_fields =\n    metadata.request_id\n")
    suite.live()
    suite.monkeypatch.setenv("RUN", "run-1")
    suite.run("--llm-record-mode=once", "-k", "not other").assert_outcomes(passed=2, deselected=1)
    suite.offline()
    suite.monkeypatch.setenv("RUN", "run-2")
    suite.run("-k", "not other").assert_outcomes(passed=2, deselected=1)
    suite.pytester.makeini("[pytest]\nllm_ignore_fields =\n    metadata..request_id\n")
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini key llm_ignore_fields: 'metadata..request_id' is not a field path*"])


def test_a_bad_marker_path_is_an_error_of_its_test_naming_it(suite) -> None:
    suite.write("import pytest\n\n@pytest.mark.llm(ignore_fields=['a[x]'])\ndef test_x(llm_cassette):\n    pass\n\ndef test_y(llm_cassette):\n    pass\n")
    result = suite.run()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_x.py::test_x: llm marker argument ignore_fields item 'a?x?' is not a field path: use names*"])
