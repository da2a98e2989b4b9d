"""pytest entry point: fixtures and hooks. Every behaviour is a fixture a project can override.

Data flow for one request in a test using `llm_cassette` (or `llm_client`, which uses it):
SDK -> httpx2 transport (patched by vcrpy) -> `LLMCassette.can_play_response_for` ->
`matching.request_key` -> dict lookup in the cassette opened by `cassette.load_entries` -> the recorded
bytes; or, when recording, the real server -> `LLMCassette.append` (scrubbed) -> `cassette.save`.
"""
from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, ParamSpec, TypeVar

import pytest
from _pytest._code.code import TerminalRepr

from pytest_llmcache import network, options
from pytest_llmcache.errors import LLMCacheError, MarkerError, MissingRecording
from pytest_llmcache.escapes import EscapeGuard, recording_guarded
from pytest_llmcache.ignoring import OFFLINE_ENV, IgnorePolicy, IgnoreRule
from pytest_llmcache.markers import MARKER_HELP, LLMMarker
from pytest_llmcache.matching import FieldPath, Normalizer
from pytest_llmcache.network import NetworkGuard, network_blocked
from pytest_llmcache.paths import BadCassettePath, cassette_path, command_node_id
from pytest_llmcache.report import Report, stale_message, unplayed
from pytest_llmcache.providers import placeholder_env
from pytest_llmcache.scrubbing import Scrubber, environment_values

if TYPE_CHECKING:  # imported by the first cassette (or the collected tests that use one): vcrpy and the HTTP stacks it imports
    from pytest_llmcache import stacks
    from pytest_llmcache.recorder import LLMCassette

_T = TypeVar("_T")
_P = ParamSpec("_P")
_REPORT = pytest.StashKey[Report]()
_OFFLINE_SET = pytest.StashKey[list[str]]()
# The scrubber of each running test using a cassette (by node id), for the warnings it raised:
# pytest records them after the test's teardown, before `pytest_runtest_protocol` lets it go.
_WARNING_SCRUBBERS: dict[str, Scrubber] = {}

# What replay needs to build every provider's SDK client when no real credentials are configured.
PLACEHOLDER_ENV = placeholder_env()


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    settings = _Session.of(config)  # a malformed llm_ignore or llm_ignore_fields line stops the session before any test
    config.stash[_SETTINGS] = settings
    settings.outermost = not _CONFIGURED
    _CONFIGURED.append(settings)
    report = Report(config, settings.cassette_dir, settings.record_mode)
    config.stash[_REPORT] = report
    config.pluginmanager.register(report, "llmcache-report")
    # Frameworks' run-time downloads that have an offline switch (litellm's price map, read when
    # litellm is imported): switched to the copy they ship, unless the user set them.
    config.stash[_OFFLINE_SET] = [name for name in OFFLINE_ENV if name not in os.environ]
    for name in config.stash[_OFFLINE_SET]:
        os.environ[name] = OFFLINE_ENV[name]


def pytest_unconfigure(config: pytest.Config) -> None:
    for name in config.stash.get(_OFFLINE_SET, ()):
        os.environ.pop(name, None)
    settings = config.stash.get(_SETTINGS, None)
    if settings is not None:
        settings.end()
        _CONFIGURED[:] = [running for running in _CONFIGURED if running is not settings]


@dataclass
class _Session:
    """The session's settings that every test's cassette starts from (its fixtures' defaults),
    computed once, and the interception's lifetime: the patch points (and vcrpy, imported then) are
    put in place once the collected tests are known to use cassettes (or at the first cassette)
    and stay until the session ends.

    Requests sent while no cassette is active (between tests, or at exit: a framework's trace
    upload from its own thread) follow the session's ignore rules (`stacks.Outside`). After the
    last session of a process that replays, the patch points and its rules stay: a framework
    flushing its traces at exit gets the refusal, not the network.
    """

    cassette_dir: Path
    record_mode: str
    ignore_rules: tuple[IgnoreRule, ...]
    ignore: IgnorePolicy
    ignore_fields: tuple[FieldPath, ...]
    normalize: Normalizer  # the ini's ignored fields, for tests whose marker adds none
    command_ids: Callable[[str], str] | None = None  # node ids as commands run where pytest was started take them
    command_options: tuple[str, ...] = ()  # the options given that the command must repeat: where cassettes are
    holding: bool = False
    outermost: bool = True  # no other session of this process was running when this one started (pytester nests them)
    _previous: stacks.Outside | None = None
    inherited: dict[str, _Inherited] = field(default_factory=dict)  # by collector node id (`_inherited`)
    collected: dict[str, _Collected] = field(default_factory=dict)  # by test node id, until the test has run

    @classmethod
    def of(cls, config: pytest.Config) -> _Session:
        rules, fields = options.ignore_rules(config), options.ignore_fields(config)
        # Node ids are relative to the rootdir; a command run from elsewhere needs them as pytest's summary shows them.
        where = config.invocation_params.dir
        command_ids = functools.partial(command_node_id, rootdir=config.rootpath, where=where) if where != config.rootpath else None
        return cls(options.cassette_dir(config), options.record_mode(config), rules, IgnorePolicy(rules), fields, Normalizer(fields), command_ids, options.command_options(config))

    def hold(self) -> None:
        if self.holding:
            return
        # Imported here, not with the plugin: a session none of whose tests uses a cassette (every
        # pytest run in an environment where the plugin is installed) never imports vcrpy, nor the
        # HTTP stacks vcrpy imports to patch them. Nothing reaches the patch points before this, so
        # the session's rules for requests between tests start here too. Imported by its name, not
        # as an attribute of the package: pytester drops what an inner session imported from
        # sys.modules, not from the package, and the next session must patch the stacks it imports.
        import pytest_llmcache.stacks as stacks

        self._previous = stacks.set_outside(stacks.Outside(self.ignore, replaying=self.record_mode == "none"))
        stacks.hold()
        network.hold_send_checks()
        self.holding = True

    def end(self) -> None:
        if not self.holding or (self.outermost and self.record_mode == "none"):
            return  # nothing held; or the process's last session: its rules stay for the uploads at exit
        import pytest_llmcache.stacks as stacks  # (by its name: see `hold`)

        stacks.set_outside(self._previous)
        stacks.release()
        network.release_send_checks()
        self.holding = False


_SETTINGS = pytest.StashKey[_Session]()
_CONFIGURED: list[_Session] = []  # the sessions configured and not unconfigured yet, innermost last


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``@pytest.mark.llm(api_types=[...])`` runs the test once per API type."""
    if "llm_api_type" not in metafunc.fixturenames:
        return
    try:
        api_types = LLMMarker.of(metafunc.definition).api_types
    except MarkerError:
        return  # reported by the llm_marker fixture, as an error of this test only
    if api_types:
        metafunc.parametrize("llm_api_type", api_types, indirect=True)


@pytest.hookimpl(wrapper=True, specname="pytest_generate_tests")
def pytest_generate_tests_of_settings(metafunc: pytest.Metafunc) -> Iterator[None]:
    """A test using llm_cassette may parametrize its settings (``@pytest.mark.parametrize(
    "llm_record_mode", ["all"])``) as when llm_cassette requested them: pytest refuses to
    parametrize a name outside the test's fixture closure, so they are in it while tests are
    generated, then taken out again (pytest would set each up for every test; `_setting` asks for
    the value of one that was parametrized). Only while something may parametrize them: pytest's
    own hook goes through every name of the closure, walking the test's markers for each."""
    names = metafunc.fixturenames
    added = [name for name in _parametrizable_settings(metafunc) if name not in names] if "llm_cassette" in names else []
    if not added:  # most tests: nothing lent, nothing to take back
        return (yield)
    # pytest parametrizes an override with params only when it finds its definitions here (private).
    known: dict[str, Sequence[Any]] = metafunc._arg2fixturedefs
    lent = {name: definitions for name in added if name not in known and (definitions := _definitions(metafunc.definition, name))}
    names.extend(added)
    known.update(lent)
    try:
        return (yield)
    finally:
        names[:] = [name for name in names if name not in added]
        for name, definitions in lent.items():
            if known.get(name) is definitions:  # not replaced by pytest's own for a direct parametrization
                del known[name]


# Where the pytest_generate_tests hooks that never parametrize our settings live: pytest's and ours.
_OWN_GENERATORS = frozenset({"_pytest.python", "_pytest.fixtures", __name__})


def _parametrizable_settings(metafunc: pytest.Metafunc) -> Iterable[str]:
    """The settings that something may parametrize for this test: every one when a hook of the
    project's or of another plugin generates tests, or a setting is overridden by a fixture with
    params; else those that a parametrize marker of the test names."""
    hooks = metafunc.config.hook.pytest_generate_tests.get_hookimpls()
    if any(getattr(hook.function, "__module__", None) not in _OWN_GENERATORS for hook in hooks):
        return _SETTING_FIXTURES
    closure = _closure(metafunc.definition)
    if _inherited(metafunc.definition).parametrizable or any(_has_params(closure[name]) for name in closure.keys() & _SETTING_FIXTURES):
        return _SETTING_FIXTURES
    marked: set[str] = set()
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = [name.strip() for name in argnames.split(",")]
        marked.update(argnames)
    return [name for name in _SETTING_FIXTURES if name in marked] if marked else ()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Once a test is reported, what its hooks kept of it goes (its cassette with the interactions
    it parsed, its guard, its scrubber): items live to the end of the session, and objects kept
    this way make every later garbage collection longer. (tryfirst: this wrapper is outside
    pytest's warnings wrapper, which records the test's warnings, masked by its scrubber in
    `pytest_warning_recorded`, on its way out.)"""
    _RUNNING.append(item)
    try:
        return (yield)
    finally:
        _RUNNING.pop()
        test_id = item.nodeid
        _WARNING_SCRUBBERS.pop(test_id, None)
        if _RUN in item.stash:
            del item.stash[_RUN]
        settings = item.config.stash.get(_SETTINGS, None)
        if settings is not None:
            settings.collected.pop(test_id, None)


# The tests whose protocol is running, innermost last (pytester runs sessions inside a test).
# llm_cassette reads its test here instead of asking for pytest's `request` fixture: pytest makes a
# new definition of `request`, reading its function's signature, each of the three times a fixture
# asking for it is set up (about 30 us per test in a suite, and three more objects).
_RUNNING: list[pytest.Item] = []


def _running_test() -> tuple[pytest.Item, pytest.FixtureRequest]:
    """The test being set up and pytest's request of it: a test function's, a doctest's (private:
    the `_request` every item with fixtures has; its node is the item, read here without the
    request's properties)."""
    item = _RUNNING[-1] if _RUNNING else None
    request = getattr(item, "_request", None)
    if item is None or not isinstance(request, pytest.FixtureRequest):
        raise pytest.UsageError("llm_cassette can only be set up for a test that takes fixtures, while it runs")
    return item, request


@dataclass(eq=False)
class _Run:
    """What a test using llm_cassette keeps for its hooks while its protocol runs, under one stash
    key: each stash read is two calls into pytest, and a missing key raises and catches a KeyError."""

    scrubber: Scrubber  # kept to the end of the protocol: a rerun's reports are masked by it too
    report: Report
    cassette: LLMCassette | None = None
    guard: NetworkGuard | None = None
    escapes: EscapeGuard | None = None
    refusal: _Refusal | None = None

    def forget(self) -> None:
        """What one run of the test's protocol left: its cassette, guards and refusal."""
        self.cassette = self.guard = self.escapes = self.refusal = None


def _run_of(item: pytest.Item) -> _Run | None:
    # Not stash.get: it raises and catches a KeyError for every test without a cassette.
    return item.stash[_RUN] if _RUN in item.stash else None  # noqa: SIM401


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """A fixture of the test that sends a request with no recording: the same message, as an error."""
    run = _run_of(item)
    if run is not None:  # a rerun of the protocol (pytest-rerunfailures) starts afresh
        run.forget()
    try:
        return (yield)
    except Exception:
        _fail_on_refusal(item)
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail the test on a missing recording or a blocked connection, even when the code under test
    swallowed the error (tinytroupe's client logs failures and returns None), with the plugin's
    message alone: the SDK, httpx2 and vcrpy frames it travelled through say nothing useful."""
    try:
        result = yield
    except Exception:
        _fail_on_refusal(item)
        raise
    run = _run_of(item)
    if run is not None:
        _fail_on_refusal(item, run)
        _fail_stale(item, run)
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_warning_recorded(warning_message: warnings.WarningMessage, nodeid: str) -> None:
    """Mask the live credentials a test's scrubber knows in the warnings it raised: pytest's
    warnings summary prints their text (and xdist sends it to the controller as text)."""
    scrubber = _WARNING_SCRUBBERS.get(nodeid)
    if scrubber is None:
        return
    text = str(warning_message.message)
    masked = scrubber.mask_message(text)
    if masked != text:
        warning_message.message = masked  # pytest and xdist read it with str()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """The failure report as users should see it: a refused request named (`_show_refusal`), and
    the live credentials the test's scrubber knows masked: pytest prints the arguments of failing
    frames (a vcrpy request with its URL, a body about to be written), their locals with -l, and
    full reprs with -vv; none of that text may show a key."""
    report: pytest.TestReport = yield
    run = _run_of(item)
    if run is None:
        return report
    _show_refusal(run.refusal, call, report)
    scrubber = run.scrubber
    # The test may have set a key after the scrubber was made: learned now, before monkeypatch's
    # undo, as the test's warnings are shown after it (`pytest_warning_recorded`).
    scrubber.learn_environment()
    if report.longrepr is None and not report.sections and not hasattr(report, "wasxfail"):
        return report
    if hasattr(report, "wasxfail"):  # the xfail reason, printed in the short summary
        report.wasxfail = scrubber.mask_message(report.wasxfail)
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason), a tuple pytest's summary requires
        path, lineno, reason = report.longrepr
        report.longrepr = (path, lineno, scrubber.mask_message(reason))
    elif report.longrepr is not None:
        text = str(report.longrepr)
        masked = scrubber.mask_message(text)
        if masked != text:
            crash = getattr(report.longrepr, "reprcrash", None)
            report.longrepr = _MaskedRepr(masked, _Crash(crash.path, crash.lineno, scrubber.mask_message(crash.message)) if crash else None)
    report.sections = [(title, scrubber.mask_message(content)) for title, content in report.sections]
    return report


@dataclass(frozen=True)
class _Crash:
    """Where a failure happened, as the short test summary shows it."""

    path: str
    lineno: int
    message: str


class _MaskedRepr(TerminalRepr):
    """A failure's text with credentials masked, printed as pytest printed the original."""

    def __init__(self, text: str, reprcrash: _Crash | None) -> None:
        self.text = text
        self.reprcrash = reprcrash

    def toterminal(self, tw: Any) -> None:
        tw.line(self.text.rstrip("\n"))

    def __str__(self) -> str:
        return self.text


def _fail_on_refusal(item: pytest.Item, run: _Run | None = None) -> None:
    """`run`: `_run_of(item)`, if known."""
    run = run or _run_of(item)
    if run is None:
        return
    cassette, guard, escapes = run.cassette, run.guard, run.escapes
    misses = cassette.misses if cassette is not None else ()
    blocked = guard.errors if guard is not None else ()
    escaped = escapes.errors if escapes is not None else ()
    if not (misses or blocked or escaped):
        return  # every test passes here: nothing built
    refusals: list[LLMCacheError] = [*misses, *blocked, *escaped]
    distinct = list(dict.fromkeys(str(refusal) for refusal in refusals))  # the SDK's retries repeat a miss
    message = distinct[0]
    if len(distinct) > 1:
        message += f"\n({len(distinct) - 1} more refused request(s) in this test, each with its own message)"
    first = refusals[0]
    summary = f"no recording: {first.request_summary}" if isinstance(first, MissingRecording) else message.splitlines()[0]
    run.refusal = _Refusal(summary, tuple(distinct))
    # `from None` and pytrace=False: the message is the whole failure, no chained library traceback.
    raise pytest.fail.Exception(message, pytrace=False) from None


@dataclass(frozen=True)
class _Refusal:
    summary: str  # one line: the short summary's
    messages: tuple[str, ...]  # each distinct refusal's full message


_RUN = pytest.StashKey[_Run]()


def _show_refusal(refusal: _Refusal | None, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """The short summary line of a refused request says which request it was (without "Failed:"),
    and a captured log or output repeating the whole message (a client that logs what it swallowed)
    keeps only its first line: the message is shown once, as the failure."""
    if refusal is None or call.when == "teardown":
        return
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        crash.message = refusal.summary
    for index, (title, content) in enumerate(report.sections):
        for message in refusal.messages:
            if "\n" in message:
                content = content.replace(message, message.splitlines()[0] + " [...: the failure above]")
        report.sections[index] = (title, content)


def _fail_stale(item: pytest.Item, run: _Run) -> None:
    """--llm-strict: fail a test that passed without playing all of its cassette."""
    cassette, report = run.cassette, run.report
    if cassette is None or not report.strict or not cassette.existed or cassette.mode in ("all", "rewrite"):
        return
    if report.is_shared(cassette):
        return  # judged at the end of the session, on what all of its tests played
    if unplayed(cassette):
        test = command_node_id(item.nodeid, item.config.rootpath, item.config.invocation_params.dir)
        pytest.fail(stale_message(cassette, test, options.cassette_dir(item.config)), pytrace=False)


# -- the unused-cassette listing: which cassettes the collected tests would use ------------------


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Deselected tests (-k, -m) were collected: their cassettes are not unused."""
    if items:
        _deselected(items[0].config).extend(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    items = [*session.items, *_deselected(session.config)]
    _deselected(session.config).clear()
    report = session.config.stash.get(_REPORT, None)
    if report is None:
        return
    settings = session.config.stash[_SETTINGS]
    directory = settings.cassette_dir
    users: dict[str, list[str]] = {}
    custom: list[str] = []
    shared: dict[Any, Any] = {}  # one object for equal markers, one for equal fixture sets
    for item in items:
        fixturenames = getattr(item, "fixturenames", ())
        if "llm_cassette" not in fixturenames:
            continue
        overridden = _overridden_settings(item)
        from_pytest = _from_pytest(item, overridden)
        marker, path = None, None
        if overridden.isdisjoint(_PATH_SETTINGS):
            try:
                marker = LLMMarker.of(item)
                path = str(default_cassette_path(item, directory, marker))
            except MarkerError:
                pass  # the test errors with it; its cassette can't be known
        settings.collected[item.nodeid] = _Collected(shared.setdefault(from_pytest, from_pytest), shared.setdefault(marker, marker), _marker_count(item), path)
        if path is None:
            custom.append(item.nodeid)
        else:
            users.setdefault(report.cassette_name(path), []).append(item.nodeid)
    report.collected(users, custom, _scope(session, items, directory))
    # From the first test on, not the first cassette: the same rules between every two tests. Only
    # the tests that run count (a deselected cassette user is one of `users`).
    if any("llm_cassette" in getattr(item, "fixturenames", ()) for item in session.items):
        settings.hold()


_DESELECTED = pytest.StashKey[list]()
# The settings a test's default cassette path depends on.
_PATH_SETTINGS = ("llm_cassette_path", "llm_cassette_dir", "llm_marker")


# The fixtures llm_cassette takes its settings from.
_SETTING_FIXTURES = (
    "llm_marker",
    "llm_cassette_dir",
    "llm_cassette_path",
    "llm_record_mode",
    "llm_scrubber",
    "llm_allowed_hosts",
    "llm_placeholder_env",
    "llm_ignore",
    "llm_ignore_fields",
    "llm_normalize",
)
_SETTING_SET = frozenset(_SETTING_FIXTURES)


class _Collected(NamedTuple):
    """What collection found out about a test using llm_cassette, so its cassette starts cheaply:
    which setting fixtures pytest must provide (overridden, or in the test's own closure), and its
    marker and default cassette path (reused unless a marker was added to the test or one of its
    collectors since: `markers` then has more). Kept by the session until the test runs, not in the
    item's stash (which stays an empty dict the garbage collector does not track); equal markers and
    fixture sets are one object, and the path is text (a Path is two objects): every object a
    collected test keeps until it runs is gone through by each full collection meanwhile, and
    brings the next one closer."""

    from_pytest: frozenset[str]
    marker: LLMMarker | None
    markers: int  # `_marker_count` at collection
    path: str | None  # in the session's cassette directory; None: a setting it depends on is overridden


def _collected(node: pytest.Item) -> _Collected | None:
    """What collection found out about `node` (None: it did not use llm_cassette then, or has run)."""
    settings = node.config.stash.get(_SETTINGS, None)
    return settings.collected.get(node.nodeid) if settings is not None else None


def _collected_for(node: pytest.Item) -> _Collected | None:
    """The collected marker and path of `node`, while they still hold."""
    return _still_holding(_collected(node), node)


def _still_holding(found: _Collected | None, node: pytest.Item) -> _Collected | None:
    """`found` (what collection found out about `node`) when its marker and path still hold."""
    return found if found is not None and found.marker is not None and found.markers == _marker_count(node) else None


def _marker_count(node: pytest.Item) -> int:
    """How many markers the test and its collectors carry (a class-scoped fixture's applymarker
    marks the class)."""
    count, parent = len(node.own_markers), node.parent
    while parent is not None:
        count += len(parent.own_markers)
        parent = parent.parent
    return count


def _deselected(config: pytest.Config) -> list[pytest.Item]:
    if _DESELECTED not in config.stash:
        config.stash[_DESELECTED] = []
    return config.stash[_DESELECTED]


def _overridden_settings(item: pytest.Item) -> frozenset[str]:
    """The settings the project replaced for `item`: in a conftest, module or class (its
    collector's set, `_inherited`), or by parametrizing one in the test (in its own closure)."""
    closure, inherited = _closure(item), _inherited(item).overridden
    if closure.keys().isdisjoint(_SETTING_FIXTURES):
        return inherited
    return frozenset(name for name in _SETTING_FIXTURES if (_replaced(closure[name]) if name in closure else name in inherited))


class _Inherited(NamedTuple):
    """The setting fixtures as every test of one collector (module or class) sees them outside its
    own closure: they are defined per collector, so they are looked up once per collector."""

    overridden: frozenset[str]  # replaced by the project: in a conftest, module or class
    parametrizable: bool  # one is overridden by a fixture with params, or pytest would not say


def _inherited(item: pytest.Item) -> _Inherited:
    settings = item.config.stash.get(_SETTINGS, None)
    key = item.parent.nodeid if item.parent is not None else ""
    found = settings.inherited.get(key) if settings is not None else None
    if found is None:
        visible = [(name, _visible_definitions(item, name)) for name in _SETTING_FIXTURES]
        found = _Inherited(
            frozenset(name for name, definitions in visible if _replaced(definitions)),
            any(definitions is None or _has_params(definitions) for _, definitions in visible),
        )
        if settings is not None:
            settings.inherited[key] = found
    return found


def _closure(item: pytest.Item) -> dict[str, Sequence[Any]]:
    """The fixture definitions of `item`'s own closure, by name."""
    return getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})


def _replaced(definitions: Sequence[Any] | None) -> bool:
    return not definitions or getattr(definitions[-1].func, "__module__", None) != __name__


def _has_params(definitions: Sequence[Any]) -> bool:
    return any(definition.params is not None for definition in definitions)


def _definitions(item: pytest.Item, name: str) -> Sequence[Any] | None:
    """pytest's definitions of fixture `name` for `item`, ours first (None: pytest would not say)."""
    closure = _closure(item)
    return closure[name] if name in closure else _visible_definitions(item, name)


def _visible_definitions(item: pytest.Item, name: str) -> Sequence[Any] | None:
    """The definitions of fixture `name` that `item`'s collector sees (None: pytest would not say)."""
    try:  # pytest's own lookup (a private API)
        definitions: Sequence[Any] | None = item.session._fixturemanager.getfixturedefs(name, item)
    except Exception:  # a pytest whose lookup differs: take it as overridden, pytest then gives the value
        definitions = None
    return definitions


def _setting(request: pytest.FixtureRequest, from_pytest: frozenset[str], name: str, default: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """The value of our setting fixture `name` for this test. pytest's, when it is one of
    `from_pytest` (`_from_pytest`: the same object the test sees); else its default, computed
    directly by the function the fixture itself calls (`default(*args, **kwargs)`: no closure kept
    alive by llm_cassette's frame for the whole test), without pytest's fixture machinery."""
    if name in from_pytest:
        value: _T = request.getfixturevalue(name)
        return value
    return default(*args, **kwargs)


def _from_pytest(item: pytest.Item, overridden: frozenset[str]) -> frozenset[str]:
    """The settings pytest provides for `item`: those the project overrides (`overridden`, from
    `_overridden_settings`) and those in the test's own closure (pytest sets them up for it anyway)."""
    requested = _SETTING_SET.intersection(getattr(item, "fixturenames", ()))
    return overridden.union(requested) if requested else overridden


def _scope(session: pytest.Session, items: list[pytest.Item], directory: Path) -> list[str] | None:
    """Where unused cassettes are looked for: None (the whole cassette directory) when the whole
    suite was collected, else the cassette folders of the test modules collected in full."""
    config = session.config
    selected = {Path(config.invocation_params.dir, arg.split("::")[0]).resolve() for arg in config.args if "::" in arg}
    if config.args_source == pytest.Config.ArgsSource.TESTPATHS or (not selected and _covers_suite(config)):
        return None
    folders = set()
    for module in {Path(item.path) for item in items}:
        if module.resolve() not in selected:
            folder = cassette_path(directory, config.rootpath, module, "_").parent
            try:
                folders.add(folder.relative_to(directory).as_posix())
            except ValueError:
                continue
    return sorted(folders)


def _covers_suite(config: pytest.Config) -> bool:
    """Whether the paths given cover the rootdir or every ``testpaths`` entry."""
    given = [Path(config.invocation_params.dir, arg).resolve() for arg in config.args]
    roots = [config.rootpath.resolve()]
    testpaths = [Path(config.rootpath, entry).resolve() for entry in config.getini("testpaths") or ()]

    def covered(root: Path) -> bool:
        return any(path == root or path in root.parents for path in given)

    return covered(roots[0]) or (bool(testpaths) and all(covered(root) for root in testpaths))


def default_cassette_path(node: pytest.Item, directory: Path, marker: LLMMarker) -> Path:
    """``<cassette dir>/<module path>/<Class.test_name[param-id]>.yaml``, or the marker's cassette=
    (raises MarkerError when that path can't be used)."""
    test_name = ".".join(node.nodeid.split("::")[1:])  # Class.test_name[param-id]
    try:
        return cassette_path(directory, node.config.rootpath, Path(node.path), test_name, marker.cassette)
    except BadCassettePath as err:
        raise MarkerError(node.nodeid, f"cassette={marker.cassette!r}", f"can't be used: {err}") from None


# -- fixtures ------------------------------------------------------------------------------------
# llm_cassette reads its settings from the fixtures below; a project overrides any of them (in a
# conftest, module or class). llm_cassette asks pytest for the value of an overridden one and
# computes any other itself, with the same function its fixture calls (`_setting`): pytest's
# machinery costs tens of microseconds per fixture and test, more than the rest of a test that
# replays one request.


@pytest.fixture(scope="session")
def llm_cassette_dir(pytestconfig: pytest.Config) -> Path:
    """Where cassettes live (--llm-cassette-dir / llm_cassette_dir)."""
    return _cassette_dir(pytestconfig.stash[_SETTINGS])


def _cassette_dir(settings: _Session) -> Path:
    return settings.cassette_dir


def _marker(node: pytest.Item, collected: _Collected | None) -> LLMMarker:
    """`collected`: `_collected_for(node)`."""
    if collected is not None and collected.marker is not None:
        return collected.marker
    try:
        return LLMMarker.of(node)
    except MarkerError as error:  # an error of this test only: the message, without a traceback
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def llm_marker(request: pytest.FixtureRequest) -> LLMMarker:
    """The test's merged ``llm`` marker arguments."""
    return _marker(request.node, _collected_for(request.node))


@pytest.fixture
def llm_record_mode(llm_marker: LLMMarker, pytestconfig: pytest.Config) -> str:
    """The marker's record_mode, else --llm-record-mode / llm_record_mode (default: none)."""
    return _record_mode(llm_marker, pytestconfig.stash[_SETTINGS])


def _record_mode(marker: LLMMarker, settings: _Session) -> str:
    return marker.record_mode or settings.record_mode


def _cassette_path(node: pytest.Item, directory: Path, marker: LLMMarker) -> Path:
    try:
        return default_cassette_path(node, directory, marker)
    except MarkerError as error:  # an error of this test only: the message, without a traceback
        pytest.fail(str(error), pytrace=False)


def _default_path(node: pytest.Item, directory: Path, marker: LLMMarker, collected: _Collected | None) -> Path:
    """`collected`: `_collected_for(node)`."""
    if collected is not None and collected.path is not None and collected.marker == marker and directory == node.config.stash[_SETTINGS].cassette_dir:
        return Path(collected.path)
    return _cassette_path(node, directory, marker)


@pytest.fixture
def llm_cassette_path(request: pytest.FixtureRequest, llm_cassette_dir: Path, llm_marker: LLMMarker) -> Path:
    """``<cassette dir>/<module path>/<Class.test_name[param-id]>.yaml``, or the marker's cassette=."""
    return _default_path(request.node, llm_cassette_dir, llm_marker, _collected_for(request.node))


@pytest.fixture
def llm_scrubber() -> Scrubber:
    """Scrubs recordings and vetoes writes holding live credentials; override to name more
    credentials: ``return Scrubber(extra_headers=["x-tenant"], extra_query_params=["ticket"])``."""
    return Scrubber()


@pytest.fixture
def llm_placeholder_env() -> dict[str, str]:
    """Environment variables set (when unset) while a cassette only replays, so clients build offline."""
    return dict(PLACEHOLDER_ENV)


@pytest.fixture
def llm_allowed_hosts() -> tuple[str, ...]:
    """Hosts tests may still connect to in record mode none (e.g. a local database)."""
    return ()


@pytest.fixture
def llm_ignore(pytestconfig: pytest.Config) -> tuple[IgnoreRule | str, ...]:
    """Requests that are not LLM API calls: never recorded, refused in replay without failing the
    test. The defaults (trace uploads, price maps, telemetry) plus the llm_ignore ini key's rules;
    extend it with ``def llm_ignore(llm_ignore): return [*llm_ignore, "GET api.example.com/v1/models"]``.
    (Between tests and at exit, when no cassette is active, the defaults and the ini key's rules apply.)"""
    return pytestconfig.stash[_SETTINGS].ignore_rules


@pytest.fixture
def llm_ignore_fields(pytestconfig: pytest.Config) -> tuple[FieldPath | str, ...]:
    """Request body fields (JSON paths such as ``metadata.request_id``) that never decide a match,
    for every test: the llm_ignore_fields ini key's. prompt_cache_key is always ignored; a test adds
    its own with ``@pytest.mark.llm(ignore_fields=[...])``."""
    return pytestconfig.stash[_SETTINGS].ignore_fields


@pytest.fixture
def llm_normalize() -> Callable[[Any], Any] | None:
    """A function given a copy of each JSON request body (recorded and sent alike) that returns the
    body to match on: for what a test can't keep stable, such as today's date inside a prompt.
    None (the default): bodies are matched as sent, the ignored fields aside."""
    return None


@pytest.fixture
def llm_cassette() -> Iterator[LLMCassette]:
    """The test's cassette, active for every openai SDK call (sync, async, streaming) in the test.

    It exposes `loaded`, `played`, `recorded`, `misses` and `waits` (the retry sleeps asked for,
    skipped while replaying). In record mode none every other connection is refused too. It is
    saved after the test, secrets checked first. Its settings come from the fixtures above.
    """
    node, request = _running_test()
    settings, report = node.config.stash[_SETTINGS], node.config.stash[_REPORT]
    test_id = node.nodeid
    collected = settings.collected.get(test_id)  # `_collected`
    from_pytest = collected.from_pytest if collected is not None else _from_pytest(node, _overridden_settings(node))
    holding = _still_holding(collected, node)
    marker = _setting(request, from_pytest, "llm_marker", _marker, node, holding)
    directory = _setting(request, from_pytest, "llm_cassette_dir", _cassette_dir, settings)
    path = _setting(request, from_pytest, "llm_cassette_path", _default_path, node, directory, marker, holding)
    record_mode = _setting(request, from_pytest, "llm_record_mode", _record_mode, marker, settings)
    scrubber = _setting(request, from_pytest, "llm_scrubber", Scrubber)
    if scrubber is None:  # an override returning None: the cassette's default, which the failure output must use too
        scrubber = Scrubber()
    node.stash[_RUN] = run = _Run(scrubber, report)
    _WARNING_SCRUBBERS[test_id] = scrubber
    from pytest_llmcache.recorder import LLMCassette  # vcrpy with it (see `_Session.hold`)

    context = LLMCassette.use(
        path=path,
        record_mode=record_mode,
        test_id=test_id,
        scrubber=scrubber,
        session=report.session,
        ignore=_ignore_policy(request, from_pytest, settings),
        normalize=_normalizer(request, from_pytest, settings, marker),
        mode_source=_mode_source(marker, record_mode, settings),
        command_ids=settings.command_ids,
        command_options=settings.command_options,
    )
    settings.hold()
    # Context managers without an ExitStack or generators: every test enters them, and each object
    # they leave is one more for the garbage collector to go through.
    with context as cassette:
        if report.shared:
            cassette.sharing_tests = tuple(report.shared.get(report.cassette_name(path), ()))
        allowed_hosts: tuple[str, ...] = _setting(request, from_pytest, "llm_allowed_hosts", tuple)
        guard: contextlib.AbstractContextManager[Any]
        if cassette.mode == "none":
            guard = run.guard = network_blocked(allowed_hosts, functools.partial(_guard_hint, cassette))
        else:
            guard = recording_guarded(allowed_hosts, test_id)  # a generator: its EscapeGuard comes from entering it
        placeholders = _placeholders_set(request, node, _setting(request, from_pytest, "llm_placeholder_env", lambda: PLACEHOLDER_ENV)) if cassette.write_protected else _NOTHING
        with guard as watching, placeholders:
            if isinstance(watching, EscapeGuard):
                run.escapes = watching
            run.cassette = cassette
            yield cassette
    try:
        cassette.save()
    finally:  # what the file holds after the save (merged with other tests' recordings), or as it was
        report.add(cassette, test_id)
    if run.refusal is None:  # refused in the teardown of a fixture using it, after the call was judged
        _fail_on_refusal(node, run)


def _mode_source(marker: LLMMarker, record_mode: str, settings: _Session) -> str:
    """What set the test's record mode when not the command line or ini (their option does not
    override it): its marker, or an llm_record_mode fixture of the project's."""
    if record_mode != _record_mode(marker, settings):
        return "the llm_record_mode fixture"
    return f"the llm marker's record_mode={marker.record_mode!r}" if marker.record_mode else ""


def _guard_hint(cassette: LLMCassette) -> str:
    return " ".join(filter(None, ("(A service of your own? Allow its host with the llm_allowed_hosts fixture.) Record with:", cassette.record_command(), cassette.mode_note())))


def _ignore_policy(request: pytest.FixtureRequest, from_pytest: frozenset[str], settings: _Session) -> IgnorePolicy:
    rules = _setting(request, from_pytest, "llm_ignore", lambda: settings.ignore_rules)
    if rules is settings.ignore_rules:
        return settings.ignore  # parsed once, its per-URL answers kept for the session
    try:
        return IgnorePolicy.of(rules)
    except ValueError as err:
        raise pytest.UsageError(f"fixture llm_ignore: {err}") from None


def _normalizer(request: pytest.FixtureRequest, from_pytest: frozenset[str], settings: _Session, marker: LLMMarker) -> Normalizer:
    paths = _setting(request, from_pytest, "llm_ignore_fields", lambda: settings.ignore_fields)
    function = _setting(request, from_pytest, "llm_normalize", lambda: None)
    if paths is settings.ignore_fields and function is None and not marker.ignore_fields:
        return settings.normalize
    try:
        fields = tuple(path if isinstance(path, FieldPath) else FieldPath.parse(path) for path in paths)
    except ValueError as err:
        raise pytest.UsageError(f"fixture llm_ignore_fields: {err}") from None
    return Normalizer((*fields, *marker.ignore_fields), function)


_NOTHING = contextlib.nullcontext()


def _placeholders_set(request: pytest.FixtureRequest, node: pytest.Item, values: Mapping[str, str]) -> contextlib.AbstractContextManager[None]:
    """`_UnsetVariablesSet`, or through the test's monkeypatch when it uses one: its undo then puts
    back the test's own changes to these variables and ours in one go (ours put back first, its undo
    would restore our placeholder for the rest of the session). `node`: the request's test."""
    if "monkeypatch" not in getattr(node, "fixturenames", ()):
        return _UnsetVariablesSet(values)
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    for name, value in values.items():
        if not os.environ.get(name):
            monkeypatch.setenv(name, value)
    return _NOTHING


class _UnsetVariablesSet:
    """Each variable of `values` that is unset or empty is set while the block runs, then put back."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values
        self.previous: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for (name, value), current in zip(self.values.items(), environment_values(tuple(self.values)), strict=True):
            if not current:
                self.previous[name] = current
                os.environ[name] = value

    def __exit__(self, *exc_info: object) -> None:
        for name, before in self.previous.items():
            if before is not None:
                os.environ[name] = before
                continue
            try:  # del, not pop: pop reads the value first
                del os.environ[name]
            except KeyError:
                pass  # the test removed it already


@pytest.fixture
def llm_api_type(request: pytest.FixtureRequest, llm_marker: LLMMarker) -> str | None:
    """The API type for this test: its api_types parameter, else the marker's api_type, else
    None (the configured one)."""
    return getattr(request, "param", None) or llm_marker.api_type


@pytest.fixture
def llm_client(llm_cassette: LLMCassette, llm_api_type: str | None, llm_marker: LLMMarker, tmp_path: Path) -> Iterator[Any]:
    """``tinytroupe.openai_utils.client()`` for this test, under its cassette, with the marker's API
    type and API cache applied (cache off unless cache=True) and restored afterwards."""
    from tinytroupe import openai_utils

    cache_file = str(tmp_path / "llm-api-cache.sqlite3") if llm_marker.cache else None
    with openai_utils.overrides(
        api_type=llm_api_type, api_cache=llm_marker.cache, cache_file_name=cache_file, sleep=llm_cassette.sleep
    ):
        yield openai_utils.client()
