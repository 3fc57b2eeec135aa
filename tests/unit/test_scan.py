"""Scanning real SRC and DST trees into a real catalog: what becomes pending, what is
already in sync, what is kept from an earlier scan, and what is never copied."""

import json
import os
import threading

import pytest

from fastsync import _core, faults
from fastsync.audit import AuditLog
from fastsync.catalog import Catalog, Outcome, to_db
from fastsync.retry import Policy, Retrier, Root
from fastsync.scan import scan

from ..conftest import write

T = 1_700_000_000_123_456_789          # an mtime with every digit significant
SECOND = 10**9
TEMP = ".fastsync-0123456789abcdef.tmp"  # a name reserved for fastsync's temporaries


@pytest.fixture
def env(pair):
    src, dst = os.fsencode(pair.src), os.fsencode(pair.dst)
    cat = Catalog.open(str(pair.db), src, dst, "t")
    audit = AuditLog(str(pair.log))
    run = cat.start_run("scan", "sha256", "t")
    yield Env(pair, cat, audit, run)
    audit.close()
    cat.close()


class Env:
    def __init__(self, pair, cat, audit, run):
        self.pair, self.cat, self.audit, self.run = pair, cat, audit, run
        self.src, self.dst = os.fsencode(pair.src), os.fsencode(pair.dst)

    def scan(self, window=1, stop=None):
        stop = stop or threading.Event()
        roots = {"src": Root("SRC", self.src), "dst": Root("DST", self.dst, writable=True)}
        retrier = Retrier(Policy(retries=1, delay=0.001), roots, stop)
        result = scan(self.cat, self.src, self.dst, window, stop, lambda stats: None,
                      self.audit, retrier)
        self.audit.flush()
        return result

    def rows(self) -> dict[bytes, dict]:
        """Catalog rows by path relative to SRC (b"" is SRC itself)."""
        out = {}
        for r in self.pair.rows():
            path = r["src_path"] if isinstance(r["src_path"], bytes) else r["src_path"].encode()
            out[path[len(self.src) + 1:]] = dict(r)
        return out

    def status(self, rel: str) -> str:
        return self.rows()[os.fsencode(rel)]["status"]

    def mark_copied(self, rel: str, digest: str) -> None:
        """Record `rel` as copied by fastsync, as the finisher does."""
        path = self.src + b"/" + os.fsencode(rel)
        st = _core.lstat(path)
        self.cat.record(self.run, [Outcome(to_db(path), True, size=st[1], hash=digest,
                                           stat=st)], "sha256")


def both(pair, rel, data, mtime_ns=T, dst_data=None, dst_mtime_ns=None):
    write(pair.src / rel, data, mtime_ns)
    write(pair.dst / rel, data if dst_data is None else dst_data,
          mtime_ns if dst_mtime_ns is None else dst_mtime_ns)


def test_new_unchanged_and_changed_files(env):
    pair = env.pair
    write(pair.src / "new.txt", b"only in SRC", T)
    both(pair, "same.txt", b"same bytes", T)
    both(pair, "sub/resized.txt", b"longer in SRC", T, dst_data=b"short")
    both(pair, "sub/touched.txt", b"same size", T, dst_mtime_ns=T - 2 * SECOND)
    result = env.scan()
    assert result.complete
    rows = env.rows()
    assert {k: (r["kind"], r["status"]) for k, r in rows.items() if r["kind"] != "dir"} == {
        b"new.txt": ("file", "pending"), b"same.txt": ("file", "synced"),
        b"sub/resized.txt": ("file", "pending"), b"sub/touched.txt": ("file", "pending")}
    assert rows[b"sub"]["kind"] == "dir" and rows[b""]["kind"] == "dir"
    assert rows[b"new.txt"]["dst_path"] == os.fsdecode(env.dst + b"/new.txt")
    assert rows[b"new.txt"]["size"] == 11 and rows[b"new.txt"]["modified"] == T
    assert rows[b"new.txt"]["hash"] is None
    stats = result.stats
    assert (stats.src_files, stats.matched_files, stats.pending_files) == (4, 1, 3)
    assert stats.matched_bytes == len(b"same bytes")
    assert result.backlog.files == 3


@pytest.mark.parametrize("offset, window, status", [
    (400_000_000, SECOND, "synced"),       # a share that keeps whole seconds
    (-400_000_000, SECOND, "synced"),
    (400_000_000, 1, "pending"),           # ext4 keeps nanoseconds: a real change
    (SECOND, SECOND, "pending"),           # a whole granule apart
    (99, 100, "synced"),                   # SMB's 100 ns ticks
])
def test_mtimes_are_compared_at_the_destinations_granularity(env, offset, window, status):
    both(env.pair, "f", b"data", T, dst_mtime_ns=T + offset)
    env.scan(window=window)
    assert env.status("f") == status


def test_a_rescan_keeps_the_hash_of_unchanged_files_only(env):
    pair = env.pair
    both(pair, "kept.txt", b"unchanged", T)
    both(pair, "edited.txt", b"before", T)
    env.scan()
    env.mark_copied("kept.txt", "aa" * 32)
    env.mark_copied("edited.txt", "bb" * 32)
    write(pair.src / "edited.txt", b"after the copy", T + SECOND)
    env.scan()
    rows = env.rows()
    assert (rows[b"kept.txt"]["status"], rows[b"kept.txt"]["hash"],
            rows[b"kept.txt"]["hash_algo"]) == ("synced", "aa" * 32, "sha256")
    assert (rows[b"edited.txt"]["status"], rows[b"edited.txt"]["hash"],
            rows[b"edited.txt"]["hash_algo"]) == ("pending", None, None)


def test_entries_gone_from_src_lose_their_rows(env):
    write(env.pair.src / "a", b"a")
    write(env.pair.src / "b", b"b")
    env.scan()
    os.unlink(env.pair.src / "b")
    env.scan()
    assert set(env.rows()) == {b"", b"a"}


def test_symlinks_are_recorded_as_links_and_never_followed(env):
    pair = env.pair
    write(pair.src / "real" / "inside", b"x")
    os.symlink("real", pair.src / "to-dir")
    os.symlink("nowhere/ü", pair.src / "dangling")
    os.symlink("real/inside", pair.src / "same-link")
    os.symlink("real/inside", pair.dst / "same-link")
    os.symlink("elsewhere", pair.src / "retargeted")
    os.symlink("elsewhere-else", pair.dst / "retargeted")
    env.scan()
    rows = env.rows()
    assert not any(k.startswith(b"to-dir/") for k in rows)
    links = {k: (r["link_target"], r["size"], r["status"])
             for k, r in rows.items() if r["kind"] == "symlink"}
    assert links == {b"to-dir": ("real", 4, "pending"),
                     b"dangling": ("nowhere/ü", len("nowhere/ü".encode()), "pending"),
                     b"same-link": ("real/inside", 11, "synced"),
                     b"retargeted": ("elsewhere", 9, "pending")}


def test_fifos_are_counted_as_specials_and_not_recorded(env):
    pair = env.pair
    write(pair.src / "data", b"d")
    os.mkfifo(pair.src / "pipe")
    result = env.scan()
    assert result.stats.specials == 1
    assert set(env.rows()) == {b"", b"data"}
    lines = [json.loads(line) for line in pair.log.read_text().splitlines()]
    assert [(e["op"], e["status"], e["src"], e["error"]) for e in lines] == [
        ("special", "skipped", str(pair.src / "pipe"), "fifo: not copied")]


def test_a_fifo_in_dst_is_listed_as_a_special_entry(env):
    write(env.pair.src / "pipe", b"a file in SRC")
    os.mkfifo(env.pair.dst / "pipe")
    env.scan()
    assert env.status("pipe") == "pending"
    kinds = dict(env.cat._query("SELECT dst_path, kind FROM dest_files"))
    assert kinds[str(env.pair.dst / "pipe")] == "special"


def test_reserved_temporary_names_in_src_are_reported_not_copied(env):
    pair = env.pair
    write(pair.src / "sub" / TEMP, b"a user's file with our reserved name")
    write(pair.dst / "sub" / TEMP, b"must not be taken for a leftover")
    result = env.scan()
    assert result.stats.specials == 1
    assert set(env.rows()) == {b"", b"sub"}
    lines = [json.loads(line) for line in pair.log.read_text().splitlines()]
    assert [(e["op"], e["status"], e["src"]) for e in lines] == [
        ("special", "skipped", str(pair.src / "sub" / TEMP))]
    assert "reserved" in lines[0]["error"]
    # The DST entry of that name is the source's namesake, not our leftover: kept.
    assert (pair.dst / "sub" / TEMP).exists() and result.stats.stale_removed == 0


def test_a_leftover_temporary_in_dst_is_removed(env):
    write(env.pair.src / "f", b"f")
    write(env.pair.dst / TEMP, b"half a copy from a killed run")
    result = env.scan()
    assert result.stats.stale_removed == 1
    assert not (env.pair.dst / TEMP).exists()
    assert env.cat._query("SELECT count(*) FROM dest_files WHERE dst_path LIKE '%.tmp'") \
        == [(0,)]


def test_names_that_are_not_utf8_are_recorded_exactly(env):
    name = b"caf\xe9-latin1"
    write(env.src + b"/" + name, b"x", T)
    write(env.dst + b"/" + name, b"x", T)
    env.scan()
    rows = env.rows()
    assert rows[name]["src_path"] == env.src + b"/" + name        # stored as a BLOB
    assert rows[name]["status"] == "synced"


def test_a_directory_that_cannot_be_listed_is_an_error_not_an_empty_one(env):
    write(env.pair.src / "sub" / "f", b"f")
    faults.install("list@sub:EACCES")
    try:
        result = env.scan()
    finally:
        faults.install(None)
    assert result.complete and result.stats.errors == 1
    assert b"sub/f" not in env.rows()
    lines = [json.loads(line) for line in env.pair.log.read_text().splitlines()]
    assert [(e["op"], e["status"], e["src"], e["error"]) for e in lines] == [
        ("scan", "failed", str(env.pair.src / "sub"), "cannot list: Permission denied")]


def test_an_interrupted_scan_leaves_the_catalog_as_it_was(env):
    pair = env.pair
    both(pair, "kept.txt", b"unchanged", T)
    both(pair, "edited.txt", b"before", T)
    write(pair.src / "removed.txt", b"r", T)
    env.scan()
    env.mark_copied("kept.txt", "aa" * 32)
    before = env.rows()
    write(pair.src / "edited.txt", b"after the first scan", T + SECOND)
    write(pair.src / "added.txt", b"new", T)
    os.unlink(pair.src / "removed.txt")
    stop = threading.Event()
    stop.set()
    result = env.scan(stop=stop)
    assert not result.complete and result.backlog is None
    assert env.rows() == before
    # Nor can a mirror act on the partial DST listing it left behind.
    assert not env.cat.scan_complete()
