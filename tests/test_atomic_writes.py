"""The one atomic-write helper (pytest_llmcache.atomic) as the cassette save, prune and the played
record use it: full disks for real (a tiny tmpfs, RLIMIT_FSIZE), symlinked cassettes, temporary
files of live savers in other PID namespaces, and tinytroupe's API cache on a full disk."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import builders
import pytest

from pytest_llmcache import atomic, cassette
from pytest_llmcache.errors import WriteError


def interaction(text: str) -> dict:
    return builders.interaction(text, text)


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextlib.contextmanager
def mounted(target: Path, *args: str) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    if os.name != "posix" or not _mount(*args, str(target)):
        pytest.skip("needs `mount` (root or CAP_SYS_ADMIN) to make a small or read-only file system")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB file system: writes past it fail with ENOSPC."""
    folder = tmp_path / "disk"
    with mounted(folder, "-t", "tmpfs", "-o", "size=256k", "tmpfs"):
        yield folder


def fill(folder: Path) -> None:
    with contextlib.suppress(OSError), open(folder / "filler", "wb", buffering=0) as handle:
        while True:
            handle.write(b"x" * 512)


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_a_save_on_a_full_disk_names_the_file_leaves_it_as_it_was_and_leaves_no_temporary(small_disk: Path):
    path = small_disk / "c.yaml"
    cassette.save(path, [interaction("first")])
    before = path.read_bytes()
    with pytest.raises(WriteError) as error:
        cassette.save(path, [interaction("x" * 400_000)])  # larger than the whole disk
    assert str(path) in str(error.value) and "the disk is full" in str(error.value)
    assert path.read_bytes() == before
    assert listing(small_disk) == ["c.yaml"]  # no temporary file, no .bak (nothing changed)
    cassette.save(path, [interaction("first")])  # makes the .bak

    fill(small_disk)  # now not even a small file fits
    with pytest.raises(WriteError, match="the disk is full"):
        cassette.save(path, [interaction("second")])
    assert path.read_bytes() == before
    assert listing(small_disk) == ["c.yaml", "c.yaml.bak", "filler"]  # no temporary file


def test_a_write_past_the_file_size_limit_fails_cleanly(tmp_path: Path):
    """RLIMIT_FSIZE (EFBIG) in a child process: available to any user."""
    resource = pytest.importorskip("resource")
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from pytest_llmcache import cassette
        from pytest_llmcache.errors import WriteError
        path = {str(tmp_path / "c.yaml")!r}
        cassette.save(path, [{interaction("small")!r}])
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            cassette.save(path, [{interaction("y" * 20_000)!r}])
        except WriteError as err:
            print(err)
            sys.exit(3)
        """
    )
    assert resource.RLIMIT_FSIZE is not None
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 3, result.stderr
    assert f"{tmp_path / 'c.yaml'}: it could not be written: the disk is full" in result.stdout
    assert cassette.response_body(cassette.load(tmp_path / "c.yaml")[0]) == b"small"
    assert listing(tmp_path) == ["c.yaml"]


def test_a_symlinked_cassette_is_written_through_and_its_bak_is_a_real_copy(tmp_path: Path):
    real = tmp_path / "shared" / "real.yaml"
    cassette.save(real, [interaction("first")])
    (tmp_path / "cassettes").mkdir()
    link = tmp_path / "cassettes" / "c.yaml"
    link.symlink_to(real)
    before = real.read_bytes()
    cassette.save(link, [interaction("second")])
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert cassette.response_body(cassette.load(real)[0]) == b"second"
    backup = real.with_name("real.yaml.bak")
    assert backup.is_file() and not backup.is_symlink() and backup.read_bytes() == before
    assert listing(tmp_path / "cassettes") == ["c.yaml"]


def test_the_bak_is_a_copy_not_a_link_to_the_old_file(tmp_path: Path):
    path = tmp_path / "c.yaml"
    cassette.save(path, [interaction("first")])
    first = path.read_bytes()
    cassette.save(path, [interaction("second")])
    backup = tmp_path / "c.yaml.bak"
    assert backup.stat().st_nlink == 1 and backup.read_bytes() == first
    assert listing(tmp_path) == ["c.yaml", "c.yaml.bak"]


HOLDER = """
import os, sys
from pathlib import Path
from pytest_llmcache import atomic
folder = Path(sys.argv[1])
with atomic.locked(folder):
    temporary = folder / sys.argv[2]
    temporary.write_text("half of a save")
    print("holding", flush=True)
    sys.stdin.readline()  # the other saver is waiting for the lock now (or has already run)
    print("present" if temporary.exists() else "deleted", flush=True)
    temporary.unlink(missing_ok=True)
"""


@pytest.mark.parametrize("name", [".c.yaml.llmcache-{hex}.tmp", ".c.yaml.{dead}.tmp"])
def test_a_saver_never_deletes_the_temporary_file_of_a_live_saver(tmp_path: Path, name: str):
    """The other saver may be in another PID namespace (a container sharing the folder): its
    process id then looks dead here. Its file must survive; it is removed once it is stale."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    name = name.format(hex=uuid.uuid4().hex, dead=dead)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        import threading

        saver = threading.Thread(target=cassette.save, args=(tmp_path / "c.yaml", [interaction("x")]))
        saver.start()
        saver.join(1.0)  # time for a saver that does not wait for the lock to do its damage
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "present"
        saver.join()
    finally:
        holder.kill()
        holder.wait()
    assert listing(tmp_path) == ["c.yaml"]


def test_a_save_removes_temporaries_left_by_killed_savers(tmp_path: Path):
    for name in (f".c.yaml.llmcache-{uuid.uuid4().hex}.tmp", f".other.yaml.llmcache-{uuid.uuid4().hex}.tmp", ".c.yaml.12345.tmp"):
        (tmp_path / name).write_text("partial")
    (tmp_path / ".notes.tmp").write_text("not ours")
    cassette.save(tmp_path / "c.yaml", [interaction("x")])
    assert listing(tmp_path) == [".notes.tmp", "c.yaml"]


def test_remove_keeps_a_bak_and_a_symlink_target_stays(tmp_path: Path):
    path = tmp_path / "c.yaml"
    cassette.save(path, [interaction("x")])
    content = path.read_bytes()
    link = tmp_path / "link.yaml"
    link.symlink_to(path)
    atomic.remove(link)
    assert not link.exists() and not link.is_symlink() and path.read_bytes() == content
    assert (tmp_path / "link.yaml.bak").read_bytes() == content and not (tmp_path / "link.yaml.bak").is_symlink()
    atomic.remove(path)
    assert listing(tmp_path) == ["c.yaml.bak", "link.yaml.bak"]


def test_the_api_cache_on_a_full_disk_says_the_disk_is_full(small_disk: Path):
    from tinytroupe.cache import ApiCache
    from tinytroupe.errors import CacheError

    cache = ApiCache(small_disk / "cache.sqlite3")
    try:
        cache.put("first", {"answer": "kept"})
        fill(small_disk)
        with pytest.raises(CacheError) as error:
            for index in range(1000):
                cache.put(f"key {index}", {"answer": "x" * 20_000})
        assert str(small_disk / "cache.sqlite3") in str(error.value)
        assert "the disk is full" in str(error.value) and "damaged" not in str(error.value)
        (small_disk / "filler").unlink()
        assert cache.get("first") == {"answer": "kept"}
    finally:
        cache.close()


REPLAYED = '''
import openai

def test_asks(llm_cassette):
    reply = openai.OpenAI(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "echo: hi"
'''


def test_a_replay_only_session_on_a_read_only_checkout_passes_and_only_warns_about_its_record(suite):
    suite.write(REPLAYED)
    suite.live()
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    suite.offline()
    checkout = suite.pytester.path
    with mounted(checkout, "--bind", str(checkout)):
        if not _mount("-o", "remount,bind,ro", str(checkout)):
            pytest.skip("needs `mount -o remount,bind,ro` to make a read-only checkout")
        before = sorted(str(path) for path in checkout.rglob("*"))
        result = suite.pytester.runpytest("-p", "no:cacheprovider")
        assert result.ret == 0, result.stdout.str()
        result.assert_outcomes(passed=1)
        output = result.stdout.str()
        record = checkout / ".pytest_cache" / "d" / "llmcache" / "played.json"
        assert f"llmcache: the played record was not written ({record.parent}" in output and "Read-only file system" in output
        assert "Traceback" not in output and "OSError" not in output
        assert sorted(str(path) for path in checkout.rglob("*")) == before


def test_a_played_record_on_a_full_disk_is_a_warning_and_leaves_no_temporary_file(suite, small_disk: Path):
    suite.write(REPLAYED)
    suite.live()
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    suite.offline()
    fill(small_disk)
    result = suite.run(f"--llm-played={small_disk / 'played.json'}")
    assert result.ret == 0
    assert f"{small_disk / 'played.json'}: it could not be written: the disk is full" in result.stdout.str()
    assert listing(small_disk) == ["filler"]
