"""Cassette names can't escape the cassette directory or merge two tests; YAML is read safely and
nothing is ever unpickled."""
from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path, PurePath

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import pytest_llmcache
import tinytroupe
from pytest_llmcache import cassette
from pytest_llmcache.errors import CassetteError
from pytest_llmcache.paths import BadCassettePath, cassette_path

ROOT = Path("/project")
CASSETTES = ROOT / "cassettes"
nasty_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(["..", ".", "/", "\\", "a", "[", "]", "\x00", ":", "~", "C:", " ", "é", "-", "yaml", ".yaml"]), max_size=12).map("".join),
)


def inside(path: Path) -> bool:
    normal = Path(os.path.normpath(path))
    return normal.is_relative_to(CASSETTES) and normal != CASSETTES and normal == path


def check_name(path: Path) -> None:
    assert inside(path), path
    for part in path.relative_to(CASSETTES).parts:
        assert part not in (".", "..") and not part.startswith(".") and "/" not in part and "\\" not in part and "\x00" not in part
        assert len(part) <= 130
    assert path.suffix in (".yaml", ".yml")


@settings(max_examples=300)
@given(test_name=nasty_text, folders=st.lists(nasty_text, max_size=3))
def test_any_test_id_gives_a_cassette_inside_the_directory(test_name, folders):
    module = ROOT.joinpath(*[part.replace("/", "_") or "_" for part in folders], "test_x.py")
    if os.path.normpath(module) != str(module):
        module = ROOT / "test_x.py"
    check_name(cassette_path(CASSETTES, ROOT, module, test_name))


@settings(max_examples=300)
@given(override=nasty_text)
def test_a_relative_marker_cassette_path_stays_inside_the_directory_or_is_refused(override):
    try:
        path = cassette_path(CASSETTES, ROOT, ROOT / "t.py", "x", override)
    except BadCassettePath:
        return
    written = override.replace("\\", "/")  # either separator is read
    if os.path.isabs(written):
        assert path == Path(os.path.normpath(path)) and str(path).startswith(os.path.normpath(written))
    else:
        assert inside(path) and path.suffix in (".yaml", ".yml"), path


@settings(max_examples=300)
@given(first=nasty_text, second=nasty_text)
def test_distinct_test_ids_never_share_a_cassette(first, second):
    if first != second:
        assert cassette_path(CASSETTES, ROOT, ROOT / "t.py", first) != cassette_path(CASSETTES, ROOT, ROOT / "t.py", second)


PARAMETRIZED = '''
import openai, pytest

IDS = ["../../escape", "/etc/passwd", "a/b", "a b", "a_b", "..", "", "C:\\\\win", "x" * 300, "x" * 300 + "y"]

@pytest.mark.parametrize("question", IDS, ids=IDS)
def test_q(llm_cassette, question):
    openai.OpenAI().chat.completions.create(model="m", messages=[{"role": "user", "content": "q:" + question}])
'''


def test_parametrize_ids_with_separators_each_record_their_own_cassette_inside(suite):
    suite.write(PARAMETRIZED)
    suite.live()
    suite.run("--llm-record-mode=once").assert_outcomes(passed=10)
    written = sorted(path for path in suite.pytester.path.rglob("*.yaml"))
    assert len(written) == 10 and all(path.is_relative_to(suite.cassettes / "test_x") for path in written)
    questions = {cassette.load(path)[0]["request"]["body"]["json"]["messages"][0]["content"] for path in written}
    assert len(questions) == 10  # one test per cassette, none overwritten by another
    suite.offline()
    suite.run().assert_outcomes(passed=10)


# -- safe loading only ---------------------------------------------------------------------------

PACKAGES = [Path(pytest_llmcache.__file__).parent, Path(tinytroupe.__file__).parent]
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle", "joblib"}


def modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in package.rglob("*.py"))


def is_safe_loader(loader: object) -> bool:
    return (
        isinstance(loader, type)
        and issubclass(loader, yaml.constructor.SafeConstructor)
        and not issubclass(loader, (yaml.constructor.FullConstructor, yaml.constructor.UnsafeConstructor))
    )


@pytest.mark.parametrize("module", modules(), ids=lambda path: PurePath(path).relative_to(PACKAGES[0].parent).as_posix())
def test_no_module_unpickles_or_loads_yaml_unsafely(module):
    tree = ast.parse(module.read_text(encoding="utf-8"))
    name = ".".join(module.relative_to(PACKAGES[0].parent).with_suffix("").parts).removesuffix(".__init__")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {alias.name.split(".")[0] for alias in node.names} & UNSAFE_MODULES, ast.dump(node)
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in UNSAFE_MODULES, ast.dump(node)
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("Loader") and ast.unparse(node.func) != "getattr":
            # a loader built directly (cassette._parse_yaml does): it must be a safe one
            namespace = vars(importlib.import_module(name))
            assert is_safe_loader(eval(ast.unparse(node.func), dict(namespace))), ast.unparse(node)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
              and node.func.value.id == "yaml"):
            assert node.func.attr not in ("unsafe_load", "unsafe_load_all", "full_load", "full_load_all"), ast.unparse(node)
            if node.func.attr in ("load", "load_all"):
                loader = next((keyword.value for keyword in node.keywords if keyword.arg == "Loader"), None)
                assert loader is not None, ast.unparse(node)
                namespace = vars(importlib.import_module(name))
                assert is_safe_loader(eval(ast.unparse(loader), dict(namespace))), ast.unparse(node)


def test_the_cassette_loader_is_a_safe_loader_that_builds_no_python_object():
    loader = cassette._Loader
    assert is_safe_loader(loader)
    python_tags = sorted(tag for tag in loader.yaml_constructors if tag and tag.startswith("tag:yaml.org,2002:python/"))
    assert python_tags == ["tag:yaml.org,2002:python/str", "tag:yaml.org,2002:python/tuple", "tag:yaml.org,2002:python/unicode"]
    assert not loader.yaml_multi_constructors


@pytest.mark.parametrize(
    "payload",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:os.system ['touch {marker}']",
        "interactions: !!python/object/apply:subprocess.check_call [['touch', '{marker}']]",
        "interactions: [!!python/name:os.system ]",
        "!!python/module:os",
    ],
)
def test_code_in_a_cassette_never_runs(tmp_path, payload):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(payload.format(marker=marker))
    with pytest.raises(CassetteError, match=r"evil\.yaml") as error:
        cassette.load(path)
    assert "not valid YAML" in str(error.value) and not marker.exists()
