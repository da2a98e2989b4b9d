"""The session summary, the ``--llm-strict`` check, and the "played" manifest.

At the end of a session in which some test used a cassette, the terminal summary shows::

    llmcache: 9 replayed, 0 recorded, 0 missing in 6 cassette(s), record mode 'none' (cassettes: ...)
    tokens replayed, priced at list prices of 2026-05-01 (USD):
      model        responses  prompt  completion       cost
      gpt-4o-mini          7      84          35  $0.000034
      ...
    slowest tests (call duration) / most expensive tests (tokens replayed + recorded)
    unused cassettes (no collected test uses them)

Tokens come from the ``usage`` of the responses a test replayed (a JSON body's, or an SSE
stream's usage chunk when it was requested) and recorded, read at the test's teardown; a model
missing from `pytest_llmcache.pricing`'s table shows its tokens and an "unknown" cost.

After each such session the played record (`pytest_llmcache.played`) says which interactions of
each cassette the tests that passed played or recorded; ``llmcache prune`` reads it. Under
pytest-xdist every worker sends its part to the controller (through ``workeroutput``), which
prints the summary and writes the record once. Failing to write it is a warning, never a failed
session.
"""
from __future__ import annotations

import functools
import json
import os
import shlex
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from collections.abc import Callable, Iterable, Iterator, Mapping

import pytest

from pytest_llmcache import cassette as cassette_file
from pytest_llmcache import options, played
from pytest_llmcache.errors import LLMCacheError
from pytest_llmcache.exchange import Billing, Exchange, ModelTotals, read_billing, read_exchange, tally
from pytest_llmcache.pricing import PriceTable, load_prices, money_text, total_cost
from pytest_llmcache.paths import SUFFIX, command_node_id, display

if TYPE_CHECKING:  # (imported with the first cassette: see `_Session.hold` in the plugin)
    from pytest_llmcache.recorder import LLMCassette, PlayedRequest, RecordingSession

__all__ = ["Report", "stale_message", "unplayed"]

_WORKER_KEY = "llmcache_report"
_TOP = 5  # slowest / most expensive tests shown
_UNUSED_SHOWN = 10  # unused cassettes listed without -v
_UNPLAYED_SHOWN = 20  # unplayed interactions listed by --llm-strict
_CASSETTE_SUFFIXES = (SUFFIX, ".yml")

Tokens = dict[str, ModelTotals]  # billed model -> what its exchanges add up to


def _plain(entry: Any) -> Any:
    """The interaction dict of a cassette entry (`cassette.Entry` parses it on first use)."""
    return getattr(entry, "interaction", entry)


def _played_billing(entry: cassette_file.Entry, sent: PlayedRequest) -> Billing:
    """What a played entry adds to the totals: read from its response and where the request that
    played it went; the recorded request (its body) is parsed only if the response names no model."""
    return read_billing(sent.uri, sent.header_names, entry.response, lambda: entry.request)


def _recorded_billing(interaction: Mapping[str, Any]) -> Billing:
    request = interaction["request"]
    return read_billing(str(request.get("uri", "")), request.get("headers") or {}, interaction["response"], lambda: request)


def _add_tokens(into: Tokens, part: Tokens) -> None:
    for model, totals in part.items():
        into.setdefault(model, ModelTotals()).add(totals)


def _tokens_json(tokens: Tokens) -> dict[str, dict[str, int]]:
    return {model: totals.as_json() for model, totals in tokens.items()}


def _tokens_from_json(document: dict[str, Any]) -> Tokens:
    return {model: ModelTotals.from_json(totals) for model, totals in document.items()}


class _TestRecord(NamedTuple):
    """What the summary says of one test (the session keeps one per test to its end). Its tokens
    are plain tuples of strings and numbers, which the garbage collector stops tracking; the
    record itself stays one tracked object (a tuple subclass is never untracked)."""

    duration: float | None  # of its call phase, in seconds
    tokens: tuple[tuple[str, int, int], ...]  # (billed model, input, output tokens), replayed and recorded

    @classmethod
    def of(cls, duration: float | None, billings: Iterable[Billing]) -> _TestRecord:
        return cls(duration, tuple((model, totals.input_tokens, totals.output_tokens) for model, totals in tally(billings).items()))

    @classmethod
    def from_json(cls, document: list[Any]) -> _TestRecord:
        duration, tokens = document
        return cls(duration, tuple((str(model), int(input_tokens), int(output_tokens)) for model, input_tokens, output_tokens in tokens))


# -- --llm-strict ------------------------------------------------------------------------------


def unplayed(cassette: LLMCassette) -> list[int]:
    """Indexes of the interactions loaded from `cassette`'s file that were not played."""
    return sorted(set(range(len(cassette.loaded))) - set(cassette.played))


def _unplayed_lines(indexes: list[int], interaction_of: Callable[[int], Any]) -> list[str]:
    """One line per unplayed interaction (the first few), for the --llm-strict messages."""
    lines = [f"    {_describe(read_exchange(interaction_of(index), index))}" for index in indexes[:_UNPLAYED_SHOWN]]
    if len(indexes) > _UNPLAYED_SHOWN:
        lines.append(f"    ... and {len(indexes) - _UNPLAYED_SHOWN} more")
    return lines


def stale_message(cassette: LLMCassette, test_id: str, cassette_dir: Path) -> str:
    """Why ``--llm-strict`` fails a test whose cassette has interactions it never played."""
    indexes = unplayed(cassette)
    lines = [f"--llm-strict: cassette {display(Path(cassette.path))} holds {len(indexes)} recorded interaction(s) this test never played:"]
    lines += _unplayed_lines(indexes, lambda index: _plain(cassette.loaded[index]))
    lines += [
        "The cassette is stale: the test no longer sends these requests. Re-record it:",
        f"    pytest {' '.join(map(shlex.quote, (test_id, *cassette.command_options)))} --llm-record-mode=rewrite",
        "or, after a run of the whole suite, remove every interaction it did not play:",
        f"    llmcache prune {shlex.quote(display(cassette_dir))} --yes",
    ]
    return "\n".join(lines)


def _describe(exchange: Exchange) -> str:
    return f"#{exchange.index} {exchange.method} {exchange.path} (model {exchange.model or '-'})"


# -- the report --------------------------------------------------------------------------------


class _CassetteDigests(NamedTuple):
    """The digests (`cassette.Entry.digest`) of one cassette the session saw. Dicts of strings
    serve as sets: the session keeps one of these per cassette to its end, and the garbage
    collector stops tracking a dict of strings (it tracks every set); the record itself stays one
    tracked object."""

    interactions: dict[str, None]  # of the file as the tests left it
    tests: dict[str, dict[str, None]]  # node id -> what the test played or recorded

    def add(self, interactions: Iterable[str], node_id: str | None = None, used: Iterable[str] = ()) -> None:
        self.interactions.update(dict.fromkeys(interactions))
        if node_id is not None:
            self.tests.setdefault(node_id, {}).update(dict.fromkeys(used))

    def as_json(self) -> dict[str, Any]:
        """As a worker sends it to the xdist controller (`Report._merge` reads it)."""
        return {"interactions": sorted(self.interactions), "tests": {node_id: sorted(digests) for node_id, digests in self.tests.items()}}


class Report:
    """Collects what each test's cassette did; registered as a plugin by `pytest_llmcache.plugin`."""

    def __init__(self, config: pytest.Config, cassette_dir: Path, record_mode: str) -> None:
        self.config = config
        self.cassette_dir = cassette_dir
        self.record_mode = record_mode
        self.counts = {"replayed": 0, "recorded": 0, "missing": 0}
        self.cassettes: dict[str, _CassetteDigests] = {}  # by name
        self.passed: dict[str, bool] = {}  # node id -> whether setup, call and teardown all passed
        self.tokens: dict[str, Tokens] = {"replayed": {}, "recorded": {}}
        self.tests: dict[str, _TestRecord] = {}  # node id -> what the summary says of it
        # What collection says (see `collected`); merged from the workers under xdist.
        self.expected: set[str] | None = None  # cassette names the collected tests would use
        self.shared: dict[str, list[str]] = {}  # cassette name -> the collected tests sharing it
        self.scope: list[str] | None = None  # folders (names) searched for unused cassettes; None: all
        self.custom: list[str] = []  # collected tests whose cassette path is a project's own fixture
        self.unused_candidates: list[str] | None = None
        self.strict = options.strict(config)
        self.stale_shared: list[tuple[str, list[int], list[str]]] = []  # (name, unplayed, tests)
        self.played_warning: str | None = None
        self._last_call: tuple[str, float | None] | None = None
        self._dir_prefix = os.path.join(str(cassette_dir), "")  # `cassette_name`'s fast path
        # xdist's run id, shared by the workers of one session; a session of its own otherwise.
        workerinput = getattr(config, "workerinput", None)
        self._session_id: str = workerinput["testrunuid"] if workerinput else uuid.uuid4().hex
        self._session_folder = options.session_folder(config)  # as configured: a test may change what it reads ($VAR, ~)

    @functools.cached_property
    def session(self) -> RecordingSession:
        """What this session wrote (made for its first cassette)."""
        from pytest_llmcache.recorder import RecordingSession

        return RecordingSession(self._session_id, self._session_folder)

    # -- per test ----------------------------------------------------------------------------

    def add(self, cassette: LLMCassette, node_id: str | None = None) -> None:
        """Take what `cassette` did in test `node_id` (called at the test's teardown)."""
        # Entries: the response replay parsed is reused.
        replayed = [_played_billing(cassette.loaded[index], sent) for index, sent in zip(cassette.played, cassette.played_requests, strict=True)]
        recorded = [_recorded_billing(interaction) for interaction in cassette.recorded]
        self._count(len(cassette.played), len(cassette.recorded), len(cassette.misses))
        self._cassette(self.cassette_name(cassette.path)).add(cassette.cassette_digests(), node_id or "", cassette.used_digests())
        tally(replayed, self.tokens["replayed"])
        tally(recorded, self.tokens["recorded"])
        if node_id is not None:
            duration = self._last_call[1] if self._last_call and self._last_call[0] == node_id else None
            self.tests[node_id] = _TestRecord.of(duration, replayed + recorded)

    def cassette_name(self, path: Path | str) -> str:
        """`path` relative to the cassette directory (as in the manifest), else as it is."""
        text = str(path)
        if text.startswith(self._dir_prefix):  # the common case, without pathlib's parsing
            return text[len(self._dir_prefix) :].replace(os.sep, "/")
        try:
            return Path(path).relative_to(self.cassette_dir).as_posix()
        except ValueError:
            return Path(path).as_posix()

    def _count(self, replayed: int, recorded: int, missing: int) -> None:
        self.counts["replayed"] += replayed
        self.counts["recorded"] += recorded
        self.counts["missing"] += missing

    def _cassette(self, name: str) -> _CassetteDigests:
        known = self.cassettes.get(name)
        if known is None:
            known = self.cassettes[name] = _CassetteDigests({}, {})
        return known

    def _merge(self, part: dict[str, Any]) -> None:
        """A worker's part (its `pytest_sessionfinish`'s JSON), on the xdist controller."""
        self._count(*(part["counts"][name] for name in ("replayed", "recorded", "missing")))
        for name, entry in part["cassettes"].items():
            known = self._cassette(name)
            known.add(entry["interactions"])
            for node_id, digests in entry["tests"].items():
                known.add((), node_id, digests)
        for node_id, passed in part.get("passed", {}).items():
            self.passed[node_id] = self.passed.get(node_id, True) and passed
        for kind, totals in part.get("tokens", {}).items():
            _add_tokens(self.tokens[kind], _tokens_from_json(totals))
        self.tests.update((node_id, _TestRecord.from_json(record)) for node_id, record in part.get("tests", {}).items())
        if part.get("unused_candidates") is not None and self.unused_candidates is None:
            self.unused_candidates = part["unused_candidates"]  # every worker collects the same tests
            self.scope = part.get("scope")
        if part.get("shared"):
            self.shared = part["shared"]
        for node_id in part.get("custom", ()):
            if node_id not in self.custom:
                self.custom.append(node_id)

    # -- collection ----------------------------------------------------------------------------

    def collected(self, users: dict[str, list[str]], custom: list[str], scope: list[str] | None) -> None:
        """What collection found: the cassettes (names relative to the cassette directory) the
        collected tests would use, with those tests' ids; the tests whose cassette path can't be
        known before they run; and the folders to look for unused cassettes in (None: the whole
        cassette directory)."""
        self.expected = set(users)
        self.shared = {name: sorted(tests) for name, tests in users.items() if len(tests) > 1}
        self.custom = custom
        self.scope = scope

    def is_shared(self, cassette: LLMCassette) -> bool:
        """Whether several collected tests use `cassette`'s file (the marker's cassette=)."""
        return self.cassette_name(Path(cassette.path)) in self.shared

    def _users(self, name: str) -> set[str]:
        """The tests that used cassette `name` in this session, and the collected tests sharing it."""
        known = self.cassettes.get(name)
        return set(known.tests if known is not None else ()) | set(self.shared.get(name, ()))

    def _complete(self, name: str) -> bool:
        """Whether every test using cassette `name` ran in this session and passed."""
        return all(self.passed.get(node_id, False) for node_id in self._users(name))

    def _find_stale_shared(self) -> None:
        """--llm-strict on shared cassettes: interactions none of the tests sharing one played,
        judged only when all of those tests ran in this session and passed."""
        for name, tests in sorted(self.shared.items()):
            if name not in self.cassettes or not self._complete(name):
                continue
            used = set().union(*self.cassettes[name].tests.values())
            try:
                digests = [entry.digest for entry in cassette_file.load_entries(self.cassette_dir / name)]
            except (OSError, LLMCacheError):
                continue  # its tests failed on it
            missing = [index for index, digest in enumerate(digests) if digest not in used]
            if missing:
                self.stale_shared.append((name, missing, tests))

    def played_record(self) -> played.PlayedRecord:
        """What this session played, for ``llmcache prune``."""
        try:
            relative = self.cassette_dir.relative_to(self.config.rootpath.resolve()).as_posix()
        except ValueError:
            relative = ""
        record = played.PlayedRecord(self.cassette_dir, relative)
        for name, entry in self.cassettes.items():
            use = played.CassetteUse(set(entry.interactions), tests={node_id: self.passed.get(node_id) for node_id in self._users(name)})
            for node_id, digests in entry.tests.items():
                if self.passed.get(node_id, False):
                    use.played.update(digests)
            record.cassettes[name] = use
        not_run = [node_id for node_id in self.custom if node_id not in self.tests]
        if self.scope is None and self.unused_candidates is not None and not not_run:
            record.unused = {name for name in self.unused_candidates if name not in self.cassettes}
        return record

    def _unused_candidates(self) -> list[str] | None:
        if self.expected is None or not self.cassette_dir.is_dir():
            return None
        expected = self.expected
        folders = [""] if self.scope is None else ["" if name == "." else name for name in self.scope]
        return sorted({name for folder in folders for name in _cassette_names(str(self.cassette_dir), folder, self.scope is None) if name not in expected})

    # -- hooks ---------------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        node_id = report.nodeid  # a property: pytest makes it from the report's structured id
        self.passed[node_id] = self.passed.get(node_id, True) and report.passed
        if report.when == "call":
            self._last_call = (node_id, report.duration)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: take a finished worker's part."""
        part = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
        if part:
            self._merge(json.loads(part))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.cassettes:
            return
        if self.unused_candidates is None:
            self.unused_candidates = self._unused_candidates()
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller reports
            part = {
                "shared": self.shared,
                "counts": self.counts,
                "cassettes": {name: entry.as_json() for name, entry in self.cassettes.items()},
                "passed": self.passed,
                "tokens": {kind: _tokens_json(tokens) for kind, tokens in self.tokens.items()},
                "tests": self.tests,  # each record as a JSON array (`_TestRecord.from_json`)
                "unused_candidates": self.unused_candidates,
                "scope": self.scope,
                "custom": self.custom,
            }
            self.config.workeroutput[_WORKER_KEY] = json.dumps(part)  # type: ignore[attr-defined]
            return
        if self.strict and self.record_mode not in ("all", "rewrite"):
            self._find_stale_shared()
            if self.stale_shared and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        path = options.played_path(self.config)
        try:
            played.write(path, self.played_record())
        except LLMCacheError as err:
            self.played_warning = f"llmcache: the played record was not written ({err}); llmcache prune will not know this session"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.cassettes:
            return
        write = terminalreporter.write_line
        if self.played_warning:
            write(self.played_warning, yellow=True)
        counts = ", ".join(f"{count} {name}" for name, count in self.counts.items())
        terminalreporter.write_sep("-", "llmcache")
        write(f"llmcache: {counts} in {len(self.cassettes)} cassette(s), record mode {self.record_mode!r} (cassettes: {self.cassette_dir})")
        prices = _load_prices()
        for kind in ("replayed", "recorded"):
            if self.tokens[kind]:
                for line in _token_table(kind, self.tokens[kind], prices):
                    write(line)
        for line in self._slowest() + self._most_expensive(prices) + self._unused(terminalreporter.config.getoption("verbose", 0)):
            write(line)
        for name, missing, tests in self.stale_shared:
            terminalreporter.write_line(self._stale_shared_message(name, missing, tests), red=True)

    # -- summary sections ------------------------------------------------------------------------

    def _slowest(self) -> list[str]:
        timed = sorted(
            ((record.duration, node_id) for node_id, record in self.tests.items() if record.duration is not None),
            key=lambda item: (-item[0], item[1]),
        )[:_TOP]
        if not timed:
            return []
        width = max(len(f"{duration:.2f}") for duration, _ in timed)
        return ["slowest tests (call duration):", *(f"  {duration:{width}.2f}s  {node_id}" for duration, node_id in timed)]

    def _most_expensive(self, prices: PriceTable | None) -> list[str]:
        ranked = []
        for node_id, record in self.tests.items():
            total = sum(input_tokens + output_tokens for _, input_tokens, output_tokens in record.tokens)
            if not total:
                continue
            cost, unknown = total_cost(prices, record.tokens)
            ranked.append((cost, total, unknown, node_id))
        if not ranked:
            return []
        ranked.sort(key=lambda item: (-item[0], -item[1], item[3]))
        currency = prices.currency if prices is not None else "USD"
        rows = [(money_text(cost, currency, unknown), f"{total} tokens", node_id) for cost, total, unknown, node_id in ranked[:_TOP]]
        money_width, tokens_width = max(len(row[0]) for row in rows), max(len(row[1]) for row in rows)
        return [
            "most expensive tests (tokens replayed + recorded, at list prices):",
            *(f"  {money.rjust(money_width)}  {tokens.rjust(tokens_width)}  {node_id}" for money, tokens, node_id in rows),
        ]

    def _stale_shared_message(self, name: str, missing: list[int], tests: list[str]) -> str:
        path = self.cassette_dir / name
        lines = [
            f"--llm-strict: cassette {display(path)}, shared by {len(tests)} tests, holds {len(missing)} recorded "
            "interaction(s) none of them played (the session fails):"
        ]
        try:
            entries = cassette_file.load_entries(path)
            lines += _unplayed_lines(missing, lambda index: _plain(entries[index]))
        except (OSError, ValueError, IndexError, LLMCacheError):
            lines.append("    " + ", ".join(f"#{index}" for index in missing[:_UNPLAYED_SHOWN]))
        lines += [
            "The cassette is stale: its tests no longer send these requests. Re-record it (all of its tests):",
            f"    pytest {' '.join(shlex.quote(command_node_id(test, self.config.rootpath, self.config.invocation_params.dir)) for test in tests)}"
            f"{''.join(' ' + shlex.quote(option) for option in options.command_options(self.config))} --llm-record-mode=rewrite",
            "or, after a run of the whole suite, remove every interaction that was not played:",
            f"    llmcache prune {shlex.quote(display(self.cassette_dir))} --yes",
        ]
        return "\n".join(lines)

    def _unused(self, verbose: int) -> list[str]:
        if self.unused_candidates is None:
            return []
        unused = [name for name in self.unused_candidates if name not in self.cassettes]
        if not unused:
            return []
        where = "" if self.scope is None else " in the folders of the test modules collected (run the whole suite to check every cassette)"
        lines = [f"unused cassettes: {len(unused)} file(s) no collected test uses{where}:"]
        shown = unused if verbose > 0 else unused[:_UNUSED_SHOWN]
        lines += [f"  {display(self.cassette_dir / name)}" for name in shown]
        if len(shown) < len(unused):
            lines.append(f"  ... and {len(unused) - len(shown)} more (-v lists them all)")
        not_run = [node_id for node_id in self.custom if node_id not in self.tests]
        if not_run:
            lines.append(f"  ({len(not_run)} test(s) with their own llm_cassette_path fixture did not run; their cassettes may be listed)")
        return lines


def _cassette_names(root: str, folder: str, recursive: bool) -> Iterator[str]:
    """The cassette files in `folder` (``a/b``, relative to `root`; "" for `root` itself), and in its
    subfolders when `recursive` (not through links), as names relative to `root`: hidden files and
    folders left out. By os.scandir: a large suite has a cassette per test."""
    try:
        with os.scandir(os.path.join(root, folder)) as entries:
            found = [(entry.name, entry.is_dir(follow_symlinks=False), entry.is_file()) for entry in entries if not entry.name.startswith(".")]
    except OSError:  # not a folder (any more)
        return
    for base, is_dir, is_file in found:
        name = f"{folder}/{base}" if folder else base
        if is_dir:
            if recursive:
                yield from _cassette_names(root, name, recursive)
        elif is_file and base.endswith(_CASSETTE_SUFFIXES):
            yield name


# -- formatting ----------------------------------------------------------------------------------


def _load_prices() -> PriceTable | None:
    """The price table, or None when it can't be loaded (every cost then shows as unknown)."""
    try:
        return load_prices()
    except (OSError, ValueError, KeyError, TypeError, ArithmeticError):
        return None


def _token_table(kind: str, totals: Tokens, prices: PriceTable | None) -> list[str]:
    as_of = f"list prices of {prices.as_of} ({prices.currency})" if prices is not None else "list prices (no price table available)"
    head = f"tokens {kind}, and their live cost at {as_of}:" if kind == "replayed" else f"tokens {kind} (live calls made now), at {as_of}:"
    currency = prices.currency if prices is not None else "USD"
    rows = [["model", "responses", "prompt", "completion", "cost"]]
    for model in sorted(totals):
        entry = totals[model]
        cost = prices.cost(model, entry.input_tokens, entry.output_tokens) if prices is not None else None
        rows.append([model, str(entry.calls), str(entry.input_tokens), str(entry.output_tokens), money_text(cost, currency)])
    whole = ModelTotals()
    for entry in totals.values():
        whole.add(entry)
    cost, unknown = total_cost(prices, ((model, t.input_tokens, t.output_tokens) for model, t in totals.items()))
    rows.append(["total", str(whole.calls), str(whole.input_tokens), str(whole.output_tokens), money_text(cost, currency, unknown)])
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [head]
    lines += ["  " + "  ".join(cell.ljust(widths[0]) if column == 0 else cell.rjust(widths[column]) for column, cell in enumerate(row)) for row in rows]
    if whole.without_usage:
        lines.append(f"  ({whole.without_usage} response(s) carry no usage: errors, or streams recorded without stream_options include_usage)")
    return lines
