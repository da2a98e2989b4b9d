"""Cassette file names from test ids, paths written in the marker, and the llm marker's validation."""
from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmcache.paths import BadCassettePath, cassette_path, safe_name

ROOT = Path("/project")
CASSETTES = ROOT / "cassettes"


@pytest.mark.parametrize(
    ("test_name", "expected"),
    [
        ("test_a", "test_a.yaml"),
        ("TestX.test_a[openai]", "TestX.test_a[openai].yaml"),
        ("test_a[../../etc/passwd]", "test_a[.._.._etc_passwd]-a19b883f.yaml"),  # changed names get a digest
        ("test_a[a b:c*?]", "test_a[a_b_c_]-6665bf91.yaml"),
    ],
)
def test_names_are_safe_and_stay_in_the_module_folder(test_name, expected):
    path = cassette_path(CASSETTES, ROOT, ROOT / "tests" / "test_x.py", test_name)
    assert path == CASSETTES / "tests" / "test_x" / expected


def test_a_marker_cassette_path_is_used_as_written():
    assert cassette_path(CASSETTES, ROOT, ROOT / "t.py", "x", "/data/imported/chat.yaml") == Path("/data/imported/chat.yaml")
    assert cassette_path(CASSETTES, ROOT, ROOT / "t.py", "x", "shared/a.yml") == CASSETTES / "shared" / "a.yml"
    assert cassette_path(CASSETTES, ROOT, ROOT / "t.py", "x", "shared/a") == CASSETTES / "shared" / "a.yaml"
    assert cassette_path(CASSETTES, ROOT, ROOT / "t.py", "x", "a b [c].yaml") == CASSETTES / "a b [c].yaml"  # not made "safe"
    long_name = "pydanticai-" + "x" * 180 + ".yaml"  # imported cassettes often have long names
    assert cassette_path(CASSETTES, ROOT, ROOT / "t.py", "x", f"imported/{long_name}") == CASSETTES / "imported" / long_name
    assert cassette_path(CASSETTES, ROOT, Path("/elsewhere/test_y.py"), "t") == CASSETTES / "test_y" / "t.yaml"


def test_an_existing_file_named_without_a_yaml_suffix_is_used_as_it_is(tmp_path):
    (tmp_path / "imported").mkdir()
    (tmp_path / "imported" / "chat.cassette").write_text("")
    assert cassette_path(tmp_path, ROOT, ROOT / "t.py", "x", "imported/chat.cassette") == tmp_path / "imported" / "chat.cassette"
    assert cassette_path(tmp_path, ROOT, ROOT / "t.py", "x", "imported/new") == tmp_path / "imported" / "new.yaml"


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("../../outside.yaml", "leaves the cassette directory"),
        ("shared/../../x.yaml", "leaves the cassette directory"),
        ("", "empty"),
        ("shared/", "names a folder"),
        ("a\0b.yaml", "NUL"),
        ("y" * 300 + ".yaml", "longer than the file system allows"),
    ],
)
def test_a_marker_cassette_path_that_cannot_be_used_says_why(written, problem):
    with pytest.raises(BadCassettePath, match=problem):
        cassette_path(CASSETTES, ROOT, ROOT / "t.py", "x", written)


def test_long_names_are_bounded_and_distinct():
    first, second = safe_name("test_" + "a" * 300 + "1"), safe_name("test_" + "a" * 300 + "2")
    assert len(first) <= 120 and first != second
    assert safe_name("..") == "_-e6fc5bb9" and safe_name(".hidden") == "hidden-40f24634"


BAD_MARKERS = """
import pytest

@pytest.mark.llm(api_types=5)
def test_types_int(llm_client): pass

@pytest.mark.llm(api_types="azure")
def test_types_str(llm_client): pass

@pytest.mark.llm(api_types=["openai", "bedrock"])
def test_types_item(llm_client): pass

@pytest.mark.llm(cache="yes")
def test_cache(llm_cassette): pass

@pytest.mark.llm(cassette=5)
def test_cassette_int(llm_cassette): pass

@pytest.mark.llm(cassette="../outside.yaml")
def test_cassette_escapes(llm_cassette): pass

@pytest.mark.llm(record_mode=["once"])
def test_mode(llm_cassette): pass

@pytest.mark.llm("azure")
def test_positional(llm_cassette): pass

def test_unaffected(): pass
"""


def test_every_bad_marker_argument_is_an_error_of_its_test_only_naming_it(pytester):
    pytester.makepyfile(BAD_MARKERS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=8)
    output = result.stdout.str()
    for line in (
        "test_every_bad_marker_argument_is_an_error_of_its_test_only_naming_it.py::test_types_int: "
        "llm marker argument api_types=5 must be a list such as ['openai', 'azure']",
        "::test_types_str: llm marker argument api_types='azure' must be a list such as ['openai', 'azure']; "
        "for one API type write api_type='azure'",
        "::test_types_item: llm marker argument api_types item='bedrock' is not one of 'openai', 'azure'",
        "::test_cache: llm marker argument cache='yes' must be True or False",
        "::test_cassette_int: llm marker argument cassette=5 must be a path",
        "::test_cassette_escapes: llm marker argument cassette='../outside.yaml' can't be used: it leaves the cassette directory",
        "::test_mode: llm marker argument record_mode=['once'] is not one of 'none', 'once'",
        "::test_positional: llm marker argument 'azure' is positional",
    ):
        assert line in output, line
    assert "TypeError" not in output and "Traceback" not in output and "api type 'a'" not in output


def test_bad_marker_arguments_are_usage_errors(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.llm(api_type="bedrock")
        def test_a(llm_cassette): pass

        @pytest.mark.llm(colour="red")
        def test_b(llm_cassette): pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*api_type='bedrock' is not one of 'openai', 'azure'*", "*llm marker argument colour is unknown*"])


def test_markers_are_documented(pytester):
    pytester.runpytest("--markers").stdout.fnmatch_lines(["@pytest.mark.llm(api_type=None, api_types=None, cache=False, cassette=None, record_mode=None, ignore_fields=())*"])


LONG_NAME = "pydanticai-" + "imported_cassette_with_a_long_descriptive_name_" * 3 + ".yaml"
ASK = """
import openai, pytest

@pytest.mark.llm(cassette={cassette!r})
def test_ask(llm_cassette):
    reply = openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
    assert reply.choices[0].message.content
"""


def test_an_existing_cassette_with_a_long_name_is_replayed_from_where_it_is(suite):
    suite.live()
    suite.write(ASK.format(cassette="short.yaml"))
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    imported = suite.cassettes / "imported" / LONG_NAME
    imported.parent.mkdir()
    (suite.cassettes / "short.yaml").rename(imported)  # as `llmcache import` would name it
    suite.offline()
    suite.write(ASK.format(cassette=f"imported/{LONG_NAME}"))
    result = suite.run()
    result.assert_outcomes(passed=1)
    assert sorted(path.name for path in suite.cassettes.rglob("*.yaml")) == [LONG_NAME]


def test_an_absolute_cassette_path_is_used_as_it_is(suite, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "recordings" / "chat.yaml"
    suite.live()
    suite.write(ASK.format(cassette=str(elsewhere)))
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    assert elsewhere.is_file() and not list(suite.pytester.path.rglob("*.yaml"))
    suite.offline()
    suite.run().assert_outcomes(passed=1)
