"""The replay fast paths give exactly what the general readers give, and step aside otherwise.

- `cassette._response_head`: a response's status and headers read by regular expressions
  (`cassette._RESPONSE_HEAD`) instead of blockyaml, on replay.
- `Scrubber.learn_request`: a header value or URL already learned from is not read again, while
  what it held is still remembered; it learns exactly what `credentials_in` finds.
- `cassette._read_text` reads a file with os.read: whole, however the reads are cut, and bounded
  if it grows while read.
- `scrubbing.environment_values` reads variables as `os.environ.get` does, and a scrubber learns
  from them what the rule finds there, though it is read once per environment.
- `bodies.parse_json` reads a body as `json.loads` does; `matching._canonical_json` of a parsed
  document is what `json.dumps` writes.
"""
from __future__ import annotations

import json
import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import interaction
from pytest_llmcache import blockyaml, bodies, cassette, matching
from pytest_llmcache.bodies import encode_body
from pytest_llmcache.errors import CassetteError
from pytest_llmcache.providers import secret_host
from pytest_llmcache.scrubbing import REDACTED, Scrubber, credentials_in

PRETTY = encode_body(json.dumps({"id": "chatcmpl-1", "choices": []}, indent=2).encode(), "application/json")
SSE = encode_body(b'data: {"x": 1}\n\ndata: [DONE]\n\n', "text/event-stream")

# What real responses carry, and what YAML reads as something else unless quoted.
TRICKY = [
    "application/json", "2020-10-01", "1139", "0", "-1", "1e3", "1.0", ".inf", "yes", "No", "on", "OFF", "null", "~", "true",
    "", " ", "a ", " a", "a  b", "a: b", "a:b", "a:", "a #b", "a#b", "#a", "-", "- a", "'", "''", "'a'", '"a"', "a'b", "[1]", "{}",
    "[]", "<<", "=", "...", "---", "@a", "`a", "%a", "|", ">", "!a", "&a", "*a", "?", "?a", "a\tb", "ü", "é: x", "\u2028", "\x7f",
    "Wed, 02 Dec 2026 05:35:35 GMT", "req_1395916205d68359d83cbcece202d894", "text/event-stream; charset=utf-8", "x" * 130,
    " ".join(["word"] * 40), "max-age=0, private, must-revalidate", 'W/"abc"', "a\\b",
]
names = st.one_of(st.from_regex(r"[a-z][a-z0-9-]{0,24}", fullmatch=True), st.sampled_from(TRICKY).filter(bool), st.text(min_size=1, max_size=8))
values = st.one_of(st.sampled_from(TRICKY), st.from_regex(r"[ -~]{0,30}", fullmatch=True), st.text(max_size=12))


def head_of(text: str) -> tuple[int, int]:
    """Where a response's head (status and headers) lies in an interaction's text."""
    start = text.find(cassette._RESPONSE_LINE) + 1
    return start, text.find("\n    body:\n", start) + 1


def general(text: str) -> tuple[dict, dict]:
    """The status and headers the reader replay falls back to gives for a response's head (PyYAML
    when blockyaml can't), in the in-memory shape."""
    document = cassette.Entry("<test>", 0, text, in_subset=True)._parse(text)
    response, _ = cassette._response({**document["response"], "body": {"string": ""}})
    return response["status"], response["headers"]


def recorded(headers: dict[str, list[str]], message: str = "OK", body: dict = PRETTY) -> dict:
    item = interaction({"model": "gpt-4o", "messages": []}, body, response_headers=headers)
    item["response"]["status"]["message"] = message
    return item


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(names, st.lists(values, min_size=1, max_size=3), max_size=8), values, st.sampled_from([PRETTY, SSE]))
def test_the_fast_head_reads_what_blockyaml_reads_for_any_headers(headers, message, body):
    [entry] = cassette.loads_entries(cassette.dumps([recorded(headers, message, body)]))
    start, end = head_of(entry.text)
    fast = cassette._response_head(entry.text, start, end)
    if fast is not None:
        assert fast == general(entry.text[start:end])
    assert entry.replay()[:2] == ({"code": 200, "message": message}, headers)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9-]{0,24}", fullmatch=True).filter(lambda name: name not in ("on", "no", "off", "yes", "true", "null")), st.lists(st.from_regex(r"[a-zA-Z][a-zA-Z0-9/;=.,-]{0,20}(?: [a-zA-Z0-9/;=.,-]{1,8}){0,4}", fullmatch=True), min_size=1, max_size=2), max_size=8))
def test_ordinary_headers_take_the_fast_path(headers):
    [entry] = cassette.loads_entries(cassette.dumps([recorded(headers)]))
    start, end = head_of(entry.text)
    fast = cassette._response_head(entry.text, start, end)
    assert fast is not None
    assert fast == general(entry.text[start:end])


# Characters that change what YAML reads, for edits by hand.
EDITS = st.sampled_from([*" -:#'\"\n\t[]{}|>&*!%@`,?~0aZ", "  ", "\n      ", "\n    ", "''", ": ", " #", "yes", "\u2028", "é"])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_edited_head_is_read_as_the_general_reader_reads_it_or_left_to_it(data):
    headers = {"content-type": ["application/json"], "openai-version": ["2020-10-01"], "vary": ["Origin", "Accept-Encoding"], "x-empty": [""]}
    [entry] = cassette.loads_entries(cassette.dumps([recorded(headers, data.draw(st.sampled_from(["OK", "Not Found", ""])))]))
    start, end = head_of(entry.text)
    text = entry.text[start:end]
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(text) - 1))
        cut = data.draw(st.integers(0, 3))
        text = text[:at] + data.draw(EDITS) + text[at + cut :]
    if not text.endswith("\n"):
        text += "\n"
    fast = cassette._response_head(text, 0, len(text))
    try:
        expected = general(text)
    except (yaml.YAMLError, RecursionError, KeyError, TypeError, ValueError, AttributeError):  # what replay reports
        assert fast is None
        return
    if fast is not None:
        assert fast == expected


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "OK"),
        ({"vary": ["Origin", "Accept-Encoding"], "set-thing": ["a", "'b'", ""]}, "Too Many Requests"),
        ({"retry-after": ["2"], "x-flag": ["yes"], "x-nothing": ["null"], "x-empty": [""]}, ""),
        ({"content-security-policy": ["default-src 'self'; " * 12]}, "OK"),  # folded over lines: blockyaml reads it
        ({"x-unicode": ["naïve"], "x-colon": ["a: b"], "x-hash": ["a #b"]}, "Très bien"),
    ],
)
def test_replay_gives_the_recorded_head_whatever_reader_reads_it(headers, message):
    for body in (PRETTY, SSE):
        item = recorded(headers, message, body)
        [entry] = cassette.loads_entries(cassette.dumps([item]))
        assert entry.replay() == (item["response"]["status"], headers, cassette.response_body(item))
        assert entry._interaction is None


def replayed(entry: cassette.Entry) -> object:
    """What replaying `entry` gives, or the error it reports."""
    try:
        return entry.replay()
    except CassetteError as error:
        return str(error)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_edited_response_replays_as_yaml_reads_it(data):
    """Unedited text whose response is edited (a tool rewrote it, digest and all), its body not
    verbatim JSON: replay by parts gives what reading the response whole as YAML gives, errors
    included. (With a verbatim body, the head alone is read, as before: see the head tests.)"""
    headers = {"content-type": ["text/event-stream"], "vary": ["Origin", "Accept-Encoding"], "retry-after": ["2"]}
    body = data.draw(st.sampled_from([SSE, {"string": "plain text\nover lines"}, {"base64": "AAEC"}, {"json": [1, "a"], "layout": "compact"}]))
    [entry] = cassette.loads_entries(cassette.dumps([recorded(headers, "OK", body)]))
    start = entry.text.find(cassette._RESPONSE_LINE) + 1
    end = len(entry.text) - 1
    text = entry.text
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(start + len("  response:\n"), end - 1))
        cut = data.draw(st.integers(0, 3))
        text = text[:at] + data.draw(EDITS) + text[at + cut :]
    fast = replayed(cassette.Entry("c.yaml", 0, text, entry.key, in_subset=True))
    assert fast == replayed(cassette.Entry("c.yaml", 0, text, entry.key, in_subset=False))


def test_a_verbatim_body_written_before_the_head_replays_exactly():
    """An interaction built with its response's body first: `dumps` writes the body first too,
    and replay reads it (it once took the head for part of the JSON text's end, and failed)."""
    item = recorded({"x-a": ["1"]})
    response = item["response"]
    item["response"] = {"body": response["body"], "status": response["status"], "headers": response["headers"]}
    [entry] = cassette.loads_entries(cassette.dumps([item]))
    assert entry.text.index("body:", entry.text.index("response:")) < entry.text.index("status:")
    assert entry.replay() == (response["status"], {"x-a": ["1"]}, cassette.response_body(item))


def test_a_head_edited_by_hand_is_read_by_the_general_reader(tmp_path):
    """Text whose digest still matches (say, rewritten by a tool) but that `dumps` would not
    write: the fast reader steps aside, and replay reads what YAML reads."""
    [entry] = cassette.loads_entries(cassette.dumps([recorded({"x-flag": ["on"], "retry-after": ["2"]})]))
    edited = entry.text.replace("x-flag: 'on'", "x-flag: on").replace("retry-after: '2'", "retry-after: 2")
    assert edited != entry.text
    start, end = head_of(edited)
    assert cassette._response_head(edited, start, end) is None
    again = cassette.Entry(tmp_path / "c.yaml", 0, edited, entry.key, in_subset=True)
    assert again.replay()[1] == {"x-flag": ["True"], "retry-after": ["2"]}  # YAML 1.1's reading, as before
    assert again.replay()[1] == cassette.Entry(tmp_path / "c.yaml", 0, edited, entry.key).interaction["response"]["headers"]


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (("      code: 200", "      code: lots"), r"interaction #0 is malformed: invalid literal for int"),
        (("      message: OK", "      message: [OK"), r"interaction #0 is not valid YAML: while parsing a flow sequence"),
        (("    headers:\n", "    headers: 3\n"), r"interaction #0 is not valid YAML"),
        (("    status:\n      code: 200\n", "    status:\n"), r"interaction #0 is malformed: missing 'code'"),
    ],
)
def test_a_malformed_head_fails_with_the_same_clear_error(tmp_path, edit, problem):
    [entry] = cassette.loads_entries(cassette.dumps([recorded({"content-type": ["application/json"]})]))
    assert edit[0] in entry.text
    broken = entry.text.replace(*edit)
    errors = []
    for in_subset in (True, False):
        with pytest.raises(CassetteError, match=problem) as error:
            cassette.Entry(tmp_path / "c.yaml", 0, broken, entry.key, in_subset=in_subset, line=3).replay()
        errors.append(str(error.value))
    assert "c.yaml" in errors[0]
    if "line" in errors[0]:  # a line of the file at or just after the edit, as the general reader counts
        edited_line = 3 + entry.text[: entry.text.index(edit[0])].count("\n") + 1
        assert f"line {edited_line}," in errors[0] or f"line {edited_line + 1}," in errors[0]
    assert errors[0] == errors[1]  # whichever reader: the same message


def test_line_scalars_are_what_blockyaml_reads_as_strings():
    """The scalar pattern accepts only strings blockyaml reads back as the very text."""
    import re

    pattern = re.compile(blockyaml.LINE_SCALAR_GROUPS)
    for text in TRICKY:
        for written in (text, f"'{text}'"):
            match = pattern.match(written + "\n")
            if match is None or match.end() != len(written):
                continue
            plain, quoted = match.groups()
            value = plain if plain is not None else blockyaml.single_quoted(quoted)
            assert blockyaml.load(f"k: {written}\n") == {"k": value}


# -- the scrubber's memory of what it learned from ---------------------------------------------

def reference_learning(scrubber: Scrubber, uri: str, headers: dict, body: bytes) -> None:
    """`Scrubber.learn_request` without its memory: everything `credentials_in` finds, every time."""
    for credential in credentials_in(uri, headers, body, scrubber.extra_headers, scrubber.extra_query_params):
        scrubber.remember([credential.value], credential.source)
    scrubber.remember_host(secret_host(uri), "the Azure endpoint")


HEADER_NAMES = ["authorization", "Authorization", "api-key", "x-api-key", "cookie", "set-cookie", "x-gateway-pass", "content-type", "x-stainless-os"]
HEADER_VALUES = ["Bearer sk-live-0123456789", "Bearer sk-live-0123456789 ", "sk-other-credential-99", "short", REDACTED, f"Bearer {REDACTED}",
                 "a=session-cookie-value-1; b=2", "application/json", "Basic dXNlcjpwYXNzd29yZA==", "api.openai.test"]
URIS = ["https://api.openai.test/v1/chat/completions", "https://contoso-prod.openai.azure.com/openai/deployments/d/chat/completions?api-version=1",
        "https://user:hunter2-password@proxy.example/v1/x", "https://api.openai.test/v1/x?api_key=query-credential-123", "https://[::1/x"]
BODIES = [b"", b'{"model":"m","messages":[]}', b'{"api_key":"body-credential-0001","input":"x"}', b"not json"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(URIS), st.dictionaries(st.sampled_from(HEADER_NAMES), st.sampled_from(HEADER_VALUES) | st.lists(st.sampled_from(HEADER_VALUES), max_size=2), max_size=4), st.sampled_from(BODIES)), max_size=8),
    st.lists(st.sampled_from([None, "forget one", "forget all"]), min_size=8, max_size=8),
)
def test_the_scrubber_learns_what_credentials_in_finds_whatever_it_learned_before(requests, forgetting):
    """The same secrets, hosts and sources as reading every request whole, even when what was
    learned is taken back by hand between requests (the memory never stands in for it)."""
    scrubber, reference = Scrubber(extra_headers=["x-gateway-pass"]), Scrubber(extra_headers=["x-gateway-pass"])
    for (uri, headers, body), forget in zip(requests, forgetting, strict=False):
        scrubber.learn_request(uri, headers, body)
        reference_learning(reference, uri, headers, body)
        assert (scrubber.secrets, scrubber.hosts) == (reference.secrets, reference.hosts)
        assert list(scrubber.secrets.items()) == list(reference.secrets.items())
        for learned in (scrubber, reference):
            if forget == "forget all":
                learned.secrets.clear()
                learned.hosts.clear()
            elif forget == "forget one" and learned.secrets:
                learned.secrets.pop(next(iter(learned.secrets)))
            learned._current_masks = None
        assert scrubber.masked_request(uri, headers, body) == reference.masked_request(uri, headers, body)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(HEADER_NAMES), st.sampled_from(HEADER_VALUES)), max_size=5), max_size=5))
def test_a_multidict_s_repeated_headers_are_all_learned(requests):
    """A mapping that repeats a name (aiohttp's CIMultiDict) is read item by item: every value of a
    repeated credential header is learned, as `credentials_in` finds them."""
    from multidict import CIMultiDict

    scrubber, reference = Scrubber(), Scrubber()
    for pairs in requests:
        headers = CIMultiDict(pairs)
        scrubber.learn_request(URIS[0], headers, b"")
        reference_learning(reference, URIS[0], headers, b"")
        assert list(scrubber.secrets.items()) == list(reference.secrets.items())


def test_a_header_value_learned_once_is_still_masked_on_every_request():
    """Every test's scrubber reads the same Authorization header: what it holds is read once for
    the session, and still learned by each scrubber, and again once taken back."""
    headers = {"authorization": "Bearer sk-live-0123456789", "content-type": "application/json"}
    body = b'{"echo":"sk-live-0123456789"}'
    for _ in range(2):  # a scrubber per test
        scrubber = Scrubber()
        for _ in range(3):
            masked = scrubber.masked_request("https://api.openai.test/v1/x", headers, body)
            assert masked.body == f'{{"echo":"{REDACTED}"}}'.encode()
            assert masked.document == {"echo": REDACTED}  # the masked body's, not the one sent
        assert scrubber.secrets == {"sk-live-0123456789": "the authorization header"}
        scrubber.secrets.clear()  # taken back: the next request learns it again
        assert scrubber.masked_request("https://api.openai.test/v1/x", headers, body).body == f'{{"echo":"{REDACTED}"}}'.encode()


def test_what_the_session_keeps_of_headers_is_bounded_and_never_holds_a_value_in_a_repr():
    from pytest_llmcache import scrubbing

    scrubber = Scrubber()
    for number in range(scrubber_limit() + 50):
        scrubber.learn_request(f"https://tenant{number}.openai.azure.com/x", {"api-key": f"credential-number-{number:05d}"})
    assert scrubbing._header_secrets.cache_info().currsize <= scrubber_limit()
    assert len(scrubber.secrets) >= scrubber_limit() + 50 and len(scrubber.hosts) == scrubber_limit() + 50  # every one learned all the same
    for shown in (repr(scrubber), repr(scrubber._masks()), repr(scrubbing._header_secrets), str(scrubbing._header_secrets.cache_info())):
        assert "credential-number" not in shown and "tenant" not in shown


def scrubber_limit() -> int:
    from pytest_llmcache import scrubbing

    return scrubbing._MAX_LEARNED


# -- keying: parsing and canonical JSON --------------------------------------------------------

def reference_parse_json(raw: bytes) -> object:
    """`bodies.parse_json` as it was: json.loads itself."""
    stripped = raw.lstrip()
    if not stripped or stripped[:1] not in (b"{", b"["):
        return None
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return None if bodies._depth_exceeds(document, bodies.MAX_JSON_DEPTH) else document


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
BODY_PREFIXES = [b"", b" ", b"\n\t ", b"\xef\xbb\xbf", b"\x00", b"{\x00", b"\xff\xfe", b"\xfe\xff"]


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.tuples(st.sampled_from(BODY_PREFIXES), json_values.map(lambda value: json.dumps(value).encode()), st.sampled_from([b"", b" ", b"x", b"\x00"])).map(b"".join),
    json_values.map(lambda value: json.dumps([value], ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.sampled_from(["utf-16-le", "utf-16-be", "utf-32-le", "utf-8-sig", "latin-1"]).flatmap(
        lambda encoding: json_values.map(lambda value: json.dumps({"v": value}, ensure_ascii=False).encode(encoding, "replace"))),
    st.binary(max_size=40).map(lambda raw: b"{" + raw),
    st.sampled_from([b'{"a": "\\ud800"}', b'["\\udc00\\ud800"]', b"{\xed\xa0\x80}", b"[" * 150 + b"]" * 150, b"[1]\n", b"{}"]),
))
def test_a_body_is_parsed_as_json_loads_parses_it(raw):
    got, expected = bodies.parse_json(raw), reference_parse_json(raw)
    assert got == expected or repr(got) == repr(expected)  # (NaN is not equal to itself)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_canonical_json_of_a_parsed_document_is_what_json_dumps_writes(document):
    expected = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        got = matching._canonical_json(document, parsed=True)
    except UnicodeEncodeError:  # a lone surrogate: the same as before
        with pytest.raises(UnicodeEncodeError):
            matching._canonical_json(document)
        return
    assert got == expected == matching._canonical_json(document)


def test_a_normaliser_returning_a_cycle_still_gets_json_s_own_error():
    looped: list = []
    looped.append(looped)
    with pytest.raises(ValueError, match="Circular reference"):
        matching.request_key("POST", "https://api.openai.test/v1/x", b'{"a":1}', normalize=matching.Normalizer(function=lambda document: looped))


# -- the environment a scrubber learns from ------------------------------------------------------

def learned_by_the_rule() -> tuple[dict[str, str], dict[str, str]]:
    """What a scrubber learns from the environment, by the rule read off os.environ.get: each
    watched credential variable's value, each endpoint variable's secret host."""
    from pytest_llmcache import scrubbing

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "environ", {})
        blank = Scrubber()
    for name in scrubbing._WATCHED_ENV_VARS:
        value = os.environ.get(name)
        if not value:
            continue
        if name in scrubbing._ENDPOINT_ENV_VARS:
            blank.remember_host(scrubbing.secret_host(value), f"${name}")
        else:
            blank.remember([value], f"${name}")
    return blank.secrets, blank.hosts


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 100), st.none() | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)), max_size=6),
       st.booleans())
def test_the_watched_environment_is_what_os_environ_get_gives(changes, raw_bytes):
    """Read from os.environ's own table, and what a scrubber learns of it read once per
    environment (`_environment_credentials`): a fresh scrubber learns what the rule finds in
    os.environ.get, after every change (an environment seen before included)."""
    from pytest_llmcache import scrubbing

    names = scrubbing._WATCHED_ENV_VARS
    saved = {name: os.environ.get(name) for name in names}
    try:
        for index, value in [*changes, *changes[:2]]:  # (the first changes again: environments seen before)
            name = names[index % len(names)]
            if value is None:
                os.environ.pop(name, None)
            elif raw_bytes and hasattr(os, "environb"):
                os.environb[name.encode()] = value.encode("utf-8", "surrogatepass") + b"\xff"  # not UTF-8: surrogateescape
            else:
                os.environ[name] = value
            scrubber = Scrubber()
            assert (scrubber.secrets, scrubber.hosts) == learned_by_the_rule()
            assert scrubbing.environment_values(names) == tuple(os.environ.get(name) for name in names)
            assert scrubbing.environment_values(names[::-1]) == tuple(os.environ.get(name) for name in names[::-1])
    finally:
        set_environment(saved)


def set_environment(values: dict[str, str | None]) -> None:
    """Each variable of `values` set to its value, or removed where that is None."""
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def test_an_environment_standing_in_for_os_environ_is_read_too(monkeypatch):
    from pytest_llmcache import scrubbing

    monkeypatch.setattr(os, "environ", {"OPENAI_API_KEY": "sk-from-a-plain-dict-0001"})
    assert scrubbing.environment_values(("OPENAI_API_KEY", "GEMINI_API_KEY")) == ("sk-from-a-plain-dict-0001", None)
    assert "sk-from-a-plain-dict-0001" in Scrubber().secrets


def test_a_key_set_after_the_scrubber_was_made_is_learned(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    scrubber = Scrubber()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-set-later-000000001")
    scrubber.learn_environment()
    assert scrubber.secrets.get("sk-set-later-000000001") == "$OPENAI_API_KEY"


# -- reading a cassette file ---------------------------------------------------------------------

def test_a_cassette_read_in_short_pieces_is_read_whole(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    cassette.save(path, [recorded({"content-type": ["application/json"]})])
    expected = path.read_text(encoding="utf-8")
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda descriptor, size: real_read(descriptor, min(size, 7)))
    assert cassette._read_text(path) == expected
    assert [entry.replay()[2] for entry in cassette.load_entries(path)] == [cassette.response_body(recorded({}))]


def test_a_cassette_is_read_in_one_system_call(tmp_path, monkeypatch):
    """The size fstat gave, read, is the file: no second read looks for its end."""
    path = tmp_path / "c.yaml"
    cassette.save(path, [recorded({"content-type": ["application/json"]})])
    real_read, sizes = os.read, []

    def counted(descriptor, size):
        sizes.append(size)
        return real_read(descriptor, size)

    monkeypatch.setattr(os, "read", counted)
    assert cassette._read_text(path) == path.read_text(encoding="utf-8")
    assert sizes == [path.stat().st_size + 1]


def test_a_cassette_that_grows_past_the_limit_while_read_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"x" * 150)
    monkeypatch.setattr(cassette, "MAX_CASSETTE_BYTES", 100)
    real_fstat = os.fstat

    class Smaller:  # the size it had when looked at, before it grew
        def __init__(self, status):
            self.st_mode, self.st_size = status.st_mode, 50

    monkeypatch.setattr(os, "fstat", lambda descriptor: Smaller(real_fstat(descriptor)))
    with pytest.raises(CassetteError, match=r"c\.yaml can't be used: it is over the 100-byte limit"):
        cassette.load_entries(path)


@pytest.mark.parametrize("content", [b"", b"  \n\t\n"])
def test_an_empty_cassette_file_is_still_refused(tmp_path, content):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(CassetteError, match="the file is empty"):
        cassette.load_entries(path)


PLACEHOLDER_NAMES = ("LLMCACHE_TEST_PLACEHOLDER_A", "LLMCACHE_TEST_PLACEHOLDER_B", "LLMCACHE_TEST_PLACEHOLDER_C")
states = st.none() | st.sampled_from(["", "live-value"])


@settings(max_examples=100, deadline=None)
@given(st.tuples(*[states] * len(PLACEHOLDER_NAMES)), st.dictionaries(st.sampled_from(PLACEHOLDER_NAMES), states, max_size=3))
def test_placeholders_fill_unset_or_empty_variables_and_put_back_exactly_what_was_there(before, changed_inside):
    """Unset and empty variables get the placeholder while a cassette replays; afterwards each is
    as it was (unset stays distinct from empty), even when the test removed or changed it."""
    from pytest_llmcache.plugin import _UnsetVariablesSet

    saved = {name: os.environ.get(name) for name in PLACEHOLDER_NAMES}
    try:
        set_environment(dict(zip(PLACEHOLDER_NAMES, before, strict=True)))
        with _UnsetVariablesSet(dict.fromkeys(PLACEHOLDER_NAMES, "placeholder")):
            assert [os.environ.get(name) for name in PLACEHOLDER_NAMES] == [value or "placeholder" for value in before]
            set_environment(changed_inside)
        # put back: what was unset or empty; the test's own change: what held a value
        expected = [value if not value else changed_inside.get(name, value) for name, value in zip(PLACEHOLDER_NAMES, before, strict=True)]
        assert [os.environ.get(name) for name in PLACEHOLDER_NAMES] == expected
    finally:
        set_environment(saved)
