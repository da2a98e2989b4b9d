"""Cassette file names from test ids, and the llm marker's validation."""
from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmcache.paths import cassette_path, safe_name

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


def test_marker_cassette_names_cannot_escape_the_directory():
    assert cassette_path(CASSETTES, ROOT, ROOT / "t.py", "x", "../../outside") == CASSETTES / "outside.yaml"
    assert cassette_path(CASSETTES, ROOT, ROOT / "t.py", "x", "/etc/passwd") == CASSETTES / "etc" / "passwd.yaml"
    assert cassette_path(CASSETTES, ROOT, ROOT / "t.py", "x", "shared/a.yml") == CASSETTES / "shared" / "a.yml"
    assert cassette_path(CASSETTES, ROOT, Path("/elsewhere/test_y.py"), "t") == CASSETTES / "test_y" / "t.yaml"


def test_long_names_are_bounded_and_distinct():
    first, second = safe_name("test_" + "a" * 300 + "1"), safe_name("test_" + "a" * 300 + "2")
    assert len(first) <= 120 and first != second
    assert safe_name("..") == "_-e6fc5bb9" and safe_name(".hidden") == "hidden-40f24634"


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
    result.stdout.fnmatch_lines(["*api type 'bedrock' is not one of openai, azure*", "*unknown llm marker argument(s) colour*"])


def test_markers_are_documented(pytester):
    pytester.runpytest("--markers").stdout.fnmatch_lines(["@pytest.mark.llm(api_type=None, api_types=None, cache=False, cassette=None, record_mode=None)*"])
