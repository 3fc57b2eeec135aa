"""Batches against a fake Destination: the order that protects data, and what a failure
at each step leaves in a real catalog and a real audit log."""

import errno
import json
import threading
from types import SimpleNamespace

import pytest

from fastsync.audit import AuditLog
from fastsync.catalog import Catalog, PendingFile, to_db
from fastsync.errors import FatalError, Interrupted, is_fatal
from fastsync.finisher import Again, Finisher
from fastsync.pipeline import TransferStats
from fastsync.retry import Policy, Retrier

SRC, DST = b"/data/src", b"/data/dst"
STAT = (0o100644, 5, 11, 22, 33, 44, 0, 0, 1, 1)    # _core stat tuple: size 5


class FakeDestination:
    """Records every call; `fail` maps a call name to the error it raises (once per
    matching path if the value is a (path, error) pair)."""

    def __init__(self, fail=None):
        self.calls, self.fail = [], dict(fail or {})

    def _do(self, name, *args):
        self.calls.append((name, *args))
        error = self.fail.get(name)
        if isinstance(error, tuple):
            path, error = error
            if path not in args:
                return
        if error is not None:
            raise error

    def check(self):
        self._do("check")

    def syncfs(self):
        self._do("syncfs")

    def rename(self, tmp, final, retrying):
        self._do("rename", final)

    def sync_dir(self, directory):
        self._do("sync_dir", directory)

    def discard(self, fd, tmp):
        self.calls.append(("discard", tmp))


@pytest.fixture
def env(tmp_path):
    cat = Catalog.open(str(tmp_path / "c.db"), SRC, DST, "test")
    names = [b"/a/one", b"/a/two", b"/b/three"]
    cat.begin_scan()
    cat.add_source([(to_db(SRC + n), to_db(DST + n), "file", 5, None, 1, 1, 1, 0o644, 0, 0,
                     None, 0) for n in names], 1)
    cat.finish_scan(1)
    run_id = cat.start_run("scan", "sha256", "test")
    audit = AuditLog(str(tmp_path / "audit.log"))
    stop = threading.Event()
    yield SimpleNamespace(cat=cat, audit=audit, run_id=run_id, stop=stop, names=names,
                          log=tmp_path / "audit.log")
    audit.close()
    cat.close()


def job(name, own_fsync=False):
    entry = PendingFile(SRC + name, DST + name, "file", 5, None, to_db(SRC + name))
    return SimpleNamespace(entry=entry, tmp=DST + name + b".tmp", retries=0, stat=STAT,
                           hash="ab" * 32, touched=[], own_fsync=own_fsync)


def finisher(env, dest, fatal=None):
    stats = TransferStats()
    roots = {"dst": SimpleNamespace(problem=lambda: None)}
    retrier = Retrier(Policy(retries=0, delay=0.001), roots, env.stop)

    def settle(error):
        if is_fatal(error):
            fatal.append(error) if fatal is not None else None
            return Interrupted()
        return error
    again = Again(0.001)
    return Finisher(dest, env.cat, env.audit, retrier, again, stats, algo="sha256",
                    run_id=env.run_id, settle=settle, stopping=env.stop.is_set), stats, again


def rows(env):
    return {bytes(r[0], "utf-8")[len(SRC):]: (r[1], r[2], r[3]) for r in env.cat._query(
        "SELECT src_path, status, hash, attempts FROM files ORDER BY src_path")}


def audit_lines(env):
    env.audit.flush()
    return [json.loads(line) for line in env.log.read_text().splitlines()]


def test_a_local_batch_is_flushed_renamed_flushed_checked_then_recorded(env):
    dest = FakeDestination()
    fin, stats, _ = finisher(env, dest)
    fin.commit([(job(n), None) for n in env.names])
    assert [c[0] for c in dest.calls] == ["check", "syncfs", "rename", "rename", "rename",
                                          "syncfs", "check"]
    assert {n: r[0] for n, r in rows(env).items()} == dict.fromkeys(env.names, "synced")
    assert stats.files_done == 3 and stats.bytes_done == 15
    assert [e["status"] for e in audit_lines(env)] == ["ok"] * 3


def test_files_renamed_by_their_writers_get_one_directory_flush_each(env):
    dest = FakeDestination()
    fin, stats, _ = finisher(env, dest)
    fin.commit([(job(n, own_fsync=True), None) for n in env.names])
    assert sorted(c for c in dest.calls if c[0] == "sync_dir") == [
        ("sync_dir", DST + b"/a"), ("sync_dir", DST + b"/b")]
    assert "syncfs" not in [c[0] for c in dest.calls]     # nothing left for a batch flush
    assert stats.files_done == 3


def test_a_failed_data_flush_records_nothing_as_synced_and_copies_again(env):
    dest = FakeDestination({"syncfs": OSError(errno.EIO, "Input/output error")})
    fin, stats, again = finisher(env, dest)
    fin.commit([(job(n), None) for n in env.names])
    assert "rename" not in [c[0] for c in dest.calls]     # never renamed without its data
    assert sorted(c[1] for c in dest.calls if c[0] == "discard") == sorted(
        DST + n + b".tmp" for n in env.names)
    assert {r[0] for r in rows(env).values()} == {"pending"}
    assert {r[2] for r in rows(env).values()} == {1}      # one failed attempt each
    assert stats.files_done == 0 and stats.files_retried == 3
    assert again.next(lambda: True) is not None           # taken up again in this run
    assert all("write-back failed" in e["error"] for e in audit_lines(env))


def test_a_failed_directory_flush_fails_only_that_directorys_files(env):
    dest = FakeDestination({"sync_dir": (DST + b"/a", OSError(errno.EIO, "I/O error"))})
    fin, stats, _ = finisher(env, dest)
    fin.commit([(job(n, own_fsync=True), None) for n in env.names])
    got = rows(env)
    assert got[b"/a/one"][0] == got[b"/a/two"][0] == "pending"
    assert got[b"/b/three"][0] == "synced"
    assert stats.files_done == 1


def test_a_dst_that_changed_under_the_renames_is_never_recorded_as_synced(env):
    checks = iter([None, OSError(errno.ENOTCONN, "DST is no longer the directory")])

    class Unmounted(FakeDestination):
        def check(self):
            self.calls.append(("check",))
            error = next(checks)
            if error:
                raise error
    dest = Unmounted()
    fin, stats, _ = finisher(env, dest)
    fin.commit([(job(n), None) for n in env.names])
    assert {r[0] for r in rows(env).values()} == {"pending"}
    assert stats.files_done == 0


def test_a_fatal_error_stops_without_counting_an_attempt(env):
    fatal = []
    dest = FakeDestination({"rename": OSError(errno.ENOSPC, "No space left on device")})
    fin, stats, _ = finisher(env, dest, fatal)
    fin.commit([(job(n), None) for n in env.names])
    assert fatal and {r[0] for r in rows(env).values()} == {"pending"}
    assert {r[2] for r in rows(env).values()} == {0}      # not the files' fault
    assert stats.files_failed == 0 and stats.files_done == 0


def test_counters_move_only_once_the_batch_is_recorded(env, monkeypatch):
    fin, stats, _ = finisher(env, FakeDestination())

    def full(*args, **kw):
        raise FatalError("catalog: database or disk is full")
    monkeypatch.setattr(env.cat, "record", full)
    with pytest.raises(FatalError):
        fin.commit([(job(n), None) for n in env.names])
    assert stats.files_done == 0 and stats.bytes_done == 0
