"""The SQLite API cache: JSON only, shared safely across processes, never silently discarded."""
from __future__ import annotations

import multiprocessing
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytroupe.cache import ApiCache, request_key
from tinytroupe.errors import CacheError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=5))
def test_request_key_ignores_key_order(params):
    reordered = dict(reversed(list(params.items())))
    assert request_key("gpt-4o", params) == request_key("gpt-4o", reordered)
    assert request_key("gpt-4o", params) != request_key("gpt-4.1", params)


@settings(max_examples=60, deadline=None)
@given(json_values)
def test_values_round_trip_as_json(tmp_path_factory, value):
    cache = ApiCache(tmp_path_factory.mktemp("c") / "cache.sqlite3")
    cache.put("k", value)
    assert cache.get("k") == value
    cache.close()


def test_entries_persist_across_instances(tmp_path):
    path = tmp_path / "cache.sqlite3"
    first = ApiCache(path)
    first.put("a", {"choices": [{"message": {"content": "hi"}}]})
    first.close()
    second = ApiCache(path)
    assert second.get("a") == {"choices": [{"message": {"content": "hi"}}]}
    assert "a" in second and "b" not in second and len(second) == 1


def _write_entries(path: str, worker: int, count: int) -> None:
    cache = ApiCache(path)
    for index in range(count):
        cache.put(f"{worker}-{index}", {"worker": worker, "index": index})
    cache.close()


def test_concurrent_writer_processes_lose_no_entry(tmp_path):
    path = str(tmp_path / "shared.sqlite3")
    ApiCache(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_entries, args=(path, worker, 150)) for worker in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    cache = ApiCache(path)
    assert len(cache) == 600
    assert cache.get("3-149") == {"worker": 3, "index": 149}


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x80\x04\x95 pickled", "never unpickled"),
        (b"garbage that is not a database" * 40, "not a usable API cache"),
    ],
)
def test_bad_files_raise_naming_the_file_and_are_kept(tmp_path, content, message):
    path = tmp_path / "cache.sqlite3"
    path.write_bytes(content)
    with pytest.raises(CacheError, match=message) as error:
        ApiCache(path)
    assert str(path) in str(error.value)
    assert path.read_bytes() == content


def test_an_empty_file_is_a_new_cache(tmp_path):
    path = tmp_path / "cache.sqlite3"
    path.touch()  # what a concurrent process's connect() leaves before its first write
    cache = ApiCache(path)
    cache.put("k", 1)
    assert cache.get("k") == 1


def test_a_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('format', 'something-else'), ('version', '9')")
    with pytest.raises(CacheError, match="not an API cache of this version"):
        ApiCache(path)


def test_truncated_database_is_reported(tmp_path):
    path = tmp_path / "cache.sqlite3"
    cache = ApiCache(path)
    for index in range(300):
        cache.put(str(index), {"text": "x" * 200})
    cache.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CacheError, match=str(path)):
        opened = ApiCache(path)
        for index in range(300):
            opened.get(str(index))
