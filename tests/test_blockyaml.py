"""blockyaml: the YAML subset cassettes are written in. PyYAML must read it to the same values,
and blockyaml must read back exactly what it wrote and refuse (never misread) anything else."""
from __future__ import annotations

import json
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_llmcache import blockyaml
from pytest_llmcache.blockyaml import Unsupported

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# Strings YAML reads as something else, or that hold its syntax, line breaks or unprintables.
awkward_words = st.sampled_from(
    [
        "yes", "No", "ON", "off", "null", "Null", "~", "true", "FALSE", "1", "-1", "+1", "0x1f", "0o7", "0b1",
        "1_000", "1:20", ".5", "1e5", "1.0", ".inf", "-.inf", ".nan", "NaN", "2001-12-14", "<<", "=", "-", "- a",
        "a: b", "a:", ":a", "a:b", "a #b", "#x", "?a", "!a", "&a", "*a", "|a", ">a", "'a'", '"a"', "%a", "@a",
        "`a", "{a}", "[a]", "a,b", "a ", " a", "é", "ü a", "…", "你好", "\U0001f600", "a\n", "\n", "\na",
        "a\n\n", "a\r\nb", "\t", "a\tb", "\x85", "\u2028", "\ufeff", "\x00", "\x7f", "\\", "\\n", "--- a",
        "a\n---\nb", "a\n...\nb", "...", "... a", "https://x.test/v1?q=1", "8.64s", "132ms", "0777", "1:30:00", "12:30", "0x1F",
        "+.inf", "1.0e+16", "2001-12-14t21:59:43.10-05:00", "<redacted>", "<x", "=x", "~x", ".x", "(x)", "$x", "\\x", "data: {\"a\":1}\n\ndata: [DONE]\n\n",
    ]
)
fragments = st.one_of(awkward_words, st.text(alphabet="ab \n\t:#-\"\\'|>", max_size=6), st.text(max_size=12))
texts = st.one_of(
    st.text(),
    awkward_words,
    st.lists(fragments, max_size=80).map(" ".join),  # long enough to be folded
    st.lists(fragments, max_size=12).map("\n".join),  # multi-line: literal blocks
)
numbers = st.integers() | st.floats(allow_nan=False)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars | st.lists(numbers, max_size=60),  # embeddings and token ids: flow sequences
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=30,
)
documents = st.lists(values, min_size=1, max_size=4) | st.dictionaries(texts, values, min_size=1, max_size=4)

many = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def dumped(value):
    try:
        return blockyaml.dump(value)
    except Unsupported:
        return None  # values it can't hold go to PyYAML's emitter; checked separately below


@many
@given(documents)
def test_pyyaml_reads_what_dump_writes_as_the_same_value(value):
    text = dumped(value)
    if text is not None:
        assert yaml.load(text, Loader=Loader) == value


@many
@given(documents)
def test_load_reads_back_what_dump_writes(value):
    text = dumped(value)
    if text is not None:
        assert blockyaml.load(text) == value


@many
@given(documents, st.sampled_from([None, False, True]), st.sampled_from([20, 80, 1000]), st.booleans())
def test_load_refuses_rather_than_misreads_yaml_it_did_not_write(value, flow_style, width, unicode):
    try:
        text = yaml.dump(value, Dumper=Dumper, default_flow_style=flow_style, width=width, allow_unicode=unicode)
    except yaml.YAMLError:
        return
    try:
        read = blockyaml.load(text)
    except Unsupported:
        return
    assert read == value


@pytest.mark.parametrize("value", [(1, 2), b"bytes", {1: "a"}, {"k" * 1500: 1}, "\ud800", object()])
def test_what_it_cannot_hold_is_refused_by_name(value):
    with pytest.raises(Unsupported):
        blockyaml.dump([value])


@pytest.mark.parametrize("value", [0.1, 1e-05, -2.5e300, math.inf, -math.inf, 10**30, -7, True, None])
def test_numbers_booleans_and_null_read_back_as_pyyaml_reads_them(value):
    text = blockyaml.dump({"v": value})
    assert yaml.load(text, Loader=Loader) == {"v": value} == blockyaml.load(text)


def test_nan_reads_back_as_nan():
    text = blockyaml.dump({"v": math.nan})
    assert math.isnan(yaml.load(text, Loader=Loader)["v"]) and math.isnan(blockyaml.load(text)["v"])


def test_it_reads_like_a_cassette_a_person_would_write():
    stream = 'data: {"choices":[]}\n\ndata: [DONE]\n\n'
    prose = " ".join(["Paris is the capital of France, and its largest city by far."] * 4)
    text = blockyaml.dump(
        [{"response": {"status": {"code": 200}, "headers": {"x-ratelimit": "7184", "retry-after": "yes"}, "body": {"sse": stream, "json": {"content": prose, "poem": "one\ntwo\n", "arguments": '{"city": "Paris"}', "tab": "a\tb", "embedding": [0.25, -1.5e-07, 3], "empty": [], "none": {}}}}}]
    )
    assert text.splitlines() == [
        "- response:",
        "    status:",
        "      code: 200",
        "    headers:",
        "      x-ratelimit: '7184'",  # would read as a number unquoted
        "      retry-after: 'yes'",  # would read as a boolean
        "    body:",
        "      sse: |+",
        '        data: {"choices":[]}',
        "",
        "        data: [DONE]",
        "",
        "      json:",
        "        content: Paris is the capital of France, and its largest city by far. Paris is the capital",
        "          of France, and its largest city by far. Paris is the capital of France, and its largest",
        "          city by far. Paris is the capital of France, and its largest city by far.",
        "        poem: |",
        "          one",
        "          two",
        """        arguments: '{"city": "Paris"}'""",  # nothing to escape: single quotes
        '        tab: "a\\tb"',  # an escape needs double quotes
        "        embedding: [0.25, -1.5e-07, 3]",  # numbers: a flow sequence, folded when long
        "        empty: []",
        "        none: {}",
    ]
    assert max(len(line) for line in text.splitlines()) <= 100


@pytest.mark.parametrize(
    "text",
    [
        "- a: 1\n  b: &anchor 2\n",  # YAML it never writes
        "- {a: 1}\n",
        "- 'a' 'b'\n",
        "- [1, 1e5]\n",  # PyYAML reads 1e5 as a string
        "- [1, .inf]\n",
        "- '\u2028  '\n",  # PyYAML's: a raw line separator, which YAML folds
        "- |-\n  a\u2028b\n",
        "- a: |\n    one\n\n",  # clip chomping with a trailing empty line
        "- a:\n",  # a key without a value
        '- "unterminated\n',
        "- a: b\n   c: d\n",
        "\n  a: 1\n",  # an empty first line (once an IndexError: "" is in any str of quotes)
        "a:\n- \n",  # an empty sequence item, likewise
    ],
)
def test_text_it_did_not_write_is_refused(text):
    with pytest.raises(Unsupported):
        blockyaml.load(text)


# -- verbatim JSON (pretty-printed response bodies) ------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=30,
)
json_documents = st.lists(json_values, min_size=1, max_size=4) | st.dictionaries(texts, json_values, min_size=1, max_size=4)


def reads_as_json(text):
    """PyYAML's reading as the cassette module does it: a float without a dot (YAML 1.1 reads a
    string) is the JSON number."""
    from pytest_llmcache.cassette import _parse_yaml

    return _parse_yaml(text)


@many
@given(json_documents, st.sampled_from([2, 4]), st.booleans(), st.sampled_from(["", "- ", "key: "]))
def test_verbatim_json_reads_back_as_the_same_text_and_the_same_document(document, indent, ascii_only, head):
    text = json.dumps(document, indent=indent, ensure_ascii=ascii_only)
    try:
        verbatim = blockyaml.json_text(text)
    except Unsupported:
        return  # stored as a document instead (checked below: only for what YAML reads otherwise)
    value = [verbatim] if head == "- " else {"key": verbatim} if head == "key: " else {"body": {"layout": "x", "json": verbatim}}
    written = blockyaml.dump(value)
    assert blockyaml.load(written, json_text=True) == value  # the exact text back, unparsed
    parsed = blockyaml.load(written)
    assert parsed == reads_as_json(written)
    inner = parsed[0] if head == "- " else parsed["key"] if head == "key: " else parsed["body"]["json"]
    assert json.dumps(inner, indent=indent, ensure_ascii=ascii_only) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{\n  "a": NaN\n}', "NaN is not YAML"),
        ('{\n  "a": Infinity\n}', "nor Infinity"),
        ('{\n  "a": "\\ud83d\\ude00"\n}', "YAML reads each escaped surrogate alone"),
        ('{\n  "a": "\u2028"\n}', "a line separator, folded by YAML 1.1"),
        ('{\n  "a": "\x85"\n}', "NEL, a line break in YAML 1.1"),
        ('{\n\t"a": 1\n}', "a tab"),
        ('{"a": 1}', "not pretty-printed"),
        ('{\n"a": 1\n}', "a member line at the column of the key"),
        ('{\n  "' + "k" * 1100 + '": 1\n}', "a key longer than YAML's implicit keys"),
        ('{\n  "a": 1,\n}', "not JSON"),
    ],
)
def test_json_yaml_would_read_otherwise_is_not_made_verbatim(text, why):
    with pytest.raises(Unsupported):
        blockyaml.json_text(text)


def test_a_float_without_a_dot_is_kept_verbatim_and_read_as_a_number():
    text = '[\n  9e-07,\n  -1.5e-05,\n  1\n]'
    written = blockyaml.dump({"embedding": blockyaml.json_text(text)})
    assert written == "embedding: [\n    9e-07,\n    -1.5e-05,\n    1\n  ]\n"
    assert blockyaml.load(written) == {"embedding": [9e-07, -1.5e-05, 1]}
    assert reads_as_json(written) == {"embedding": [9e-07, -1.5e-05, 1]}  # PyYAML alone: "9e-07"
