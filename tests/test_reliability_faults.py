"""Nothing lost: SIGKILL at random moments (scripts/fault_injection.py); the atomic write itself is in test_atomic_writes.py."""
from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import builders
from pytest_llmcache import cassette
from pytest_llmcache.errors import CassetteError

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "fault_injection.py"


def interaction(text: str) -> dict:
    return builders.interaction({"string": text}, {"string": text}, uri="https://api.openai.test/v1/x")


def load_script():
    spec = importlib.util.spec_from_file_location("fault_injection", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fault_injection"] = module
    spec.loader.exec_module(module)
    return module


def test_the_fault_injection_script_kills_recordings_and_finds_nothing_lost():
    result = subprocess.run([sys.executable, str(SCRIPT), "--trials", "3", "--seed", "11"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 trials" in result.stdout and "failures: 0" in result.stdout
    assert "files checked: 0" not in result.stdout


def test_the_checker_reports_a_half_written_cassette_and_a_lost_cache_entry(tmp_path):
    script = load_script()
    folder = tmp_path / "cassettes"
    folder.mkdir()
    complete = cassette.dumps([interaction("a"), interaction("b")])
    (folder / "c0.yaml").write_text(complete[: len(complete) // 2])
    state = script.State()
    state.last_saved[0] = hashlib.sha256(complete.encode()).hexdigest()
    state.cached.add("cache 0-0")
    (tmp_path / "cache.sqlite3").write_bytes(b"")  # a new, empty cache: the entry reported cached is gone
    script.check(tmp_path, 0, {}, set(), state)
    assert any("c0.yaml does not load" in failure for failure in state.failures)
    assert any("neither its last saved version" in failure for failure in state.failures)
    assert any("API cache lost 1 entries" in failure for failure in state.failures)


def test_a_corrupt_backup_message_does_not_suggest_a_backup_of_the_backup(tmp_path):
    path = tmp_path / "c.yaml.bak"
    path.write_text("interactions: [")
    with pytest.raises(CassetteError) as error:
        cassette.load(path)
    assert ".bak.bak" not in str(error.value) and "c.yaml.bak" in str(error.value)


def test_processes_recording_one_shared_cassette_killed_at_random_lose_nothing():
    script = SCRIPT.with_name("fault_injection_shared.py")
    result = subprocess.run([sys.executable, str(script), "--trials", "2", "--seed", "5"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 trials" in result.stdout and "failures: 0" in result.stdout
    assert "recordings reported saved: 0" not in result.stdout
