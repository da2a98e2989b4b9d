#!/usr/bin/env python
"""Several processes record into ONE cassette at once and are SIGKILLed at random moments; check
that no recording any of them reported saved is lost.

Each trial starts `--processes` children (default 3) recording OpenAI calls against the fake server
(tests/fakeopenai.py) into the same ``shared.yaml``, the way the plugin does for tests sharing a
cassette under pytest-xdist or in separate pytest processes: an `LLMCassette` in mode
``new_episodes``, one SDK call (bodies of 100 bytes to 200 kB), then ``save()``, in a loop. A child
reports ``saving <id>`` before and ``saved <id>`` after each save. The parent kills the children one
after another at random moments, then checks:

- the cassette loads, and holds every interaction reported saved by any child (nothing lost),
  and nothing that was never being saved;
- its ``.bak`` loads;
- the temporary files the kills left are removed by the next holder of the folder's lock;
- no file holds the live key the children record with.

Usage: ``python scripts/fault_injection_shared.py --trials 20 [--seed N] [--processes 3] [--keep DIR]``.
Prints a summary and exits 1 if anything was lost or unreadable.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fault_injection import exit_status, run_trials, say  # the scaffolding both fault scripts share

LIVE_KEY = "sk-live-fault-injection-shared-0123456789"
SIZES = (100, 2_000, 20_000, 200_000)


def child(work: Path, name: str, seed: int) -> None:
    import openai

    from pytest_llmcache.recorder import LLMCassette

    rng = random.Random(seed)
    sdk = openai.OpenAI(max_retries=0)
    path = work / "cassettes" / "shared.yaml"
    say("ready")
    step = 0
    while True:
        ident = f"{name}-{step}"
        with LLMCassette.use(path=path, record_mode="new_episodes", test_id=name) as cassette:
            sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"{ident}:" + "x" * rng.choice(SIZES)}])
        say(f"saving {ident}")
        cassette.save()
        say(f"saved {ident}")
        step += 1


@dataclass
class State:
    trials: int = 0
    saves: int = 0
    kills: int = 0
    kills_during_save: int = 0
    interactions_checked: int = 0
    temporaries_left: int = 0
    failures: list[str] = field(default_factory=list)


def run_trial(work: Path, env: dict[str, str], trial: int, processes: int, rng: random.Random, max_delay: float, state: State) -> None:
    folder = work / f"trial-{trial}"
    (folder / "cassettes").mkdir(parents=True)
    children = []
    for index in range(processes):
        command = [sys.executable, str(Path(__file__).resolve()), "--child", str(folder), f"p{index}", str(rng.randrange(2**32))]
        children.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=folder))
    outputs: list[list[str]] = [[] for _ in children]
    ready = [threading.Event() for _ in children]

    def read(index: int) -> None:
        for line in children[index].stdout:  # type: ignore[union-attr]
            outputs[index].append(line.rstrip("\n"))
            if line.startswith("ready"):
                ready[index].set()
        ready[index].set()

    readers = [threading.Thread(target=read, args=(index,), daemon=True) for index in range(len(children))]
    for reader in readers:
        reader.start()
    for event in ready:
        event.wait(60)
    time.sleep(rng.uniform(0.2, max_delay))
    order = list(range(len(children)))
    rng.shuffle(order)
    died = []
    for index in order:  # one after another: the others keep saving meanwhile
        time.sleep(rng.uniform(0, 0.3))
        died.append(children[index].poll() is not None)
        children[index].send_signal(signal.SIGKILL)
        children[index].wait()
        state.kills += 1
    for reader in readers:
        reader.join(10)
    state.trials += 1
    for index, child_process in enumerate(children):
        if died[order.index(index)]:
            state.failures.append(f"trial {trial}: process p{index} died before it was killed:\n{child_process.stderr.read()[-3000:]}")  # type: ignore[union-attr]
    check(folder, trial, outputs, state)


def check(folder: Path, trial: int, outputs: list[list[str]], state: State) -> None:
    from pytest_llmcache import atomic
    from pytest_llmcache import cassette as cassette_file
    from pytest_llmcache.errors import LLMCacheError

    def fail(message: str) -> None:
        state.failures.append(f"trial {trial}: {message}")

    saved: set[str] = set()
    saving: set[str] = set()
    for lines in outputs:
        for line in lines:
            word, _, ident = line.partition(" ")
            if word == "saving":
                saving.add(ident)
            elif word == "saved":
                saved.add(ident)
    state.saves += len(saved)
    state.kills_during_save += len(saving - saved)
    path = folder / "cassettes" / "shared.yaml"
    if not path.exists():
        if saved:
            fail("the shared cassette is gone, though recordings were saved into it")
        return
    try:
        interactions = cassette_file.load(path)
    except LLMCacheError as err:
        fail(f"the shared cassette does not load: {err}")
        return
    held = [item["request"]["body"]["json"]["messages"][0]["content"].split(":")[0] for item in interactions]
    state.interactions_checked += len(held)
    lost = sorted(saved - set(held))
    if lost:
        fail(f"{len(lost)} recording(s) reported saved are not in the cassette: {lost[:5]}")
    unknown = sorted(set(held) - saving)
    if unknown:
        fail(f"the cassette holds recordings nobody was saving: {unknown[:5]}")
    if len(held) != len(set(held)):
        fail("the cassette holds a recording twice")
    backup = path.with_name("shared.yaml.bak")
    if backup.exists():
        try:
            cassette_file.load(backup)
        except LLMCacheError as err:
            fail(f"shared.yaml.bak does not load: {err}")
    temporaries = [entry.name for entry in os.scandir(path.parent) if entry.name.endswith(".tmp")]
    state.temporaries_left += len(temporaries)
    with atomic.locked(path.parent):  # the next saver: it removes what the killed ones left
        pass
    left = [entry.name for entry in os.scandir(path.parent) if entry.name.endswith(".tmp")]
    if left:
        fail(f"temporary files survive the next lock holder: {left}")
    for file in folder.rglob("*"):
        if file.is_file() and LIVE_KEY.encode() in file.read_bytes():
            fail(f"{file.relative_to(folder)} holds the live key")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random; printed)")
    parser.add_argument("--max-delay", type=float, default=2.0, help="start killing within this many seconds of the children's start")
    parser.add_argument("--keep", type=Path, default=None, help="work in this directory and keep it")
    parser.add_argument("--child", nargs=3, metavar=("WORK", "NAME", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(Path(args.child[0]), args.child[1], int(args.child[2]))
        return 0

    state = State()
    seed, seconds = run_trials(
        args, "llmcache-shared-faults-", LIVE_KEY, lambda work, env, trial, rng: run_trial(work, env, trial, args.processes, rng, args.max_delay, state)
    )
    print(
        f"shared-cassette fault injection (seed {seed}): {state.trials} trials, {args.processes} processes recording one "
        f"cassette at once, each SIGKILLed at a random moment, in {seconds:.0f} s\n"
        f"  recordings reported saved: {state.saves}; kills: {state.kills}, of which during a save: {state.kills_during_save}\n"
        f"  interactions checked: {state.interactions_checked}; temporary files left by kills: {state.temporaries_left} "
        "(each removed by the next holder of the folder's lock)\n"
        f"  failures: {len(state.failures)}"
    )
    return exit_status(state.failures)


if __name__ == "__main__":
    sys.exit(main())
