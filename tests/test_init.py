"""``llmcache init``: one command sets a project up, its example passes offline at once, and
nothing a project already has is replaced."""
from __future__ import annotations

import configparser
import json

import pytest

from pytest_llmcache.cli import main


def init(path, *extra: str) -> int:
    return main(["init", str(path), *extra])


def test_init_in_an_empty_folder_gives_a_suite_that_passes_offline(pytester, monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_KEY", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert init(pytester.path) == 0
    ini = configparser.ConfigParser()
    ini.read(pytester.path / "pytest.ini")
    assert dict(ini["pytest"]) == {"llm_record_mode": "none", "llm_cassette_dir": "cassettes"}
    assert {".pytest_cache/", "*.bak", ".llmcache.lock"} <= set((pytester.path / ".gitignore").read_text().splitlines())
    assert (pytester.path / "cassettes" / "tests" / "test_llmcache_example" / "test_capital.yaml").is_file()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")  # no key, no server: replay only
    result.assert_outcomes(passed=1)
    assert "1 replayed, 0 recorded, 0 missing" in result.stdout.str()
    strict = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--llm-strict")
    strict.assert_outcomes(passed=1)


def test_running_init_twice_changes_nothing(tmp_path, capsys):
    assert init(tmp_path) == 0
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    capsys.readouterr()
    assert init(tmp_path, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert {change["action"] for change in report["changes"]} == {"kept"}
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


def test_an_existing_pytest_ini_keeps_every_line_and_its_own_values(tmp_path):
    original = "[pytest]\n# our settings\naddopts = -ra\nllm_cassette_dir = recordings\n\n[other]\nx = 1\n"
    (tmp_path / "pytest.ini").write_text(original)
    assert init(tmp_path) == 0
    text = (tmp_path / "pytest.ini").read_text()
    assert text == "[pytest]\n# our settings\naddopts = -ra\nllm_cassette_dir = recordings\nllm_record_mode = none\n\n[other]\nx = 1\n"
    assert (tmp_path / "recordings" / "tests" / "test_llmcache_example" / "test_capital.yaml").is_file()  # its directory, not ours


def test_pyproject_with_a_pytest_table_gets_the_keys_in_that_table(tmp_path):
    original = '[project]\nname = "demo"\n\n[tool.pytest.ini_options]\ntestpaths = [\n  "tests",\n]\n\n[tool.ruff]\nline-length = 100\n'
    (tmp_path / "pyproject.toml").write_text(original)
    assert init(tmp_path) == 0
    tomllib = pytest.importorskip("tomllib")
    document = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert document["tool"]["pytest"]["ini_options"] == {"testpaths": ["tests"], "llm_record_mode": "none", "llm_cassette_dir": "cassettes"}
    assert document["tool"]["ruff"] == {"line-length": 100} and document["project"] == {"name": "demo"}
    assert not (tmp_path / "pytest.ini").exists()


def test_setup_cfg_with_a_pytest_section_gets_the_keys_there(tmp_path):
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = demo\n[tool:pytest]\naddopts = -q\n")
    assert init(tmp_path) == 0
    parser = configparser.ConfigParser()
    parser.read(tmp_path / "setup.cfg")
    assert dict(parser["tool:pytest"]) == {"addopts": "-q", "llm_record_mode": "none", "llm_cassette_dir": "cassettes"}
    assert dict(parser["metadata"]) == {"name": "demo"} and not (tmp_path / "pytest.ini").exists()


def test_a_pyproject_without_a_pytest_table_is_left_alone_for_a_new_pytest_ini(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    assert init(tmp_path) == 0
    assert (tmp_path / "pyproject.toml").read_text() == '[project]\nname = "demo"\n'
    assert (tmp_path / "pytest.ini").is_file()


def test_gitignore_lines_are_appended_once_after_what_is_there(tmp_path):
    (tmp_path / ".gitignore").write_text("__pycache__/\n*.bak")  # no final newline
    assert init(tmp_path, "--no-example") == 0
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["__pycache__/", "*.bak"] and lines.count("*.bak") == 1 and lines.count(".pytest_cache/") == 1


def test_existing_files_are_never_overwritten(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "conftest.py").write_text("# ours\n")
    (tmp_path / "tests" / "test_llmcache_example.py").write_text("# ours too\n")
    assert init(tmp_path) == 0
    assert (tmp_path / "tests" / "conftest.py").read_text() == "# ours\n"
    assert (tmp_path / "tests" / "test_llmcache_example.py").read_text() == "# ours too\n"


@pytest.mark.parametrize(("name", "text"), [("pytest.ini", "[pytest\naddopts = -q\n"), ("pyproject.toml", "[tool.pytest.ini_options]\nx = = 1\n")])
def test_a_broken_config_file_is_named_and_left_as_it_was(tmp_path, capsys, name, text):
    (tmp_path / name).write_text(text)
    assert init(tmp_path) == 2
    assert name in capsys.readouterr().err
    assert (tmp_path / name).read_text() == text and not (tmp_path / ".gitignore").exists()


@pytest.mark.parametrize("original", ["", "# settings come later\n", "[other]\nx = 1"])
def test_a_pytest_ini_without_its_section_gets_one(tmp_path, original):
    (tmp_path / "pytest.ini").write_text(original)
    assert init(tmp_path, "--no-example") == 0
    text = (tmp_path / "pytest.ini").read_text()
    assert text.startswith(original)
    parser = configparser.ConfigParser()
    parser.read_string(text)
    assert dict(parser["pytest"]) == {"llm_record_mode": "none", "llm_cassette_dir": "cassettes"}
