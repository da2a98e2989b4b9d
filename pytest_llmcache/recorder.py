"""The glue to vcrpy: the cassette its stubs ask, replaying by canonical key.

vcrpy's stubs, put in place by `pytest_llmcache.stacks` on every HTTP stack the SDKs and
frameworks send through (httpx, httpx2, aiohttp), ask the active cassette, per request:
`can_play_response_for` -> `play_response`, or (when recording) `append`. That interface is all
`LLMCassette` shares with vcrpy's `Cassette` (whose constructor, matchers and hooks it never used:
it was a subclass once, and building one cost every test more than its replay). Here a request
is keyed once (`matching.request_key`) and looked up in a dict of key -> queue of recorded
responses, so replay cost doesn't grow with the cassette and identical requests get their
responses in recorded order. Responses recorded in this run are never replayed in it: the server
is the source of truth while recording (a recorded 429 must not answer its own retry).
"""
from __future__ import annotations

import contextlib
import json
import shlex
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio
from vcr.request import Request

from pytest_llmcache import atomic
from pytest_llmcache import cassette as cassette_file
import pytest_llmcache.stacks as stacks  # by its name, as the plugin imports it (see `_Session.hold`)
from pytest_llmcache.errors import MissingRecording, WriteError
from pytest_llmcache.ignoring import IgnorePolicy
from pytest_llmcache.matching import Normalizer, RequestView, body_diff, closest, request_key, stored_request_key
from pytest_llmcache.providers import provider_for
from pytest_llmcache.scrubbing import Scrubber
from pytest_llmcache.modes import RECORD_MODES
from pytest_llmcache.paths import display

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["RECORD_MODES", "LLMCassette", "PlayedRequest", "RecordingSession"]

_SESSION_RECORD_DAYS = 2  # a session's record of what it wrote is kept this long (no session lasts longer)


@dataclass(frozen=True)
class RecordingSession:
    """One pytest session, all of its xdist workers included (`id`: xdist's shared run id).

    `rewrite` starts a cassette afresh once per session and `all` replaces recordings made before
    the session; both need to know which interactions of a file this session wrote, whichever
    worker wrote them: ``<folder>/<id>.json`` maps each cassette's real path to their digests.
    """

    id: str
    folder: Path

    @property
    def _path(self) -> Path:
        return self.folder / f"{self.id}.json"

    def _read(self) -> dict[str, list[str]]:
        try:
            document = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise WriteError(self._path, f"this session's record of what it wrote can't be read ({err})") from None
        return document if isinstance(document, dict) else {}

    def _remove_old(self) -> None:
        cutoff = time.time() - _SESSION_RECORD_DAYS * 86400
        for path in self.folder.glob("*.json"):
            with contextlib.suppress(OSError):  # another session's cleanup got there first
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    def written(self, cassette: Path) -> set[str]:
        """The digests of the interactions this session wrote into `cassette` (a resolved path)."""
        with atomic.locked(self.folder):
            return set(self._read().get(str(cassette), ()))

    def add(self, cassette: Path, digests: list[str]) -> None:
        with atomic.locked(self.folder) as folder:
            if not self._path.exists():  # this session's first save: the records of old sessions go
                self._remove_old()
            document = self._read()
            document[str(cassette)] = sorted(set(document.get(str(cassette), ())) | set(digests))
            folder.replace(self._path, json.dumps(document).encode("utf-8"), backup=False)


class PlayedRequest(NamedTuple):
    """A replayed request as it was sent, its URI's credentials masked: what the session report
    reads the provider and the endpoint from (the host, the path, the header names), so the
    recorded request is not parsed again."""

    uri: str
    header_names: tuple[str, ...]


class _Keyed(NamedTuple):
    """What keying a request found, kept on it: vcrpy asks about a request twice."""

    cassette: LLMCassette
    key: str
    sent: PlayedRequest


class LLMCassette:
    """One test's cassette: what was loaded, played, recorded and missed, and the waits asked for.
    Record modes: pytest-recording's (vcrpy's, plus "rewrite": record everything into a fresh
    cassette)."""

    def __init__(
        self,
        path: Path | str,
        record_mode: str = "none",
        test_id: str = "",
        scrubber: Scrubber | None = None,
        session: RecordingSession | None = None,
        ignore: IgnorePolicy | None = None,
        normalize: Normalizer | None = None,
        mode_source: str = "",
        command_ids: Callable[[str], str] | None = None,
        command_options: tuple[str, ...] = (),
    ) -> None:
        if record_mode not in RECORD_MODES:
            raise ValueError(f"unknown record mode {record_mode!r}; use one of {', '.join(RECORD_MODES)}")
        self._path = path if isinstance(path, Path) else Path(path)
        self.mode = record_mode
        self.mode_source = mode_source  # what set this test's own mode (its marker), which --llm-record-mode does not override
        self.test_id = test_id
        self.command_ids = command_ids  # a node id as a command run where pytest was started takes it (None: as it is)
        self.command_options = command_options  # given on the command line and deciding where the cassette is
        self.scrubber = scrubber if scrubber is not None else Scrubber()
        self.ignore = ignore if ignore is not None else IgnorePolicy()
        self.ignored: list[str] = []  # requests the ignore policy covered: sent unrecorded, or refused in replay
        self.normalize = normalize if normalize is not None else Normalizer()  # the test's ignored fields / normaliser
        self._entry_keys: list[str] = []  # the key each loaded interaction is matched by, in this test
        self.loaded: list[cassette_file.Entry] = []  # parsed only when played or inspected
        self.existed = False  # whether a cassette file was there when the test started
        self.played: list[int] = []  # indexes into `loaded`, in play order
        self.played_requests: list[PlayedRequest] = []  # the request each of `played` answered
        self.recorded: list[cassette_file.Interaction] = []
        self.misses: list[MissingRecording] = []
        self.sharing_tests: tuple[str, ...] = ()  # every collected test using this cassette, when several do
        self.waits: list[float] = []  # what the SDK's or the library's backoff asked to sleep
        self.session = session
        self.file_digests: list[str] | None = None  # what `save` wrote
        self._recorded_as_entries: list[cassette_file.Entry] = []  # what its saves wrote of `recorded`
        self._renamed: dict[str, str] = {}  # digest as loaded -> as saved, for interactions written anew
        self._queues: dict[str, deque[int]] = {}
        self.dirty = False  # recorded and not saved yet
        self._written = 0  # how many of `recorded` a save wrote: the next save writes the rest
        self._saved = False  # whether `save` ran: what is recorded after it is saved as it comes
        self._log_masking = self.scrubber.masking_logs()  # while in use (`__enter__`)

    @property
    def path(self) -> Path:
        """The cassette file."""
        return self._path

    def __repr__(self) -> str:
        return f"<LLMCassette {display(self._path)} ({self.mode}): {len(self.loaded)} loaded, {len(self.played)} played, {len(self.recorded)} recorded>"

    @classmethod
    def use(cls, **kwargs: Any) -> Self:
        """The cassette, to use once as ``with LLMCassette.use(...) as cassette:``: loaded and active
        for every patched stack while the block runs, its secrets masked in log records meanwhile.
        Saving is the caller's: `save()` after the block."""
        return cls(**kwargs)

    def __enter__(self) -> Self:
        self._load()
        self._log_masking.__enter__()
        try:
            stacks.activate(self)
        except BaseException:
            self._log_masking.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            stacks.deactivate(self)
        finally:
            self._log_masking.__exit__(None, None, None)

    @property
    def write_protected(self) -> bool:
        """True when the cassette only replays: mode none, or mode once with a cassette on disk."""
        return self.mode == "none" or (self.mode == "once" and self.existed)

    def _load(self) -> None:
        if self.mode == "rewrite":
            return
        try:
            self.loaded = cassette_file.load_entries(self._path)
        except FileNotFoundError:
            return
        self.existed = True
        # The keys in the file were computed without this test's normalisation: with one, each
        # interaction is keyed again from its request alone (its response stays unparsed).
        self._entry_keys = [self._match_key(entry) for entry in self.loaded]
        for index, key in enumerate(self._entry_keys):
            self._queues.setdefault(key, deque()).append(index)

    def _match_key(self, entry: cassette_file.Entry) -> str:
        """A recorded interaction's key as this test matches: the file's own unless the test
        normalises bodies (then keyed again from its request alone; the response stays unparsed)."""
        return stored_request_key(entry.request, self.normalize) if self.normalize else entry.request_key

    def _keyed(self, request: Request) -> _Keyed:
        # Keyed with its own credentials masked, as it is stored: a live key inside the body or
        # query of a recording then matches the placeholder (or another key) sent on replay.
        kept = getattr(request, "_llmcache_key", None)
        if kept is not None and kept.cassette is self:
            return kept
        headers = request.header_map if isinstance(request, stacks.SentRequest) else None
        if headers is None:  # lower_items: vcrpy's header dict read without a lookup per name
            headers = dict(request.headers.lower_items())
        masked = self.scrubber.masked_request(request.uri, headers, request.body)
        key = request_key(request.method, masked.uri, masked.body, masked.document, self.normalize)
        keyed = _Keyed(self, key, PlayedRequest(masked.uri, tuple(headers)))
        request._llmcache_key = keyed
        return keyed

    # -- what vcrpy's transport stubs call ----------------------------------------------------

    def can_play_response_for(self, request: Request) -> bool:
        # Always the stubs' first call for a request: from here on its body is the bytes sent.
        request.body = stacks.body_bytes(request.body)
        if self.mode in ("all", "rewrite"):
            return False
        key = self._keyed(request).key
        if self._queues.get(key):
            return True
        if self.write_protected:
            # vcrpy would raise CannotOverwriteExistingCassetteException next, after scanning every
            # interaction; ours says what to do. Kept in `misses` too, as clients may swallow it.
            miss = self._miss(request, key)
            self.misses.append(miss)
            raise miss
        return False

    def play_response(self, request: Request) -> dict[str, Any]:
        keyed = self._keyed(request)
        queue = self._queues.get(keyed.key)
        if not queue:  # vcrpy's aiohttp stub plays where a redirect leads without asking first
            request.body = stacks.body_bytes(request.body)
            miss = self._miss(request, keyed.key)
            self.misses.append(miss)
            raise miss
        index = queue.popleft()
        self.played.append(index)
        self.played_requests.append(keyed.sent)
        status, headers, body = self.loaded[index].replay()
        return {"status": status, "headers": headers, "body": {"string": body}}

    def filter_request(self, request: Request) -> Request:
        """vcrpy's hook for requests never to record: none here (`ignore` decides before the stubs)."""
        return request

    def find_requests_with_most_matches(self, request: Request) -> list[tuple[Request]]:
        """Where a replayed redirect leads, as vcrpy's aiohttp stub asks (with a GET and no body,
        while a 307 or 308 was followed with the method kept, and recorded so): the recorded
        requests to that URL not played yet, in recorded order, each keyed as recorded."""
        target = RequestView(request.method, self.scrubber.masked_request(request.uri, {}, b"").uri, b"").target
        found: list[tuple[Request]] = []
        for index in sorted(queue[0] for queue in self._queues.values() if queue):
            stored = self.loaded[index].request
            if RequestView(stored["method"], stored["uri"], b"").target == target:
                candidate = Request(stored["method"], stored["uri"], b"", {})
                candidate._llmcache_key = _Keyed(self, self._entry_keys[index], PlayedRequest(stored["uri"], ()))
                found.append((candidate,))
        return found

    def append(self, request: Request, response: dict[str, Any]) -> None:
        self.recorded.append(
            {
                "request": self.scrubber.request(request.method, request.uri, request.headers, request.body or b""),
                "response": self.scrubber.response(response["status"], response["headers"], response["body"].get("string", b"")),
            }
        )
        self.dirty = True
        if self._saved:  # answered after its test saved (a request still in flight then): not lost
            self.save()

    @property
    def all_played(self) -> bool:
        return len(self.played) == len(self.loaded)

    def __len__(self) -> int:
        return len(self.loaded) + len(self.recorded)

    # -- after the test -----------------------------------------------------------------------

    def save(self) -> None:
        """Write what this test recorded, merged with the cassette as it is on disk now, under the
        folder's lock (other tests, xdist workers or processes may share the file; see
        `_merged`). Atomic; secrets checked first. Nothing is written when nothing was recorded
        (a replay-only test never touches the cassette folder). Saved again, it writes only what
        was recorded since: the file already holds the rest."""
        rewriting = not self._saved and self.mode == "rewrite" and Path(self._path).exists()
        self._saved = True
        if self.write_protected or not (self._written < len(self.recorded) or rewriting):
            return
        target = atomic.resolve(self._path)
        with atomic.locked(target.parent) as folder:  # (a lock per descriptor: threads wait too)
            pending = self.recorded[self._written :]
            if not (pending or rewriting):
                return  # late answers saved meanwhile by another thread's save
            kept = self._merged(target)
            before = [entry.digest for entry in kept]
            # Every interaction written goes through the scrubber: old ones of a plain vcrpy cassette too.
            items = self.scrubber.stored_interactions([*kept, *pending])
            fresh = [item for item in items if isinstance(item, dict)]
            entries = [item if isinstance(item, cassette_file.Entry) else cassette_file.Entry.of(item, target) for item in items]
            self._renamed.update((old, entry.digest) for old, entry in zip(before, entries, strict=False) if old != entry.digest)
            written = entries[len(kept) :]
            if self.session is not None:  # noted first: a kill between the two writes loses nothing
                self.session.add(target, [entry.digest for entry in written])
            self.file_digests = cassette_file.save_locked(
                folder, target, entries, check=lambda text: self.scrubber.check(text, Path(self._path), fresh)
            )
            self._recorded_as_entries = [*self._recorded_as_entries, *written]
            self._written += len(pending)
        self.dirty = self._written < len(self.recorded)

    def _merged(self, target: Path) -> list[cassette_file.Entry]:
        """What stays of the file on disk next to this test's recordings. `new_episodes` and
        `once` keep everything; `all` drops the recordings, made before this session, of the
        requests this test recorded again; `rewrite` keeps only what this session recorded (so its
        first save of a cassette starts it afresh, and the other tests sharing it add theirs)."""
        written = {entry.digest for entry in self._recorded_as_entries}  # by this cassette's earlier saves
        if self.session is not None:
            written |= self.session.written(target)
        if self.mode == "rewrite" and not written:
            return []  # not read at all: a broken file is replaced (and kept as .bak)
        try:
            on_disk = cassette_file.load_entries(target)
        except FileNotFoundError:
            return []
        if self.mode == "rewrite":
            return [entry for entry in on_disk if entry.digest in written]
        if self.mode == "all":
            rerecorded = {stored_request_key(interaction["request"], self.normalize) for interaction in self.recorded}
            return [entry for entry in on_disk if self._match_key(entry) not in rerecorded or entry.digest in written]
        return on_disk

    def used_digests(self) -> list[str]:
        """The digests (`cassette.Entry.digest`) of the interactions this test played or recorded,
        as written (an interaction of a foreign cassette is written anew, scrubbed, when saved)."""
        played = {self._renamed.get(digest, digest) for digest in (self.loaded[index].digest for index in self.played)}
        unsaved = [cassette_file.Entry.of(interaction, Path(self._path)) for interaction in self.recorded[self._written :]]
        return sorted(played | {entry.digest for entry in (*self._recorded_as_entries, *unsaved)})

    def cassette_digests(self) -> list[str]:
        """The digests of the interactions in the cassette file as this test left it."""
        if self.file_digests is None:
            return [entry.digest for entry in self.loaded]
        return list(self.file_digests)

    def sleep(self, seconds: float) -> None:
        """A backoff's sleep: noted in `waits`, and skipped when only replaying."""
        self.waits.append(seconds)
        if not self.write_protected:
            time.sleep(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if not self.write_protected:
            await anyio.sleep(seconds)

    # -- the missing-recording message ---------------------------------------------------------

    def _miss(self, request: Request, key: str) -> MissingRecording:
        masked = self.scrubber.masked_request(request.uri, request.headers, request.body)
        sent = RequestView(request.method, masked.uri, masked.body)
        path = display(Path(self._path))
        # The first line alone is what pytest's short summary shows: it names the request.
        lines = [f"No recorded response for {sent.summary()}  in cassette {path} (record mode {self.mode!r})"]
        if key in self._queues:
            count = sum(1 for index in self.played if self._entry_keys[index] == key)
            lines.append(f"It was recorded {count} time(s) and all of them were played: the test now sends it more often.")
        elif self.loaded:
            found = closest(sent, (RequestView.of_stored(entry.interaction["request"]) for entry in self.loaded))
            assert found is not None
            index, recorded = found
            lines.append(f"The closest recorded request is interaction #{index}: {recorded.summary()}")
            diff = body_diff(recorded, sent)
            ignored = self.normalize.differing(recorded.document, sent.document)
            if ignored:
                lines.append(f"Ignored when matching (so not why it missed): {', '.join(ignored)}.")
            if diff:
                lines += ["Body diff, recorded -> sent:", *(f"    {line}" for line in diff)]
            else:
                lines.append(f"Same body; the method or path differs ({recorded.method} {recorded.target}).")
        else:
            lines.append("The cassette file does not exist yet." if not self.existed else "The cassette has no interactions.")
        credentials = provider_for(request.uri, request.headers).credential_hint
        lines += [f"To record it, set {credentials} to a real endpoint/key and run:", f"    {self.record_command()}"]
        if self.mode_source:
            lines.append(self.mode_note())
        if self.existed:
            lines.append("(rewrite records the cassette afresh, so no stale interaction stays; the old file is kept as .bak)")
        return MissingRecording("\n".join(lines), cassette_path=Path(self._path), request_summary=sent.summary())

    def mode_note(self) -> str:
        """What to change before running `record_command` when the test's own mode does not come
        from the command line (else the command would run in this same mode again)."""
        return f"(first change {self.mode_source}, which sets record mode {self.mode!r} for this test whatever the command line says)" if self.mode_source else ""

    def record_command(self) -> str:
        """The one command that brings this cassette up to date: `once` creates a missing cassette;
        an existing or shared one is recorded afresh with `rewrite`, by every test that shares it
        (adding with new_episodes would leave the stale interaction behind, which --llm-strict
        then reports)."""
        mode = "rewrite" if self.existed or self.sharing_tests else "once"
        tests = self.sharing_tests or ((self.test_id,) if self.test_id else ())
        if self.command_ids is not None:
            tests = tuple(map(self.command_ids, tests))
        return " ".join(["pytest", *map(shlex.quote, (*tests, *self.command_options)), f"--llm-record-mode={mode}"])
