"""The package as a user gets it: every module and data file in the wheel, the CLI working.

`.ci/run` installs the wheel built from the checkout (not editable) and sets LLMCACHE_TEST_INSTALLED=1;
the tests marked `installed` then check that what the suite imports is that installed copy.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]
PACKAGES = ("pytest_llmcache", "tinytroupe")
installed = pytest.mark.skipif(
    not os.environ.get("LLMCACHE_TEST_INSTALLED"), reason="checks a wheel install; .ci/run sets LLMCACHE_TEST_INSTALLED=1"
)


def _package_files() -> set[str]:
    """Every file of the packages in the checkout, relative to it (bytecode caches aside)."""
    return {
        path.relative_to(CHECKOUT).as_posix()
        for name in PACKAGES
        for path in (CHECKOUT / name).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_the_build_configuration_covers_every_package_and_data_file() -> None:
    import tomllib

    find_packages = pytest.importorskip("setuptools").find_packages

    config = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set(find_packages(str(CHECKOUT), include=config["packages"]["find"]["include"]))
    on_disk = {path.parent.relative_to(CHECKOUT).as_posix().replace("/", ".") for name in PACKAGES for path in (CHECKOUT / name).rglob("__init__.py")}
    assert on_disk <= found, f"packages left out of the wheel: {sorted(on_disk - found)}"
    data = {name: patterns for name, patterns in config["package-data"].items()}
    for relative in sorted(_package_files()):
        if relative.endswith(".py"):
            continue
        package, _, rest = relative.partition("/")
        assert any(Path(rest).match(pattern) for pattern in data.get(package, ())), f"{relative} is not in package-data"


@installed
def test_the_suite_imports_the_installed_package_not_the_checkout() -> None:
    for name in PACKAGES:
        location = Path(importlib.import_module(name).__file__ or "").resolve()
        assert CHECKOUT not in location.parents, f"{name} was imported from the checkout ({location}), not from the install"


@installed
def test_every_file_of_the_packages_is_installed() -> None:
    distribution = importlib.metadata.distribution("pytest-llmcache")
    files = {file.as_posix() for file in distribution.files or ()}
    assert not any(file.endswith(".pth") for file in files), "an editable install, not a wheel"
    missing = _package_files() - files
    assert not missing, f"left out of the wheel: {sorted(missing)}"


@installed
def test_the_cli_runs_from_the_install(tmp_path: Path) -> None:
    command = shutil.which("llmcache", path=str(Path(sys.executable).parent))
    assert command is not None, "the llmcache script was not installed next to this interpreter"
    cassette = tmp_path / "cassettes" / "test_x.yaml"
    cassette.parent.mkdir()
    cassette.write_text("interactions: []\nversion: 1\n")
    result = subprocess.run([command, "list", "--json", str(cassette.parent)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout), result.stdout
