"""Whatever is in a cassette file, loading (and replaying) it gives the interactions or one
CassetteError naming the file and what is wrong: never a KeyError, a yaml or vcrpy traceback."""
from __future__ import annotations

import base64
import copy
import gzip
import json

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from builders import AZURE_CHAT_URI, interaction
from pytest_llmcache import cassette
from pytest_llmcache.bodies import decode_body, encode_body
from pytest_llmcache.errors import CassetteError
from pytest_llmcache.matching import stored_request_key

PATH = "cassettes/tests/test_x/test_y.yaml"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
STREAM = 'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'


def valid_interactions() -> list[dict]:
    return [
        interaction(CHAT, b'{"id": "x", "choices": []}', request_headers={"content-type": ["application/json"]}, content_type="application/json"),
        interaction({**CHAT, "stream": True}, STREAM, uri=AZURE_CHAT_URI, content_type="text/event-stream"),
    ]


def use(path: str, text: str | bytes) -> None:
    """Load `text` as the plugin does, then touch everything replay touches."""
    entries = cassette.loads_entries(text.decode("utf-8") if isinstance(text, bytes) else text, path)
    for entry in entries:
        entry.request_key  # noqa: B018 - what the recorder indexes by
        interaction = entry.interaction
        stored_request_key(interaction["request"])
        decode_body(interaction["request"]["body"])
        decode_body(interaction["response"]["body"])


def outcome(text: str | bytes) -> CassetteError | None:
    """None if the cassette is usable; its CassetteError if not. Anything else fails the test."""
    try:
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                return None  # load() reports it (see the byte test); loads() takes text
        use(PATH, text)
    except CassetteError as error:
        assert PATH in str(error), error
        assert "Fix or restore the file" in str(error) and "record again" in str(error)
        return error
    return None


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12), st.binary(max_size=8),
                    st.dates(), st.just(".nan"))
yaml_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
PATHS = [
    (), ("version",), ("interactions",), ("interactions", 0), ("interactions", 0, "request"), ("interactions", 0, "response"),
    ("interactions", 0, "request", "method"), ("interactions", 0, "request", "uri"), ("interactions", 0, "request", "headers"),
    ("interactions", 0, "request", "body"), ("interactions", 0, "request", "body", "json"), ("interactions", 1, "response", "body", "sse"),
    ("interactions", 0, "response", "status"), ("interactions", 0, "response", "status", "code"), ("interactions", 0, "response", "headers"),
    ("interactions", 0, "response", "body"), ("interactions", 0, "response", "body", "layout"), ("interactions", 1, "response", "headers"),
]


def document() -> dict:
    return {"version": 1, "interactions": [cassette._compact(interaction) for interaction in valid_interactions()]}


def mutate(tree: dict, path: tuple, action: str, value: object) -> dict:
    tree = copy.deepcopy(tree)
    if not path:
        return value if action == "replace" else tree  # type: ignore[return-value]
    parent = tree
    for step in path[:-1]:
        parent = parent[step]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return tree


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), action=st.sampled_from(["delete", "replace"]), value=yaml_values)
@example(path=("interactions", 0, "request", "uri"), action="replace", value="http://[broken")
@example(path=("version",), action="replace", value=2)
@example(path=("interactions", 0, "response", "status", "code"), action="replace", value="two hundred")
@example(path=("interactions", 1, "response", "body", "sse"), action="replace", value="data: {\"cut")
def test_a_mutated_cassette_loads_or_raises_one_clear_error(path, action, value):
    text = yaml.safe_dump(mutate(document(), path, action, value), allow_unicode=True)
    outcome(text)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_cassette_cut_or_spliced_anywhere_loads_or_raises_one_clear_error(data):
    text = cassette.dumps(valid_interactions())
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    insert = data.draw(st.sampled_from(["", "x", "\n", ": ", "- ", "\t", "'", "{", "!!python/object:os.system", "# llmcache-key k1 a b\n", "\x00"]))
    mutated = text[:start] + insert + text[end:]
    error = outcome(mutated)
    if end == len(text) and start < len(text) and not insert:  # a file cut short is always noticed
        assert error is not None
        if start >= len(cassette._HEADER):
            assert "truncated" in str(error)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=300) | st.text(max_size=300))
def test_random_content_loads_or_raises_one_clear_error(raw):
    outcome(raw)


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(min_size=1, max_size=200))
def test_any_bytes_on_disk_give_a_cassette_error_or_interactions(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("bytes") / "c.yaml"
    path.write_bytes(raw)
    try:
        cassette.load(path)
    except CassetteError as error:
        assert str(path) in str(error)


# "Billion laughs": nine levels of ten aliases each would expand to 10**9 strings.
ALIAS_BOMB = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]\n" for level in range(1, 9)
) + "interactions: [*a8]\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("version: 2\ninteractions: []\n", r"format version 2, .*\(upgrade pytest-llmcache, or record the cassette again\)"),
        ("version: '1'\ninteractions: []\n", "format version '1'"),
        ("interactions: {}\n", "no 'interactions' list"),
        ("interactions:\n- {response: {status: {code: 200}}}\n", r"interaction #0 is malformed: missing 'request'"),
        ("interactions:\n- request: {method: POST, uri: /x}\n  response: {status: {}}\n", r"interaction #0 is malformed: missing 'code'"),
        ("interactions:\n- request: {method: POST, uri: /x, body: {json: {a: 1}, layout: weird}}\n  response: {status: {code: 200}}\n",
         "unknown JSON layout 'weird'"),
        ("interactions:\n- request: {method: POST, uri: /x, body: {base64: '!!!'}}\n  response: {status: {code: 200}}\n", "invalid base64 body"),
        ("interactions:\n- request: {method: POST, uri: /x, body: {json: 2024-01-01}}\n  response: {status: {code: 200}}\n", "malformed"),
        ("interactions:\n- request: {method: POST, uri: /x, headers: [a, b]}\n  response: {status: {code: 200}}\n", "headers must be a mapping"),
        ("interactions:\n- request: {method: POST, uri: /x}\n  response: {status: {code: 200}, body: {sse: \"data: {}\\n\\ndata: [DO\"}}\n",
         r"interaction #0 is malformed: its event stream is truncated"),
        ("interactions:\n- request: {method: POST, uri: /x}\n  response: {status: {code: 200}, body: {nothing: 1}}\n",
         "a body needs one of json, sse, string, base64"),
        ("[" * 5000 + "]" * 5000, "."),
        (ALIAS_BOMB, r"it is not valid YAML: its aliases \(\*name\) expand to far more values than the file holds"),
    ],
)
def test_each_problem_is_named_with_the_interaction_and_what_to_do(text, problem):
    with pytest.raises(CassetteError, match=problem) as error:
        use(PATH, text)
    assert PATH in str(error.value)


def test_gzip_and_binary_bodies_of_other_tools_load_and_bad_gzip_is_kept_as_bytes():
    good = gzip.compress(b'{"ok": true}')
    text = yaml.safe_dump({"version": 1, "interactions": [
        {"request": {"method": "POST", "uri": "https://api.openai.com/v1/x", "body": None},
         "response": {"status": {"code": 200, "message": "OK"}, "headers": {"Content-Encoding": ["gzip"]}, "body": {"string": good}}},
        {"request": {"method": "POST", "uri": "https://api.openai.com/v1/x", "body": b"\x00\x01binary"},
         "response": {"status": {"code": 200, "message": "OK"}, "headers": {"Content-Encoding": ["gzip"]}, "body": {"string": b"\x1f\x8bnot gzip"}}},
    ]})
    first, second = cassette.loads(text, PATH)
    assert cassette.response_body(first) == b'{"ok": true}' and first["response"]["headers"] == {}
    assert cassette.request_body(second) == b"\x00\x01binary"
    assert cassette.response_body(second) == b"\x1f\x8bnot gzip" and second["response"]["headers"] == {"Content-Encoding": ["gzip"]}


def test_a_cut_event_stream_is_recorded_as_it_came_and_replays_byte_for_byte():
    cut = b'data: {"choices":[]}\n\ndata: {"cho'
    stored = encode_body(cut, "text/event-stream")
    assert stored == {"string": cut.decode()}  # not "sse": that kind promises a complete stream
    assert cassette.response_body(cassette.loads(cassette.dumps([{**valid_interactions()[1], "response": {
        "status": {"code": 200, "message": "OK"}, "headers": {}, "body": stored}}]))[0]) == cut


@pytest.mark.parametrize("kind", ["json", "sse", "base64"])
def test_bodies_of_several_megabytes_round_trip_byte_for_byte(tmp_path, kind):
    if kind == "json":
        raw = json.dumps({"data": [{"embedding": [i / 7 for i in range(1536)], "index": n} for n in range(130)]}).encode()
        content_type = "application/json"
    elif kind == "sse":
        raw = b"".join(b'data: {"choices":[{"delta":{"content":"%d token "}}]}\n\n' % n for n in range(80_000)) + b"data: [DONE]\n\n"
        content_type = "text/event-stream"
    else:
        raw = bytes(range(256)) * 16_000
        content_type = "application/octet-stream"
    assert len(raw) > 3_000_000
    interaction = {**valid_interactions()[0], "response": {"status": {"code": 200, "message": "OK"}, "headers": {},
                                                           "body": encode_body(raw, content_type)}}
    assert kind in interaction["response"]["body"]
    path = tmp_path / "big.yaml"
    cassette.save(path, [interaction])  # (how fast: bench/run.py's large-body part)
    (loaded,) = cassette.load(path)
    assert cassette.response_body(loaded) == raw


def test_a_body_that_is_base64_of_gzip_in_our_format_is_left_alone():
    payload = gzip.compress(b"x" * 1000)
    stored = {"base64": base64.b64encode(payload).decode()}
    interaction = {**valid_interactions()[0], "response": {"status": {"code": 200, "message": "OK"},
                                                           "headers": {"content-encoding": ["gzip"]}, "body": stored}}
    (loaded,) = cassette.loads(cassette.dumps([interaction]), PATH)
    assert cassette.response_body(loaded) == payload and loaded["response"]["headers"] == {"content-encoding": ["gzip"]}


def test_interactions_pasted_into_an_indexed_cassette_by_hand_are_all_kept():
    first, second = valid_interactions()
    text = cassette.dumps([first])
    pasted = cassette.dumps([second]).split("\n- ", 1)[1].removesuffix("# end of cassette\n")
    edited = text.replace("# end of cassette\n", "- " + pasted + "# end of cassette\n")
    loaded = cassette.loads(edited, PATH)
    assert [interaction["request"]["uri"] for interaction in loaded] == [first["request"]["uri"], second["request"]["uri"]]
