"""llm_cassette's settings are fixtures a project overrides: in a conftest, a module, a class, or by
parametrizing one in a test. llm_cassette computes a setting that is not overridden itself (pytest's
fixture machinery is most of a replaying test's cost), so each way of overriding is checked here,
next to a sibling that must keep the default."""
from __future__ import annotations

import pytest

from conftest import InnerSuite

CONFTEST_IN_FOLDER = """
import pytest

@pytest.fixture
def llm_record_mode():
    return "new_episodes"
"""

FOLDER_TESTS = """
def test_folder_override(llm_cassette, out):
    out(llm_cassette.mode)
"""

MODULE_TESTS = """
import os
import pytest

@pytest.fixture
def llm_cassette_dir(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "elsewhere"

@pytest.fixture
def llm_placeholder_env():
    return {"LLMCACHE_TEST_PLACEHOLDER": "placeholder-value"}

def test_module_override(llm_cassette, out):
    out([llm_cassette.path.parents[1].name, os.environ.get("LLMCACHE_TEST_PLACEHOLDER")])

class TestWithOwnRules:
    @pytest.fixture
    def llm_ignore(self, llm_ignore):
        return [*llm_ignore, "GET example.test/telemetry"]

    @pytest.fixture
    def llm_ignore_fields(self):
        return ["metadata.run"]

    def test_class_override(self, llm_cassette, out):
        out([[rule.text for rule in llm_cassette.ignore.rules][-1], [path.text for path in llm_cassette.normalize.fields]])

class TestSibling:
    def test_class_sibling(self, llm_cassette, out):
        out([[rule.text for rule in llm_cassette.ignore.rules][-1], list(llm_cassette.normalize.fields)])
"""

DEFAULT_TESTS = """
import os
import pytest

def test_defaults(llm_cassette, out):
    out([llm_cassette.mode, llm_cassette.path.parents[1].name, os.environ.get("LLMCACHE_TEST_PLACEHOLDER")])

@pytest.mark.parametrize("llm_record_mode", ["all"])
def test_parametrized(llm_cassette, llm_record_mode, out):
    out(llm_cassette.mode)

def test_requested_scrubber_is_the_cassettes(llm_scrubber, llm_cassette, out):
    out(llm_cassette.scrubber is llm_scrubber)

@pytest.fixture
def named(request):
    request.applymarker(pytest.mark.llm(cassette="added/at_run_time.yaml"))

def test_marker_added_at_run_time(named, llm_cassette, out):
    out(llm_cassette.path.relative_to(llm_cassette.path.parents[1]).as_posix())
"""


def test_each_way_of_overriding_a_setting_reaches_the_cassette_and_only_its_tests(suite: InnerSuite) -> None:
    suite.pytester.mkdir("special")
    (suite.pytester.path / "special" / "conftest.py").write_text(CONFTEST_IN_FOLDER)
    (suite.pytester.path / "special" / "test_in_folder.py").write_text(FOLDER_TESTS)
    suite.write(MODULE_TESTS, name="test_module_level")
    suite.write(DEFAULT_TESTS, name="test_defaults_here")
    suite.run().assert_outcomes(passed=8)
    seen = suite.read_outputs()
    assert seen == {
        "special/test_in_folder.py::test_folder_override": "new_episodes",
        "test_module_level.py::test_module_override": ["elsewhere", "placeholder-value"],
        "test_module_level.py::TestWithOwnRules::test_class_override": ["GET example.test/telemetry", ["metadata.run"]],
        "test_module_level.py::TestSibling::test_class_sibling": ["logfire-*.pydantic.dev", []],
        "test_defaults_here.py::test_defaults": ["none", "cassettes", None],
        "test_defaults_here.py::test_parametrized[all]": "all",
        "test_defaults_here.py::test_requested_scrubber_is_the_cassettes": True,
        "test_defaults_here.py::test_marker_added_at_run_time": "added/at_run_time.yaml",
    }


@pytest.mark.parametrize("order", ["overriding first", "default first"])
def test_a_collector_overriding_a_setting_does_not_leak_into_the_next(suite: InnerSuite, order: str) -> None:
    """What is looked up once per collector must not carry over between modules of the same folder."""
    overriding = 'import pytest\n\n@pytest.fixture\ndef llm_record_mode():\n    return "once"\n\ndef test_x(llm_cassette, out):\n    out(llm_cassette.mode)\n'
    plain = "def test_x(llm_cassette, out):\n    out(llm_cassette.mode)\n"
    first, second = (overriding, plain) if order == "overriding first" else (plain, overriding)
    suite.write(first, name="test_a")
    suite.write(second, name="test_b")
    suite.run("-p", "no:randomly").assert_outcomes(passed=2)
    assert suite.read_outputs() == {"test_a.py::test_x": "once" if first is overriding else "none", "test_b.py::test_x": "once" if second is overriding else "none"}


PARAMETRIZING_TESTS = """
import pytest

class TestOverriddenWithParams:
    @pytest.fixture(params=["none", "new_episodes"])
    def llm_record_mode(self, request):
        return request.param

    def test_params(self, llm_cassette, out):
        out(llm_cassette.mode)

@pytest.mark.parametrize(["llm_record_mode", "n"], [("once", 1)])
def test_listed_names(llm_cassette, n, out):
    out(llm_cassette.mode)

@pytest.mark.parametrize("n , llm_record_mode", [(2, "all")])
def test_spaced_names(llm_cassette, n, out):
    out(llm_cassette.mode)

@pytest.mark.parametrize("n", [3])
def test_other_names(llm_cassette, n, out):
    out(llm_cassette.mode)
"""

GENERATING_CONFTEST = """
def pytest_generate_tests(metafunc):
    if "llm_record_mode" in metafunc.fixturenames and metafunc.function.__name__ == "test_by_hook":
        metafunc.parametrize("llm_record_mode", ["rewrite"])
"""


def test_every_way_of_parametrizing_a_setting_reaches_the_cassette(suite: InnerSuite) -> None:
    """The settings are in a test's closure while tests are generated only when something may
    parametrize them (a marker naming one, a fixture override with params, a project's hook): each
    of those still parametrizes the cassette, and a test parametrizing other names keeps the default."""
    suite.write(PARAMETRIZING_TESTS, name="test_parametrizing")
    suite.run("-p", "no:randomly").assert_outcomes(passed=5)
    assert suite.read_outputs() == {
        "test_parametrizing.py::TestOverriddenWithParams::test_params[none]": "none",
        "test_parametrizing.py::TestOverriddenWithParams::test_params[new_episodes]": "new_episodes",
        "test_parametrizing.py::test_listed_names[once-1]": "once",
        "test_parametrizing.py::test_spaced_names[2-all]": "all",
        "test_parametrizing.py::test_other_names[3]": "none",
    }


def test_a_projects_generate_tests_hook_still_sees_and_parametrizes_the_settings(suite: InnerSuite) -> None:
    conftest = suite.pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + GENERATING_CONFTEST)
    suite.write("def test_by_hook(llm_cassette, out):\n    out(llm_cassette.mode)\n\ndef test_plain(llm_cassette, out):\n    out(llm_cassette.mode)\n", name="test_hooked")
    suite.run("-p", "no:randomly").assert_outcomes(passed=2)
    assert suite.read_outputs() == {"test_hooked.py::test_by_hook[rewrite]": "rewrite", "test_hooked.py::test_plain": "none"}
