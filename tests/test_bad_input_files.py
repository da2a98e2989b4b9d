"""What is not a cassette file is refused at once with the file named: FIFOs, devices, folders
and files over the size limit, in the plugin and in the ``llmcache`` command."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llmcache import cassette
from pytest_llmcache.errors import CassetteError

# Only a guard against hanging the suite on a FIFO, not a timing assertion.
HANG_GUARD = 60


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


def test_a_fifo_is_refused_without_waiting_for_a_writer(fifo):
    with pytest.raises(CassetteError, match=r"pipe\.yaml can't be used: it is not a regular file but a FIFO"):
        cassette.load(fifo)


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a character device"), ("/dev/null", "a character device")])
def test_a_device_is_refused_before_anything_is_read(path, kind):
    if not os.path.exists(path):
        pytest.skip(f"no {path} here")
    with pytest.raises(CassetteError, match=f"{path} can't be used: it is not a regular file but {kind}"):
        cassette.load_entries(path)


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(CassetteError, match="it is not a regular file but a folder"):
        cassette.load(tmp_path)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as handle:
        handle.truncate(cassette.MAX_CASSETTE_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(CassetteError, match=r"huge\.yaml can't be used: it is 268,435,457 bytes, over the 268,435,456-byte limit"):
        cassette.load(huge)


@pytest.mark.parametrize("target", ["fifo", "/dev/zero"])
def test_llmcache_show_names_the_file_and_exits_2(fifo, target):
    path = str(fifo) if target == "fifo" else target
    run = subprocess.run([sys.executable, "-m", "pytest_llmcache.cli", "show", path], capture_output=True, text=True, timeout=HANG_GUARD)
    assert run.returncode == 2
    assert f"llmcache show: {path}: it is not a regular file" in run.stderr
    assert "Traceback" not in run.stderr and "MemoryError" not in run.stderr


def test_a_fifo_as_a_test_cassette_fails_that_test_with_the_file_named(pytester, fifo):
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.llm(cassette={str(fifo)!r})
        def test_fifo(llm_cassette): pass

        def test_other(): pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=HANG_GUARD)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*cassette {fifo} can't be used: it is not a regular file but a FIFO*"])


# -- YAML error positions are lines of the file ---------------------------------------------------


def two_interaction_cassette(path: Path) -> list[str]:
    interaction = {
        "request": {"method": "POST", "uri": "https://api.openai.test/v1/chat/completions", "headers": {},
                    "body": {"json": {"model": "m"}, "layout": "compact"}},
        "response": {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": "hi"}},
    }
    cassette.save(path, [interaction, interaction])
    return path.read_text().splitlines(keepends=True)


def test_a_yaml_error_on_line_6_says_line_6(tmp_path):
    path = tmp_path / "c.yaml"
    lines = two_interaction_cassette(path)
    assert lines[5] == "    method: POST\n"
    lines[5] = "    method: POST: again\n"
    path.write_text("".join(lines))
    with pytest.raises(CassetteError, match=r"(?s)interaction #0 is not valid YAML: .*line 6, column") as error:
        cassette.load(path)
    assert "line 2," not in str(error.value)


def test_every_broken_line_of_every_interaction_is_reported_at_its_own_line(tmp_path):
    path = tmp_path / "c.yaml"
    lines = two_interaction_cassette(path)
    checked = 0
    for number, line in enumerate(lines, 1):
        if line.startswith("#") or ": " not in line:
            continue
        broken = [*lines]
        broken[number - 1] = line.rstrip("\n") + ": x\n"  # "mapping values are not allowed here"
        path.write_text("".join(broken))
        with pytest.raises(CassetteError) as error:
            cassette.load(path)
        assert f"line {number}, column" in str(error.value), (number, str(error.value))
        checked += 1
    assert checked >= 18


def test_a_broken_response_read_on_replay_is_reported_at_its_file_line(tmp_path):
    lines = two_interaction_cassette(tmp_path / "c.yaml")
    chunk = "".join(lines[20:35]).replace("      message: OK\n", "      message: OK: no\n")
    entry = cassette.Entry(tmp_path / "c.yaml", 1, chunk, line=20)  # the second interaction: file lines 21-35
    with pytest.raises(CassetteError, match=r"(?s)interaction #1 is not valid YAML: .*line 32, column"):
        entry.replay()
