"""The benchmark's own behaviour (bench/run.py), not its figures: an engine that fails is reported
per engine and size while the others are measured, and small cassettes still get every sample.
Real engines on real files: the plugin and plain vcrpy replaying through the openai SDK."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", BENCH_DIR / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


def _engines(bench: ModuleType, broken_write: object) -> list:
    plugin = next(engine for engine in bench.engines(None, "not raced here") if engine.name == "plugin")
    return [plugin, bench.Engine("vcrpy", broken_write, bench._vcrpy_replaying)]


def _unreadable(path: Path, interactions: list) -> Path:
    """A cassette file vcrpy can't load (it raises when the cassette context is entered)."""
    path.write_text("interactions: [{request: \n", encoding="utf-8")
    return path


def _elsewhere(bench: ModuleType):
    """A well-formed vcrpy cassette of other requests: vcrpy fails on the first replayed call."""
    others = bench.build_interactions(40, seed=99)[20:]
    return lambda path, interactions: bench.write_vcr_cassette(path, others)


@pytest.mark.parametrize(("failure", "error"), [("load", "ParserError"), ("replay", "CannotOverwriteExistingCassetteException")])
def test_a_failing_peer_is_reported_and_the_others_are_measured(bench: ModuleType, tmp_path: Path, capsys, failure: str,
                                                                error: str) -> None:
    settings = bench.Settings(sizes=[10], samples=6, warmup=2)
    interactions = bench.build_interactions(10, settings.seed)
    write = _unreadable if failure == "load" else _elsewhere(bench)
    row = bench.measure_replay(10, interactions, settings, tmp_path, None, _engines(bench, write))

    assert row.vcrpy_ms is None and row.vcrpy_samples == 0
    reason = row.failures["vcrpy"]
    assert reason.startswith(f"{error}: ") and "\n" not in reason  # the error's type and its first line
    assert row.plugin_ms is not None and row.plugin_samples == 6
    assert row.sdk_ms is not None and row.sdk_samples == 6

    bench.print_replay([row])
    out = capsys.readouterr().out
    table_row = next(line for line in out.splitlines() if line.lstrip().startswith("10 "))
    assert "n/a" in table_row
    assert f"N=10: vcrpy n/a: {reason}" in out
    detail = {label: (met, text) for label, met, text in bench.targets([row], None, [], {})}
    assert detail["plugin ahead of vcrpy at N=10"][0] is None


def test_a_cassette_smaller_than_the_sample_is_replayed_until_every_engine_has_its_samples(bench: ModuleType, tmp_path: Path) -> None:
    settings = bench.Settings(sizes=[3], samples=8, warmup=1)
    interactions = bench.build_interactions(3, settings.seed)
    racing = _engines(bench, bench.write_vcr_cassette)
    row = bench.measure_replay(3, interactions, settings, tmp_path, None, racing)

    assert row.failures == {}
    assert (row.plugin_samples, row.vcrpy_samples, row.sdk_samples) == (8, 8, 8)
    # a recording plays once per cassette context: no pass holds an index twice
    passes = bench.cut(bench.cycled([0, 1, 2], 9), 4)
    assert [index for indexes in passes for index in indexes] == [0, 1, 2] * 3
    assert all(len(set(indexes)) == len(indexes) for indexes in passes)


def test_a_part_that_fails_is_named_and_the_run_goes_on(bench: ModuleType, capsys) -> None:
    failed: list[str] = []

    def broken() -> None:
        {}["missing"]

    assert bench.run_part("per-test suite", broken, failed) is None
    assert bench.run_part("API cache", lambda: [1], failed) == [1]
    assert failed == ["per-test suite could not run: KeyError: 'missing'"]
    captured = capsys.readouterr()
    assert "Traceback" in captured.err and "per-test suite FAILED" in captured.out and "API cache done" in captured.out


def test_the_per_test_figures_take_each_modes_fastest_run_and_print_every_rounds_extra(bench: ModuleType, capsys) -> None:
    """A burst of the machine's noise slows one run down; it must not move the figure (the fastest
    run is taken, as timeit does) and is still shown in the spread of the rounds."""
    fits = {}
    for mode, per_test_s, noisy_round in (("plugin", 0.0030, 1), ("memory", 0.0025, 2)):
        for suffix, workers in (("", 0), (" -n 2", 2)):
            fit = bench.SuiteFit(mode, workers)
            for round_ in range(3):
                burst = 2.0 if round_ == noisy_round else 0.0
                fit.big_s.append(1.0 + 2000 * per_test_s + burst)
                fit.small_s.append(1.0 + 200 * per_test_s)
                fit.big_cpu_s.append(fit.big_s[-1])
                fit.small_cpu_s.append(fit.small_s[-1])
            fit.fit(2000, 200)
            fits[mode + suffix] = fit
    per_test = bench.PerTest(2000, 200, True, fits)
    assert per_test.extra_ms() == pytest.approx(0.5)
    assert per_test.per_test_ms == pytest.approx(0.5)
    assert per_test.per_test_cpu_ms == pytest.approx(0.5)
    bench.print_per_test(per_test)
    out = capsys.readouterr().out
    assert "fastest of 3 runs" in out
    assert "sorted: -0.61, 0.50, 1.61 ms" in out
