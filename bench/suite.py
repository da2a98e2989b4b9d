"""The per-test overhead: a generated suite of one-request tests, run through the plugin and over
an in-memory transport with ``-p no:llmcache``.

    python bench/suite.py make DIR --tests 2000      # write the suite (and its cassettes) into DIR
    python bench/suite.py run DIR plugin|memory [pytest args...]

Every test sends one chat completion through a module-level openai client and checks the reply.
With ``LLMCACHE_BENCH_MODE=plugin`` the client fixture asks for ``llm_cassette`` (the test's own
cassette, record mode none); with ``memory`` the client answers from an in-memory
``httpx2.MockTransport`` and the plugin is not loaded. Both runs collect and run the same tests,
so (plugin - memory) / tests is what the plugin costs a test: fixtures, cassette, patching, the
network guard, the report, and its request replay.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import plugin_api  # noqa: E402
from workload import API_KEY, BASE_URL, Interaction, build_interactions  # noqa: E402

TESTS_PER_FILE = 100

_CONFTEST = '''\
import json
import os
from pathlib import Path

import httpx2
import openai
import pytest

MODE = os.environ["LLMCACHE_BENCH_MODE"]
DATA = json.loads((Path(__file__).parent / "data.json").read_text(encoding="utf-8"))
BODIES = DATA["bodies"]
EXPECTED = DATA["expected"]
_ANSWERS = {{item["request"]: item for item in DATA["answers"]}}


def _answer(request):
    item = _ANSWERS[request.content.decode("utf-8")]
    return httpx2.Response(200, headers=item["headers"], content=item["response"].encode("utf-8"))


if MODE == "plugin":
    _CLIENT = openai.OpenAI(api_key={api_key!r}, base_url={base_url!r}, max_retries=0)

    @pytest.fixture
    def client(llm_cassette):
        return _CLIENT

else:
    _CLIENT = openai.OpenAI(api_key={api_key!r}, base_url={base_url!r}, max_retries=0,
                            http_client=httpx2.Client(transport=httpx2.MockTransport(_answer)))

    @pytest.fixture
    def client():
        return _CLIENT
'''

_TEST = '''\
from conftest import BODIES, EXPECTED


def test_{index}(client):
    reply = client.chat.completions.create(**BODIES[{index}])
    assert reply.choices[0].message.content == EXPECTED[{index}]
'''


def make(directory: Path, tests: int, seed: int = 1234) -> Path:
    """Write a suite of `tests` one-request tests into `directory`, with their cassettes."""
    directory.mkdir(parents=True, exist_ok=True)
    interactions = build_interactions(tests, seed)
    (directory / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n", encoding="utf-8")
    (directory / "conftest.py").write_text(_CONFTEST.format(api_key=API_KEY, base_url=BASE_URL), encoding="utf-8")
    data = {
        "bodies": [interaction.body for interaction in interactions],
        "expected": [interaction.expected_content for interaction in interactions],
        "answers": [{"request": i.request_bytes.decode("utf-8"), "response": i.response_bytes.decode("utf-8"),
                     "headers": i.response_headers} for i in interactions],
    }
    (directory / "data.json").write_text(json.dumps(data), encoding="utf-8")
    for start in range(0, tests, TESTS_PER_FILE):
        module = directory / f"test_gen_{start // TESTS_PER_FILE:03d}.py"
        module.write_text("\n\n".join(_TEST.format(index=index) for index in range(start, min(tests, start + TESTS_PER_FILE))),
                          encoding="utf-8")
        for index in range(start, min(tests, start + TESTS_PER_FILE)):
            plugin_api.write_cassette(plugin_api.default_cassette(directory, module, f"test_{index}"), [interactions[index]])
    check_cassettes(directory, interactions[:CHECKED])
    return directory


CHECKED = 3  # cassettes compared with what the plugin records for the same exchange


def check_cassettes(directory: Path, interactions: list[Interaction]) -> None:
    """Fail loudly unless the suite's first cassettes are byte for byte what the plugin records for
    the same exchanges (written directly, they would otherwise measure a format the plugin no
    longer writes)."""
    recorded = directory / "recorded-check.yaml"
    try:
        for interaction in interactions:
            module = directory / f"test_gen_{interaction.index // TESTS_PER_FILE:03d}.py"
            written = plugin_api.default_cassette(directory, module, f"test_{interaction.index}")
            plugin_api.record_in_memory(recorded, [interaction])
            if written.read_bytes() != recorded.read_bytes():
                raise RuntimeError(f"{written} differs from what the plugin records for the same exchange "
                                   "(bench/plugin_api.py's write_cassette is out of date)")
    finally:
        recorded.unlink(missing_ok=True)


@dataclass
class SuiteRun:
    mode: str
    workers: int
    wall_s: float
    cpu_s: float  # user + system time of pytest and its workers: steadier than wall time on a busy machine
    passed: int
    summary: str


def run(directory: Path, mode: str, workers: int = 0, extra: list[str] | None = None) -> SuiteRun:
    """One pytest run of the generated suite: `mode` plugin or memory, `workers` > 0 for xdist."""
    # cassetter (a peer in the benchmark, installed by the bench extra) has a pytest plugin too: off in both modes
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cassetter"]
    if mode == "memory":
        args += ["-p", "no:llmcache"]
    if workers:
        args += ["-n", str(workers)]
    else:
        args += ["-p", "no:xdist"]
    args += extra or []
    env = {**os.environ, "LLMCACHE_BENCH_MODE": mode, "PYTHONDONTWRITEBYTECODE": "1"}
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_KEY", "AZURE_OPENAI_ENDPOINT"):
        env.pop(name, None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=directory, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    if proc.returncode != 0:
        raise RuntimeError(f"the generated suite failed ({mode}, -n {workers}): {summary}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    passed = int(summary.split(" passed")[0].split()[-1]) if " passed" in summary else 0
    return SuiteRun(mode, workers, wall, cpu, passed, summary)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "make":
        tests = int(argv[argv.index("--tests") + 1]) if "--tests" in argv else 2000
        print(make(Path(argv[1]), tests))
        return 0
    if len(argv) >= 3 and argv[0] == "run":
        result = run(Path(argv[1]), argv[2], extra=argv[3:])
        print(f"{result.mode}: {result.wall_s:.2f} s wall, {result.cpu_s:.2f} s CPU, {result.summary}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
