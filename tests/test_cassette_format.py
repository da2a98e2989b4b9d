"""The cassette file format: exact body round trips, legacy cassettes, bad files, atomic writes."""
from __future__ import annotations

import base64
import gzip
import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import interaction
from pytest_llmcache import cassette
from pytest_llmcache.blockyaml import JSONText
from pytest_llmcache.bodies import decode_body, decompress, encode_body
from pytest_llmcache.errors import CassetteError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
dumps_options = st.sampled_from(
    [{"separators": (",", ":")}, {}, {"indent": 2}, {"indent": 4}, {"indent": 2, "ensure_ascii": False}, {"separators": (",", ":"), "ensure_ascii": False}]
)


def interaction_with(body: dict) -> dict:
    return interaction(None, body, uri="https://api.openai.test/v1/x")


def through_a_file(stored: dict) -> bytes:
    """The body bytes after a save and a load."""
    (loaded,) = cassette.loads(cassette.dumps([interaction_with(stored)]))
    return cassette.response_body(loaded)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(document=st.one_of(st.dictionaries(st.text(), json_values), st.lists(json_values)), options=dumps_options, newline=st.booleans())
def test_json_bodies_round_trip_byte_for_byte(document, options, newline):
    raw = (json.dumps(document, **options) + ("\n" if newline else "")).encode()
    stored = encode_body(raw, "application/json")
    assert "json" in stored  # readable, not a string
    assert through_a_file(stored) == raw


@settings(max_examples=150)
@given(text=st.text(), content_type=st.sampled_from(["text/event-stream", "text/plain", "application/json", ""]))
def test_text_bodies_round_trip_byte_for_byte(text, content_type):
    raw = text.encode("utf-8")
    assert through_a_file(encode_body(raw, content_type)) == raw


@settings(max_examples=50)
@given(raw=st.binary())
def test_any_bytes_round_trip(raw):
    assert through_a_file(encode_body(raw)) == raw


def test_sse_is_a_readable_block_even_with_trailing_spaces_and_crlf():
    plain = "data: {\"a\":1}\n\ndata: [DONE]\n\n"
    text = cassette.dumps([interaction_with(encode_body(plain.encode(), "text/event-stream"))])
    assert "sse: |" in text and "data: [DONE]" in text
    awkward = "data: x  \r\n\r\ndata: [DONE] \n\n"
    assert through_a_file(encode_body(awkward.encode(), "text/event-stream")) == awkward.encode()


def test_json_that_does_not_reserialise_exactly_is_kept_as_text():
    raw = b'{"a": 1.50, "b":2}'
    assert encode_body(raw, "application/json") == {"string": raw.decode()}


def test_brotli_bodies_are_stored_decoded_with_consistent_headers():
    import brotli

    raw = json.dumps({"x": "y" * 100}).encode()
    body, headers = decompress(brotli.compress(raw), {"content-encoding": ["br"], "content-length": ["9"]})
    assert body == raw and headers == {"content-length": [str(len(raw))]}


def test_a_body_that_is_not_what_its_encoding_claims_is_kept_as_it_came():
    assert decompress(b"not brotli", {"content-encoding": ["br"]}) == (b"not brotli", {"content-encoding": ["br"]})
    assert decompress(b"x", {"content-encoding": ["compress"]}) == (b"x", {"content-encoding": ["compress"]})


def test_gzip_bodies_are_stored_decoded_with_consistent_headers():
    raw = json.dumps({"x": "y" * 100}).encode()
    body, headers = decompress(gzip.compress(raw), {"Content-Encoding": ["gzip"], "Content-Length": ["12"], "a": ["b"]})
    assert body == raw and headers == {"Content-Length": [str(len(raw))], "a": ["b"]}


VCRPY_CASSETTE = """
interactions:
- request:
    body: '{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o-mini"}'
    headers:
      authorization: ['Bearer x']
      content-type: [application/json]
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body:
      string: !!binary |
        {gz}
    headers:
      Content-Encoding: [gzip]
      Content-Type: [application/json]
    status: {code: 200, message: OK}
- request:
    method: POST
    uri: https://api.openai.com/v1/embeddings
    parsed_body: {model: m, input: [a]}
  response:
    status: {code: 200, message: OK}
    headers: {}
    parsed_body: {data: []}
version: 1
"""


def test_plain_vcrpy_and_pydantic_ai_cassettes_load(tmp_path):
    answer = b'{"choices":[{"message":{"content":"hello"}]}'
    path = tmp_path / "old.yaml"
    path.write_text(VCRPY_CASSETTE.replace("{gz}", base64.b64encode(gzip.compress(answer)).decode()))
    first, second = cassette.load(path)
    assert cassette.response_body(first) == answer
    assert first["response"]["headers"] == {"Content-Type": ["application/json"]}
    assert json.loads(cassette.request_body(first))["model"] == "gpt-4o-mini"
    assert second["request"]["body"] == {"json": {"model": "m", "input": ["a"]}, "layout": "compact"}
    assert cassette.response_body(second) == b'{"data":[]}'


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty"),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b"interactions: [unclosed", "not valid YAML"),
        (b"just: a mapping\n", "no 'interactions' list"),
        (b"version: 2\ninteractions: []\n", "format version 2"),
        (b"interactions:\n- request: {method: GET}\n", "interaction #0 is malformed"),
        (b"!!python/object/apply:os.system [echo hi]\n", "not valid YAML"),
    ],
)
def test_unusable_files_raise_a_cassette_error_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(CassetteError, match=problem) as error:
        cassette.load(path)
    assert str(path) in str(error.value)


def test_a_truncated_file_is_detected(tmp_path):
    text = cassette.dumps([interaction_with({"string": "a"}), interaction_with({"string": "b"})])
    path = tmp_path / "cut.yaml"
    path.write_text(text[: text.rindex("- request:")])  # still valid YAML, one interaction short
    with pytest.raises(CassetteError, match="truncated"):
        cassette.load(path)


def test_save_is_atomic_and_keeps_the_previous_file_aside(tmp_path):
    path = tmp_path / "deep" / "c.yaml"
    cassette.save(path, [interaction_with({"string": "first"})])
    cassette.save(path, [interaction_with({"string": "second"})])
    assert cassette.response_body(cassette.load(path)[0]) == b"second"
    assert cassette.response_body(cassette.load(path.with_name("c.yaml.bak"))[0]) == b"first"
    assert sorted(p.name for p in path.parent.iterdir()) == ["c.yaml", "c.yaml.bak"]  # no temporary left


def test_a_refused_write_leaves_the_old_file_untouched(tmp_path):
    path = tmp_path / "c.yaml"
    cassette.save(path, [interaction_with({"string": "old"})])
    before = path.read_bytes()

    def refuse(text: str) -> None:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cassette.save(path, [interaction_with({"string": "new"})], check=refuse)
    assert path.read_bytes() == before


def test_unknown_body_shapes_are_rejected():
    with pytest.raises(ValueError, match="needs one of json, sse, string, base64"):
        decode_body({"nope": 1})
    with pytest.raises(ValueError, match="unknown JSON layout"):
        decode_body({"json": {}, "layout": "weird"})
    assert yaml.safe_load(cassette.dumps([]))["version"] == cassette.FORMAT_VERSION


# -- reading a few members of a large verbatim body ----------------------------------------------

_TRICKY_TEXTS = st.sampled_from(['\n  "model": "x"', '"usage": {', "}\n", '  "model": ', "\\n  \"model\"", "é ü 💡"]) | st.text(max_size=12)
_MEMBER_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _TRICKY_TEXTS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["model", "usage", "a"]) | st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)


def _replayed_response(raw: bytes) -> dict:
    """The response of an interaction answered with `raw`, as replay reads it from a file."""
    (entry,) = cassette.loads_entries(cassette.dumps([interaction(None, raw, uri="https://api.openai.test/v1/x", content_type="application/json")]))
    entry.replay()
    return entry.response


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    document=st.dictionaries(st.sampled_from(["model", "usage", "data", "id", "é"]) | st.text(max_size=8), _MEMBER_VALUES, max_size=6),
    indent=st.sampled_from([2, 4]),
    ensure_ascii=st.booleans(),
    newline=st.booleans(),
    names=st.lists(st.sampled_from(["model", "usage", "data", "é", "missing"]), max_size=3),
)
def test_the_members_read_from_a_verbatim_body_are_those_of_the_parsed_document(document, indent, ensure_ascii, newline, names):
    """What the report reads of a replayed response kept as its exact indented text (its model and
    usage) is what parsing the whole of it would give, whatever the other members hold."""
    from pytest_llmcache.bodies import indented_members

    raw = (json.dumps(document, indent=indent, ensure_ascii=ensure_ascii) + "\n" * newline).encode()
    stored = _replayed_response(raw)["body"]
    found = indented_members(stored, names)
    if type(stored.get("json")) is JSONText:
        assert found == {name: document[name] for name in names if name in document}
    else:
        assert found is None  # a body not kept as its text is parsed as a whole


def test_the_billing_of_a_large_verbatim_response_reads_its_model_and_usage_only():
    """An embeddings response of 2 MB: the report's tally at the test's teardown reads its model and
    usage, not its vectors, and bills it as the whole document parsed would."""
    from pytest_llmcache.exchange import Usage, read_billing

    document = {"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [0.001 * j for j in range(1536)]} for i in range(60)],
                "model": "text-embedding-3-small", "usage": {"prompt_tokens": 480, "total_tokens": 480}}
    raw = json.dumps(document, indent=2).encode()
    entry = cassette.loads_entries(cassette.dumps([interaction(None, raw, uri="https://api.openai.com/v1/embeddings", content_type="application/json")]))[0]
    entry.replay()
    assert type(entry.response["body"]["json"]) is JSONText  # kept as text: not parsed by replay
    verbatim = read_billing("https://api.openai.com/v1/embeddings", (), entry.response, lambda: {})
    parsed = read_billing("https://api.openai.com/v1/embeddings", (), entry["response"], lambda: {})
    assert verbatim == parsed and verbatim.billed_model == "text-embedding-3-small" and verbatim.usage == Usage(480, 0)
