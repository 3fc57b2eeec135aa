"""`fastsync verify` on real trees after real syncs: files read back at DST and hashed
again, corruption and losses sent back to pending and copied again by the next run,
unreadable files reported but left alone, the catalog lock, interruption and resumption,
--again, --sample, --bwlimit, and the migration of v1 and v2 catalogs (to v3)."""

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

from fastsync.catalog import FOUND_DAMAGED, SCHEMA_VERSION, Catalog, from_db, to_db
from fastsync.errors import CatalogError

from ..conftest import command, make_tree, temporaries, wait_for, write

KiB = 1024
MTIME = 1_600_000_000_123_456_789


def verify(fastsync, pair, *extra, check=0, env=None):
    return fastsync("verify", "--db", str(pair.db), "--log", str(pair.log), *extra,
                    check=check, env=env)


def lines(pair, op="verify", status=None) -> list[dict]:
    return [r for r in pair.audit() if r["op"] == op
            and (status is None or r["status"] == status)]


def checked(records) -> list[bytes]:
    return [os.fsencode(r["dst"]) for r in records]


def row(pair, dst: bytes):
    rows = pair.rows("SELECT * FROM files WHERE dst_path = ?", (to_db(dst),))
    assert len(rows) == 1, dst
    return rows[0]


def checkable(pair) -> set[bytes]:
    """DST paths of the rows verify checks: files with a hash, and symlinks."""
    return {from_db(r["dst_path"]) for r in pair.rows(
        "SELECT dst_path FROM files WHERE status = 'synced' AND"
        " ((kind = 'file' AND hash IS NOT NULL) OR kind = 'symlink')")}


def corrupt(path, offset: int = 0) -> None:
    """Flip one byte in place, keeping size and mtime: what a size+mtime scan misses."""
    st = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def synced_tree(fastsync, pair, files=12):
    made = make_tree(pair.src, seed=3, files=files, max_size=200_000)
    os.symlink("f000.bin", pair.src / "link")
    fastsync(*pair.args())
    return made


def test_an_intact_copy_verifies_and_each_row_records_when(fastsync, pair):
    synced_tree(fastsync, pair)
    proc = verify(fastsync, pair)
    assert b"files intact" in proc.stderr
    ok = lines(pair, status="ok")
    assert sorted(checked(ok)) == sorted(checkable(pair))
    assert len(ok) == 13 and lines(pair, status="failed") == []
    by_dst = {os.fsencode(r["dst"]): r for r in ok}
    for r in pair.rows("SELECT * FROM files WHERE kind = 'file'"):
        assert r["verified_at"] >= r["synced_at"]
        assert by_dst[from_db(r["dst_path"])]["hash"] == f"sha256:{r['hash']}"
    assert row(pair, os.fsencode(pair.dst / "link"))["verified_at"] is not None
    # directories are not checked; the pass is bracketed by run lines without a run id
    assert all(r["verified_at"] is None for r in pair.rows(
        "SELECT * FROM files WHERE kind = 'dir'"))
    runs = [r for r in lines(pair, op="run") if r.get("mode") == "verify"]
    assert [r["status"] for r in runs] == ["started", "ok"]
    assert runs[1]["verified"] == 13 and runs[1]["run"] is None
    # a second verify has nothing left to check
    verify(fastsync, pair)
    assert len(lines(pair, status="ok")) == 13


def test_a_corrupted_file_goes_back_to_pending_and_the_next_run_copies_it(fastsync, pair):
    made = synced_tree(fastsync, pair)
    name = next(rel for rel, data in sorted(made.items()) if len(data) > 1000)
    victim, source = pair.dst / name, pair.src / name
    before = row(pair, os.fsencode(victim))
    corrupt(victim, offset=len(made[name]) // 2)
    # a run compares size and mtime only: it cannot see this
    fastsync(*pair.args())
    assert victim.read_bytes() != source.read_bytes()

    proc = verify(fastsync, pair, check=1)
    err = proc.stderr.decode()
    assert f"verify: hash mismatch at DST: {str(victim)!r} (pending again" in err
    after = row(pair, os.fsencode(victim))
    assert after["status"] == "pending"
    assert after["last_error"] == "verify: hash mismatch at DST"
    assert after["hash"] == before["hash"] and after["attempts"] == before["attempts"]
    assert after["verified_at"] == FOUND_DAMAGED     # the mark a rescan respects
    failed = lines(pair, status="failed")
    assert checked(failed) == [os.fsencode(victim)]
    assert failed[0]["error"] == "verify: hash mismatch at DST"
    assert failed[0]["found"] == "sha256:" + hashlib.sha256(victim.read_bytes()).hexdigest()
    assert len(lines(pair, status="ok")) == 12          # the others were read and intact

    resumed = fastsync(*pair.args())
    assert b"resuming the backlog" in resumed.stderr
    assert victim.read_bytes() == source.read_bytes()
    assert row(pair, os.fsencode(victim))["status"] == "synced"
    verify(fastsync, pair)
    assert checked(lines(pair, status="ok"))[12:] == [os.fsencode(victim)]


def test_missing_replaced_and_retargeted_entries_go_back_to_pending(fastsync, pair):
    write(pair.src / "gone", b"a" * 5000)
    write(pair.src / "fifo", b"b" * 10)
    write(pair.src / "dir-now", b"c" * 10)
    write(pair.src / "keep", b"d" * 10)
    os.symlink("keep", pair.src / "link")
    fastsync(*pair.args())
    os.unlink(pair.dst / "gone")
    os.unlink(pair.dst / "fifo")
    os.mkfifo(pair.dst / "fifo")            # opened without blocking, found not a file
    os.unlink(pair.dst / "dir-now")
    os.mkdir(pair.dst / "dir-now")
    os.unlink(pair.dst / "link")
    os.symlink("elsewhere", pair.dst / "link")
    proc = verify(fastsync, pair, check=1)
    errors = {os.path.basename(os.fsencode(r["dst"])): r["error"]
              for r in lines(pair, status="failed")}
    assert errors == {b"gone": "verify: missing at DST",
                      b"fifo": "verify: not a regular file at DST",
                      b"dir-now": "verify: not a regular file at DST",
                      b"link": "verify: link target differs at DST"}
    assert [r for r in lines(pair, status="failed") if r["dst"].endswith("link")][0][
        "found"] == "elsewhere"
    for name in (b"gone", b"fifo", b"dir-now", b"link"):
        assert row(pair, os.path.join(os.fsencode(pair.dst), name))["status"] == "pending"
    assert row(pair, os.fsencode(pair.dst / "keep"))["status"] == "synced"
    assert proc.stderr.decode().count("(pending again: the next run copies it)") == 4
    os.unlink(pair.dst / "fifo")
    os.rmdir(pair.dst / "dir-now")
    fastsync(*pair.args())
    assert (pair.dst / "gone").read_bytes() == b"a" * 5000
    assert os.readlink(pair.dst / "link") == "keep"
    verify(fastsync, pair)


def test_an_unreadable_file_is_reported_and_left_as_it_is(fastsync, pair):
    synced_tree(fastsync, pair)
    victim = sorted(from_db(r["dst_path"]) for r in pair.rows(
        "SELECT dst_path FROM files WHERE kind = 'file' AND size > 0"))[3]
    plan = {"FASTSYNC_TESTONLY_FAULTS": f"read@{os.fsdecode(victim)}:EIO*"}
    proc = verify(fastsync, pair, check=1, env=plan)
    assert f"cannot read {os.fsdecode(victim)!r} at DST: EIO" in proc.stderr.decode()
    assert "left as it is" in proc.stderr.decode()
    r = row(pair, victim)
    assert (r["status"], r["last_error"], r["verified_at"]) == ("synced", None, None)
    failed = lines(pair, status="failed")
    assert checked(failed) == [victim] and failed[0]["error"].startswith("EIO")
    # the next verify tries that file again, and only it
    verify(fastsync, pair)
    assert checked(lines(pair, status="ok"))[12:] == [victim]


def _slow_sync(pair):
    """A run that takes seconds (4 MiB at 1 MiB/s), returned once it holds its locks."""
    for i in range(4):
        write(pair.src / f"big{i}", os.urandom(1 << 20))
    slow = ("--bwlimit", "1M", "--block-size", "256K")
    proc = subprocess.Popen([*command(), *pair.args(*slow)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: temporaries(pair.dst) or proc.poll() is not None)
    assert proc.poll() is None, proc.stderr.read().decode()
    return proc


def test_verify_is_refused_while_a_run_holds_the_catalog(fastsync, pair):
    synced_tree(fastsync, pair)
    run = _slow_sync(pair)
    try:
        proc = verify(fastsync, pair, check=4)
        assert b"is in use by another fastsync" in proc.stderr
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(60) == 143
    assert lines(pair) == []
    assert all(r["verified_at"] is None for r in pair.rows())


def test_a_run_is_refused_while_verify_holds_the_catalog(fastsync, pair):
    for i in range(4):
        write(pair.src / f"big{i}", os.urandom(256 * KiB))
    fastsync(*pair.args())
    slow = fastsync.start("verify", "--db", str(pair.db), "--log", str(pair.log),
                          "--bwlimit", "256K")
    try:
        wait_for(lambda: any(r.get("mode") == "verify" for r in lines(pair, op="run"))
                 or slow.poll() is not None)
        proc = fastsync(*pair.args(), check=4)
        assert b"is in use by another fastsync" in proc.stderr
    finally:
        slow.send_signal(signal.SIGINT)
        assert slow.wait(60) == 130


@pytest.mark.parametrize("signum, code, again", [(signal.SIGTERM, 143, False),
                                                 (signal.SIGINT, 130, True)])
def test_an_interrupted_verify_resumes_where_it_stopped(fastsync, pair, signum, code, again):
    for i in range(12):
        write(pair.src / f"f{i:02d}", os.urandom(128 * KiB), mtime_ns=MTIME)
    fastsync(*pair.args())
    everything = checkable(pair)
    if again:           # a full pass done; --again starts another, which is interrupted
        verify(fastsync, pair)
    done_before = len(lines(pair, status="ok"))
    extra = ("--again",) if again else ()
    slow = fastsync.start("verify", "--db", str(pair.db), "--log", str(pair.log),
                          "--bwlimit", "512K", *extra)     # 4 files a second
    wait_for(lambda: len(lines(pair, status="ok")) >= done_before + 2)
    slow.send_signal(signum)
    assert slow.wait(30) == code
    assert b"interrupted; what was checked is recorded" in slow.stderr.read()
    first = checked(lines(pair, status="ok")[done_before:])
    assert 2 <= len(first) < 12
    recorded = {from_db(r["dst_path"]) for r in pair.rows(
        "SELECT dst_path FROM files WHERE verified_at IS NOT NULL")}
    assert set(first) <= recorded
    assert lines(pair, op="run")[-1]["status"] == "interrupted"

    proc = verify(fastsync, pair)
    second = checked(lines(pair, status="ok")[done_before + len(first):])
    assert set(first).isdisjoint(second)
    assert set(first) | set(second) == everything
    assert f"{len(second)} files (" in proc.stderr.decode()
    verify(fastsync, pair)                  # the pass is complete: nothing to check
    assert len(lines(pair, status="ok")) == done_before + 12


def test_later_verifies_check_only_what_was_synced_since(fastsync, pair):
    made = synced_tree(fastsync, pair)
    verify(fastsync, pair)
    changed = sorted(made)[0]
    write(pair.src / changed, b"new content")
    write(pair.src / "added", b"added")
    fastsync(*pair.args())
    verify(fastsync, pair)
    assert sorted(checked(lines(pair, status="ok"))[13:]) == sorted(
        [os.fsencode(pair.dst / changed), os.fsencode(pair.dst / "added")])
    verify(fastsync, pair, "--again")
    assert len(lines(pair, status="ok")) == 13 + 2 + 14


def test_a_sample_checks_exactly_that_many_random_files(fastsync, pair):
    for i in range(20):
        write(pair.src / f"f{i:02d}", os.urandom(3000), mtime_ns=MTIME)
    fastsync(*pair.args())
    verify(fastsync, pair, "--sample", "5")
    assert len(lines(pair, status="ok")) == 5
    assert len(pair.rows("SELECT * FROM files WHERE verified_at IS NOT NULL")) == 5
    verify(fastsync, pair, "--sample", "25%")        # of all 20, verified before or not
    assert len(lines(pair, status="ok")) == 10
    verify(fastsync, pair, "--sample", "0.1%")       # rounded up: never nothing
    assert len(lines(pair, status="ok")) == 11
    picks = set()
    for _ in range(4):
        verify(fastsync, pair, "--sample", "1")
        picks.add(checked(lines(pair, status="ok"))[-1])
    assert len(picks) > 1                             # (all alike: 1 in 8000)
    corrupt(pair.dst / "f07")
    verify(fastsync, pair, "--sample", "100%", check=1)
    assert checked(lines(pair, status="failed")) == [os.fsencode(pair.dst / "f07")]


def test_bwlimit_caps_the_reads(fastsync, pair):
    write(pair.src / "big", os.urandom(1536 * KiB))
    fastsync(*pair.args())
    started = time.monotonic()
    verify(fastsync, pair, "--bwlimit", "1M")
    took = time.monotonic() - started
    assert took >= 1.4                 # 1.5 MiB at 1 MiB/s (the bucket starts empty)
    assert lines(pair, status="ok")[0]["size"] == 1536 * KiB


def test_the_page_cache_is_bypassed(fastsync, pair):
    """On a local disk the file is read with O_DIRECT (elsewhere, buffered with
    DONTNEED before and after): either way none of it is left in the page cache, where
    a buffered read would leave it all."""
    if shutil.which("fincore") is None:
        pytest.skip("fincore (util-linux) is not installed")
    write(pair.src / "big", os.urandom(8 << 20))
    fastsync(*pair.args())
    path = pair.dst / "big"
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)     # clean after the sync
    os.close(fd)
    cached = lambda: int(subprocess.run(           # noqa: E731
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True, check=True).stdout)
    if cached() != 0:
        pytest.skip("this filesystem keeps its pages cached (tmpfs?)")
    verify(fastsync, pair)
    assert lines(pair, status="ok")[0]["size"] == 8 << 20
    assert cached() == 0
    path.read_bytes()                              # what a buffered read leaves
    assert cached() == 8 << 20


def test_an_empty_dst_is_refused_as_an_unmounted_share(fastsync, pair):
    synced_tree(fastsync, pair)
    os.rename(pair.dst, pair.root / "real")
    os.mkdir(pair.dst)
    proc = verify(fastsync, pair, check=2)
    assert b"is empty, but the catalog records 13 files there: is the share mounted?" \
        in proc.stderr
    assert pair.rows("SELECT * FROM files WHERE status = 'pending'") == []
    assert lines(pair) == []


@pytest.mark.parametrize("args, message", [
    (("--sample", "0"), "--sample '0' is not a number of files"),
    (("--sample", "150%"), "--sample '150%' is not a number of files"),
    (("--sample", "5", "--again"), "--sample draws from every synced file"),
    (("--bwlimit", "10"), "--bwlimit '10' has no unit"),
    (("--db", "missing.db"), "catalog 'missing.db' does not exist"),
])
def test_bad_usage_exits_2_and_changes_nothing(fastsync, pair, args, message):
    write(pair.src / "f", b"x")
    fastsync(*pair.args())
    db = () if "--db" in args else ("--db", str(pair.db))
    proc = fastsync("verify", *db, "--log", str(pair.log), *args, check=2)
    assert proc.stderr.decode().startswith("fastsync: error: ")
    assert message in proc.stderr.decode()
    assert lines(pair) == [] and not os.path.exists("missing.db")


def test_help(fastsync):
    out = fastsync("verify", "--help").stdout.decode()
    assert out.startswith("fastsync verify:") and "--again" in out and "--sample N" in out


# ------------------------------------------------------------------ migration --

def _make_old(db, version: int) -> None:
    """Turn a catalog into what fastsync with schema v1 (no verified_at) or v2 (no
    priority, order_key and their index) wrote."""
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX files_order")
    for table, column in (("files", "order_key"), ("files", "priority"),
                          ("scan_src", "priority")):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    if version == 1:
        conn.execute("ALTER TABLE files DROP COLUMN verified_at")
    conn.execute(f"UPDATE meta SET value = {version} WHERE key = 'schema_version'")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()


def _schema(db) -> tuple:
    """(user_version, meta schema_version, the columns v2 and v3 added, in order)."""
    conn = sqlite3.connect(db)
    try:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(files)")]
        return (conn.execute("PRAGMA user_version").fetchone()[0],
                dict(conn.execute("SELECT key, value FROM meta"))["schema_version"],
                [c for c in cols if c in ("verified_at", "priority", "order_key")])
    finally:
        conn.close()


CURRENT = (3, 3, ["verified_at", "priority", "order_key"])
OLD = {1: (1, 1, []), 2: (2, 2, ["verified_at"])}


def test_a_new_catalog_is_v3(fastsync, pair):
    write(pair.src / "f", b"x")
    fastsync(*pair.args())
    assert SCHEMA_VERSION == 3 and _schema(pair.db) == CURRENT


@pytest.mark.parametrize("old", [1, 2])
@pytest.mark.parametrize("first", ["verify", "run"])
def test_an_older_catalog_is_migrated_by_verify_or_a_run(fastsync, pair, first, old):
    synced_tree(fastsync, pair)
    _make_old(pair.db, old)
    assert _schema(pair.db) == OLD[old]
    if first == "verify":
        verify(fastsync, pair)
        assert len(lines(pair, status="ok")) == 13
    else:
        fastsync(*pair.args())
    assert _schema(pair.db) == CURRENT
    verify(fastsync, pair)
    assert len(lines(pair, status="ok")) == 13
    # the migrated backlog index serves a run with priorities
    write(pair.src / "late", b"late")
    fastsync(*pair.args("--priority", "late"))
    assert (pair.dst / "late").read_bytes() == b"late"


def test_a_catalog_refused_for_another_pair_is_not_migrated(pair):
    write(pair.src / "f", b"x")
    Catalog.open(str(pair.db), os.fsencode(pair.src), os.fsencode(pair.dst), "t").close()
    _make_old(pair.db, 1)
    with pytest.raises(CatalogError, match="belongs to"):
        Catalog.open(str(pair.db), os.fsencode(pair.src), b"/elsewhere", "t")
    assert _schema(pair.db) == OLD[1]
    Catalog.open(str(pair.db), os.fsencode(pair.src), os.fsencode(pair.dst), "t").close()
    assert _schema(pair.db) == CURRENT


def test_a_rescan_keeps_a_file_verify_found_corrupted_pending(fastsync, pair):
    write(pair.src / "a", os.urandom(50_000), mtime_ns=MTIME)
    fastsync(*pair.args())
    corrupt(pair.dst / "a", offset=100)
    verify(fastsync, pair, check=1)
    fastsync(*pair.args("--rescan"))
    assert (pair.dst / "a").read_bytes() == (pair.src / "a").read_bytes()


def test_a_failed_copy_attempt_does_not_lift_verifys_mark(fastsync, pair):
    """verify sends a damaged file back to pending; a run then fails to copy it
    (EACCES on the source, injected); the next run rescans: the damaged DST copy must
    still not count as in sync."""
    write(pair.src / "x", os.urandom(50_000), mtime_ns=MTIME)
    fastsync(*pair.args())
    corrupt(pair.dst / "x", offset=100)
    verify(fastsync, pair, check=1)
    fastsync(*pair.args(), check=1, env={"FASTSYNC_TESTONLY_FAULTS": "open@x:EACCES"})
    assert row(pair, os.fsencode(pair.dst / "x"))["last_error"].startswith("EACCES")
    fastsync(*pair.args())                # rescans (only failed files pending), copies
    assert (pair.dst / "x").read_bytes() == (pair.src / "x").read_bytes()
    after = row(pair, os.fsencode(pair.dst / "x"))
    assert (after["status"], after["verified_at"]) == ("synced", None)
