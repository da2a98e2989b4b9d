#!/usr/bin/env python
"""Kill recording processes at random moments; check that no cassette or cache entry is lost.

Each trial starts a child process that records OpenAI calls against the fake server
(tests/fakeopenai.py) forever, the way the plugin does: an `LLMCassette` in mode ``rewrite``
(large bodies, up to ~2 MB a cassette) or ``new_episodes`` (files that grow, written back
through the lazy index), the calls made with the openai SDK and with tinytroupe's client whose
SQLite API cache is on. The child reports each step on stdout *before* and *after* it happens
(``saving <slot> <sha256 of the text>``, ``saved ...``, ``cached <prompt>``). The parent SIGKILLs
it after a random delay (in most trials: a few milliseconds into a save or a cached call, to
hit writes often), then checks every file:

- each cassette loads, and is byte for byte either the last version reported saved or the one
  being saved when the process died (nothing half-written, nothing older);
- each ``.bak`` loads and is one of the complete versions saved before;
- the API cache opens, passes SQLite's integrity check and holds every entry reported cached;
- no file holds the live key the child records with.

Usage: ``python scripts/fault_injection.py --trials 50 [--seed N] [--max-delay 1.5] [--keep DIR]``.
Prints a summary and exits 1 if anything was lost or unreadable.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLOTS = 4  # cassettes written in turn; even slots are rewritten whole, odd ones grow
LIVE_KEY = "sk-live-fault-injection-0123456789abcdef"
SIZES = (2_000, 60_000, 400_000, 1_000_000)  # characters of the big prompt (echoed back: about twice that on disk)


# -- the child: records forever --------------------------------------------------------------


def child(work: Path, trial: int, seed: int) -> None:
    import openai

    from pytest_llmcache import cassette as cassette_file
    from pytest_llmcache.recorder import LLMCassette
    from tinytroupe.openai_utils import OpenAIClient

    rng = random.Random(seed)
    sdk = openai.OpenAI(max_retries=0)
    library = OpenAIClient(cache_api_calls=True, cache_file_name=str(work / "cache.sqlite3"))
    say("ready")
    step = 0
    while True:
        slot = step % SLOTS
        path = work / "cassettes" / f"c{slot}.yaml"
        growing = slot % 2 == 1
        size = 200 if growing else rng.choice(SIZES)
        with LLMCassette.use(path=path, record_mode="new_episodes" if growing else "rewrite", test_id=f"c{slot}") as cassette:
            content = f"{trial}-{step}:" + "x" * size
            sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": content}])
            prompt = f"cache {trial}-{step}"
            say(f"caching {prompt}")
            assert library.send_message([{"role": "user", "content": prompt}]) is not None
            say(f"cached {prompt}")
        interactions = (cassette.loaded + cassette.recorded) if growing else cassette.recorded
        started = time.perf_counter()
        text = cassette_file.dumps(interactions).encode("utf-8")
        serialising = time.perf_counter() - started  # save() spends about as long before it writes
        say(f"saving {slot} {hashlib.sha256(text).hexdigest()} {len(text)} {serialising:.4f}")
        cassette.save()
        say(f"saved {slot} {hashlib.sha256(text).hexdigest()}")
        step += 1


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# -- the parent: kills and checks ----------------------------------------------------------


@dataclass
class State:
    last_saved: dict[int, str | None] = field(default_factory=lambda: {slot: None for slot in range(SLOTS)})
    versions: dict[int, set[str]] = field(default_factory=lambda: {slot: set() for slot in range(SLOTS)})
    cached: set[str] = field(default_factory=set)
    trials: int = 0
    kills_during_save: int = 0
    kills_during_cache: int = 0
    files_checked: int = 0
    temporaries: dict[str, int] = field(default_factory=dict)  # left by a kill -> its cassette slot
    saves: int = 0
    failures: list[str] = field(default_factory=list)


def _temporary_present(folder: Path) -> bool:
    """Whether a save's temporary file is in `folder` (which the first save creates)."""
    try:
        return any(entry.name.endswith(".tmp") for entry in os.scandir(folder))
    except FileNotFoundError:
        return False


def run_trial(work: Path, env: dict[str, str], trial: int, rng: random.Random, max_delay: float, state: State) -> None:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(work), str(trial), str(rng.randrange(2**32))]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=work)
    lines: list[str] = []
    ready, saving, caching = threading.Event(), threading.Event(), threading.Event()
    serialising = [0.0]
    # 40% of the trials kill at a uniformly random moment; 45% aim at the n-th save of a big
    # cassette (2 MB take ~40 ms to serialise, then a few ms to write, fsync, link and rename);
    # 15% at the n-th API call about to be cached (an HTTP exchange, then one SQLite transaction).
    aim = rng.choices(["random", "save", "cache"], [0.40, 0.45, 0.15])[0]
    nth = rng.randint(1, 4)

    def read() -> None:
        saves = caches = 0
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line.rstrip("\n"))
            if line.startswith("ready"):
                ready.set()
            elif line.startswith("saving ") and int(line.split()[3]) > 500_000:
                saves += 1
                if saves == nth:
                    serialising[0] = float(line.split()[4])
                    saving.set()
            elif line.startswith("caching "):
                caches += 1
                if caches == nth:
                    caching.set()
        ready.set()
        saving.set()
        caching.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not ready.wait(60) or process.poll() is not None:
        process.kill()
        state.failures.append(f"trial {trial}: the recording process did not start: {process.stderr.read()[-2000:]}")  # type: ignore[union-attr]
        return
    if aim == "save":
        saving.wait(60)
        if rng.random() < 0.3:  # while the text is made
            time.sleep(rng.uniform(0, serialising[0]))
        else:  # once the temporary file appears: while it is written, synced, renamed, the .bak made
            deadline = time.perf_counter() + 2
            while time.perf_counter() < deadline and not _temporary_present(work / "cassettes"):
                pass
            time.sleep(rng.uniform(0, 0.005))
    elif aim == "cache":
        caching.wait(60)
        time.sleep(rng.uniform(0, 0.02))
    else:
        time.sleep(rng.uniform(0, max_delay))
    alive = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    reader.join(10)
    errors = process.stderr.read()  # type: ignore[union-attr]
    if not alive:
        state.failures.append(f"trial {trial}: the recording process died before it was killed:\n{errors[-3000:]}")
    state.trials += 1

    in_progress: dict[int, str] = {}
    saved_now: set[int] = set()
    caching = None
    for line in lines:
        word, _, rest = line.partition(" ")
        if word == "saving":
            slot, digest, _, _ = rest.split()
            in_progress[int(slot)] = digest
        elif word == "saved":
            slot, digest = rest.split()
            in_progress.pop(int(slot), None)
            saved_now.add(int(slot))
            state.last_saved[int(slot)] = digest
            state.versions[int(slot)].add(digest)
            state.saves += 1
        elif word == "caching":
            caching = rest
        elif word == "cached":
            state.cached.add(rest)
            caching = None
    state.kills_during_save += bool(in_progress)
    state.kills_during_cache += caching is not None
    check(work, trial, in_progress, saved_now, state)


def check(work: Path, trial: int, in_progress: dict[int, str], saved_now: set[int], state: State) -> None:
    from pytest_llmcache import cassette as cassette_file
    from pytest_llmcache.errors import LLMCacheError
    from tinytroupe.cache import ApiCache
    from tinytroupe.errors import CacheError

    def fail(message: str) -> None:
        state.failures.append(f"trial {trial}: {message}")

    folder = work / "cassettes"
    for slot in range(SLOTS):
        path = folder / f"c{slot}.yaml"
        if not path.exists():
            if state.last_saved[slot] is not None:
                fail(f"{path.name} is gone, though it was saved")
            continue
        state.files_checked += 1
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        try:
            cassette_file.load(path)
        except LLMCacheError as err:
            fail(f"{path.name} does not load: {err}")
        if digest == in_progress.get(slot):  # replaced just before the kill: the new, complete version
            state.last_saved[slot] = digest
            state.versions[slot].add(digest)
            state.saves += 1
        elif digest != state.last_saved[slot]:
            fail(f"{path.name} is neither its last saved version nor the one being saved ({len(data)} bytes)")
        backup = path.with_name(path.name + ".bak")
        if backup.exists():
            state.files_checked += 1
            try:
                cassette_file.load(backup)
            except LLMCacheError as err:
                fail(f"{backup.name} does not load: {err}")
            if hashlib.sha256(backup.read_bytes()).hexdigest() not in state.versions[slot]:
                fail(f"{backup.name} is not a version saved before")
    # A kill mid-save leaves its temporary file; the next save of that cassette removes it.
    for temporary in folder.glob(".*.tmp"):
        slot = int(temporary.name.split(".")[1].removeprefix("c"))
        if temporary.name not in state.temporaries:
            state.temporaries[temporary.name] = slot
        elif slot in saved_now:
            fail(f"{temporary.name}, left by an earlier kill, is still there after c{slot}.yaml was saved again")

    cache_path = work / "cache.sqlite3"
    if cache_path.exists():
        state.files_checked += 1
        try:
            cache = ApiCache(cache_path)
            try:
                contents = {value["choices"][0]["message"]["content"] for value in _cache_values(cache)}
            finally:
                cache.close()
            with sqlite3.connect(cache_path) as db:
                verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
            if verdict != "ok":
                fail(f"the API cache fails SQLite's integrity check: {verdict}")
            lost = sorted(prompt for prompt in state.cached if f"echo: {prompt}" not in contents)
            if lost:
                fail(f"the API cache lost {len(lost)} entries reported cached, e.g. {lost[:3]}")
        except (CacheError, sqlite3.DatabaseError, KeyError, ValueError) as err:
            fail(f"the API cache can't be used: {err}")
    elif state.cached:
        fail("the API cache file is gone")

    for path in work.rglob("*"):
        if path.is_file() and LIVE_KEY.encode() in path.read_bytes():
            fail(f"{path.relative_to(work)} holds the live key")


def _cache_values(cache: object) -> list[dict]:
    return [json.loads(text) for (text,) in cache._query("SELECT value FROM entries")]  # type: ignore[attr-defined]


def run_trials(
    args: argparse.Namespace, prefix: str, live_key: str, trial: Callable[[Path, dict[str, str], int, random.Random], None]
) -> tuple[int, float]:
    """Runs `trial` args.trials times against a loopback OpenAI server, in a work folder removed after
    (unless --keep); the children get `live_key` and the server's URL. Returns (seed, seconds)."""
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from fakeopenai import FakeOpenAIServer

    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    work = args.keep or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        with FakeOpenAIServer() as server:
            env = {
                **os.environ,
                "OPENAI_API_KEY": live_key,
                "OPENAI_BASE_URL": server.base_url,
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            }
            for number in range(args.trials):
                trial(work, env, number, rng)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return seed, time.perf_counter() - started


def exit_status(failures: list[str]) -> int:
    """Prints each failure; 1 when there was any."""
    for failure in failures:
        print(f"  FAIL {failure}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random; printed)")
    parser.add_argument("--max-delay", type=float, default=1.5, help="kill within this many seconds of the child's start")
    parser.add_argument("--keep", type=Path, default=None, help="work in this directory and keep it")
    parser.add_argument("--child", nargs=3, metavar=("WORK", "TRIAL", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(Path(args.child[0]), int(args.child[1]), int(args.child[2]))
        return 0

    state = State()
    seed, seconds = run_trials(args, "llmcache-faults-", LIVE_KEY, lambda work, env, trial, rng: run_trial(work, env, trial, rng, args.max_delay, state))
    print(
        f"fault injection (seed {seed}): {state.trials} trials, each recording process SIGKILLed at a random moment "
        f"in {seconds:.0f} s\n"
        f"  kills during a cassette save: {state.kills_during_save}; during an API call being cached: {state.kills_during_cache}\n"
        f"  cassette versions saved: {state.saves}; API cache entries reported: {len(state.cached)}\n"
        f"  files checked: {state.files_checked}; temporary files left by kills: {len(state.temporaries)} "
        "(each removed by the next save of its cassette)\n"
        f"  failures: {len(state.failures)}"
    )
    return exit_status(state.failures)


if __name__ == "__main__":
    sys.exit(main())
