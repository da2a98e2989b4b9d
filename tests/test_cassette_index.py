"""The lazy index: keys and digests in comments, parsing only when an interaction is used."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import interaction
from pytest_llmcache import blockyaml, cassette
from pytest_llmcache.bodies import encode_body
from pytest_llmcache.errors import CassetteError
from pytest_llmcache.exchange import read_billing, read_exchange
from pytest_llmcache.matching import stored_request_key

messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=80)}),
    min_size=1,
    max_size=4,
)
response_bodies = st.one_of(
    st.text(max_size=200).map(lambda text: encode_body(text.encode("utf-8"), "text/event-stream")),
    st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=20), max_size=4).map(
        lambda document: encode_body(json.dumps(document, indent=2).encode("utf-8"), "application/json")
    ),
)


@st.composite
def interactions(draw):
    body = {"model": draw(st.sampled_from(["gpt-4o", "gpt-5-mini"])), "messages": draw(messages)}
    status = draw(st.sampled_from([200, 429, 500]))
    return interaction(body, draw(response_bodies), status=status, request_headers={"content-type": ["application/json"]})


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(interactions(), max_size=6))
def test_index_round_trip_without_parsing(recorded):
    text = cassette.dumps(recorded)
    entries = cassette.loads_entries(text)
    assert all(entry._interaction is None for entry in entries)  # nothing parsed to open it
    assert [entry.request_key for entry in entries] == [stored_request_key(i["request"]) for i in recorded]
    assert [entry.interaction for entry in entries] == recorded
    assert cassette.dumps(entries) == text  # unchanged entries are written back verbatim
    assert yaml.safe_load(text)["interactions"] == [documents(cassette._compact(i)) for i in recorded]  # plain YAML readers agree


def documents(value):
    """`value` with verbatim JSON bodies (blockyaml.JSONText) as the documents they hold."""
    if isinstance(value, blockyaml.JSONText):
        return json.loads(value)
    if isinstance(value, dict):
        return {key: documents(item) for key, item in value.items()}
    return value


def sample(content: str = "hello") -> dict:
    (interaction,) = cassette.loads(cassette.dumps([_interaction(content)]))
    return interaction


def _interaction(content: str) -> dict:
    return interaction({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}, {"string": "hi"})


def test_a_hand_edited_interaction_is_rekeyed_from_its_text():
    text = cassette.dumps([_interaction("hello"), _interaction("second")])
    edited = text.replace("content: hello", "content: changed by hand")
    first, second = cassette.loads_entries(edited)
    assert first.request_key == stored_request_key(_interaction("changed by hand")["request"])
    assert second._interaction is None  # the untouched one still needs no parse


def test_a_broken_edit_is_reported_at_load_naming_the_interaction(tmp_path):
    path = tmp_path / "c.yaml"
    text = cassette.dumps([_interaction("a"), _interaction("b")])
    path.write_text(text.replace("    method: POST", "    method: [POST", 1).replace("content: b", "content: c"), encoding="utf-8")
    with pytest.raises(CassetteError, match=r"c\.yaml.*interaction #0") as error:
        cassette.load_entries(path)
    assert "not valid YAML" in str(error.value)


def test_files_without_the_index_still_load():
    text = cassette.dumps([_interaction("x")])
    plain = "\n".join(line for line in text.splitlines() if not line.startswith("# llmcache-key")) + "\n"
    (entry,) = cassette.loads_entries(plain)
    assert entry.interaction == sample("x")


def test_an_empty_cassette_is_a_valid_list():
    assert cassette.loads(cassette.dumps([])) == []


def test_replay_parses_only_the_response_and_gives_the_exact_bytes():
    sse = "data: {\"x\": 1}\n\ndata: [DONE]\n\n"
    recorded = _interaction("hello")
    recorded["response"] = {"status": {"code": 429, "message": "Too Many Requests"}, "headers": {"retry-after": ["2"]},
                            "body": encode_body(sse.encode(), "text/event-stream")}
    (entry,) = cassette.loads_entries(cassette.dumps([recorded]))
    status, headers, body = entry.replay()
    assert entry._interaction is None  # the request part was not parsed
    assert (status, headers, body) == ({"code": 429, "message": "Too Many Requests"}, {"retry-after": ["2"]}, sse.encode())
    assert entry.interaction["response"]["body"] == recorded["response"]["body"]


def test_a_malformed_response_is_reported_when_replayed(tmp_path):
    (good,) = cassette.loads_entries(cassette.dumps([_interaction("a")]))
    broken = cassette.Entry(tmp_path / "c.yaml", 0, good.text.replace("      code: 200", "      code: lots"), good.key)
    with pytest.raises(CassetteError, match=r"c\.yaml.*interaction #0 is malformed"):
        broken.replay()


def test_interactions_are_written_in_the_subset_and_read_without_pyyaml(monkeypatch):
    recorded = [_interaction("hello"), _interaction("line one\nline two\n")]
    text = cassette.dumps(recorded)
    assert [line.endswith(" y1") for line in text.splitlines() if line.startswith("# llmcache-key")] == [True, True]

    def no_pyyaml(text):
        raise AssertionError("PyYAML was used for blockyaml's own text")

    monkeypatch.setattr(cassette, "_parse_yaml", no_pyyaml)
    entries = cassette.loads_entries(text)
    assert [entry.replay()[2] for entry in entries] == [b"hi", b"hi"]
    assert [entry.interaction for entry in entries] == recorded


def test_values_the_subset_cannot_hold_are_written_by_pyyaml_and_still_load():
    recorded = _interaction("x")
    recorded["response"]["body"] = {"json": {"k" * 1500: 1}, "layout": "compact"}  # too long for an implicit YAML key
    text = cassette.dumps([recorded, _interaction("y")])
    assert [line.endswith(" y1") for line in text.splitlines() if line.startswith("# llmcache-key")] == [False, True]
    entries = cassette.loads_entries(text)
    assert [entry.interaction for entry in entries] == [recorded, _interaction("y")]
    assert entries[0].replay()[2] == json.dumps({"k" * 1500: 1}, separators=(",", ":")).encode()
    assert yaml.safe_load(text)["interactions"] == [cassette._compact(i) for i in (recorded, _interaction("y"))]


def test_after_replay_the_request_alone_is_parsed_for_the_report(tmp_path):
    """The report reads a played entry's request and response: the response replay parsed is
    reused, the request is parsed from its own lines; both equal a whole parse."""
    pretty = [json.dumps({"id": number, "usage": {"total_tokens": 3}}, indent=2).encode() for number in range(3)]
    recorded = [
        interaction({"model": "gpt-4o", "messages": [{"role": "user", "content": f"question {number}"}]}, encode_body(body, "application/json"))
        for number, body in enumerate(pretty)
    ]
    path = tmp_path / "c.yaml"
    cassette.save(path, recorded)
    for entry, parsed, body in zip(cassette.load_entries(path), cassette.load(path), pretty, strict=True):
        assert entry.replay()[2] == body
        assert entry["response"] == parsed["response"]
        assert entry["request"] == parsed["request"]
        assert entry._interaction is None  # never parsed whole


# -- the report's reading of a played entry (exchange.read_billing) ---------------------------------

EXAMPLE_CASSETTES = sorted((Path(__file__).parent.parent / "cassettes").rglob("*.yaml")) + sorted((Path(__file__).parent / "data" / "realworld").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLE_CASSETTES, ids=lambda path: path.name)
def test_a_played_entry_is_billed_as_its_whole_exchange_reads(path: Path):
    """After replay, the report bills an entry from its response and its request's head: the same
    model and usage as the exchange read whole, the request's body parsed only when the response
    names no model (foreign flavours: the whole request, as before)."""
    whole = cassette.load(path)
    for entry, recorded in zip(cassette.load_entries(path), whole, strict=True):
        entry.replay()
        asked: list[dict] = []

        def whole_request(entry: cassette.Entry = entry, asked: list[dict] = asked) -> dict:
            asked.append(entry.request)
            return asked[-1]

        sent = recorded["request"]
        billing = read_billing(sent["uri"], tuple(sent["headers"]), entry["response"], whole_request)
        exchange = read_exchange(recorded)
        assert (billing.billed_model, billing.usage) == (exchange.billed_model, exchange.usage)
        assert len(asked) == (exchange.response_model is None)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(interactions(), st.sampled_from([None, "gpt-4o-2024-08-06"]))
def test_billing_a_played_entry_agrees_with_its_exchange(recorded, answered_by):
    """Responses naming their model or not, JSON or a stream, any status."""
    if answered_by is not None:
        recorded["response"]["body"] = encode_body(json.dumps({"model": answered_by, "usage": {"prompt_tokens": 3, "completion_tokens": 1}}, indent=2).encode(), "application/json")
    [entry] = cassette.loads_entries(cassette.dumps([recorded]))
    entry.replay()
    billing = read_billing(recorded["request"]["uri"], tuple(recorded["request"]["headers"]), entry["response"], lambda: entry.request)
    exchange = read_exchange(recorded)
    assert (billing.billed_model, billing.usage) == (exchange.billed_model, exchange.usage)
