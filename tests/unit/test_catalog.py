"""The catalog on real SQLite files: schema, ownership, path round trips, scan merges."""

import fcntl
import os
import sqlite3

import pytest

from fastsync.catalog import (APPLICATION_ID, Catalog, Outcome, from_db, to_db)
from fastsync.errors import CatalogError, CatalogLocked, FatalError

SRC, DST = b"/data/src", b"/data/dst"
SPEC_COLUMNS = {"src_path", "dst_path", "created", "changed", "modified", "permissions",
                "hash", "size", "status"}


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "c.db")


@pytest.fixture
def cat(db):
    c = Catalog.open(db, SRC, DST, "test")
    yield c
    c.close()


def src_row(rel: bytes, size=10, mtime=1000, kind="file", target=None):
    return (to_db(SRC + rel), to_db(DST + rel), kind, size, None, mtime, mtime, mtime,
            0o644, 0, 0, None if target is None else to_db(target), 0)


def dst_row(rel: bytes, size=10, mtime=1000, kind="file", target=None):
    return (to_db(DST + rel), kind, size, mtime, None if target is None else to_db(target))


def scan(cat, src_rows, dst_rows, window=1):
    cat.begin_scan()
    matched = [0, 0]
    for rows, add in ((dst_rows, cat.add_dest), (src_rows, cat.add_source)):
        if rows:
            n, b = add(rows, window)
            matched[0] += n
            matched[1] += b
    return cat.finish_scan(window), matched


def status(cat, rel):
    return cat._query("SELECT status, hash FROM files WHERE src_path = ?",
                      (to_db(SRC + rel),))[0]


@pytest.mark.parametrize("path", [b"/plain/ascii", "/ünïcode/名前".encode(),
                                  b"/bad/\xff\xfe", b"/nl/a\nb", b"/surrogate/\xed\xa0\x80"])
def test_paths_round_trip_exactly(path):
    value = to_db(path)
    assert from_db(value) == path
    assert isinstance(value, str) == (path.isascii() or path.startswith("/ü".encode()))


def test_schema_has_the_spec_columns_and_marks_the_file_as_ours(cat, db):
    conn = sqlite3.connect(db)
    cols = {r[1] for r in conn.execute("PRAGMA table_info(files)")}
    assert SPEC_COLUMNS <= cols
    assert {"kind", "hash_algo", "attempts", "last_error", "accessed"} <= cols
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert dict(conn.execute("SELECT key, value FROM meta"))["src"] == "/data/src"
    conn.close()


def test_a_catalog_refuses_another_pair(cat, db):
    cat.close()
    with pytest.raises(CatalogError, match="belongs to SRC='/data/src' DST='/data/dst'"):
        Catalog.open(db, SRC, b"/elsewhere", "test")
    Catalog.open(db, SRC, DST, "test").close()


def test_a_non_utf8_pair_is_recorded_and_recognised(db):
    Catalog.open(db, b"/s\xff", b"/d\xfe", "test").close()
    Catalog.open(db, b"/s\xff", b"/d\xfe", "test").close()
    with pytest.raises(CatalogError):
        Catalog.open(db, b"/s\xfe", b"/d\xfe", "test")


def test_refuses_a_file_that_is_not_sqlite(db):
    with open(db, "wb") as f:
        f.write(b"this is a text file, not a database\n" * 10)
    with pytest.raises(CatalogError, match="not an SQLite file"):
        Catalog.open(db, SRC, DST, "test")


def test_refuses_a_corrupt_catalog(cat, db):
    cat.close()
    with open(db, "r+b") as f:          # keep the header, wreck the schema page
        f.seek(100)
        f.write(os.urandom(3000))
    with pytest.raises(CatalogError):
        Catalog.open(db, SRC, DST, "test")


def sql(db, statement):
    conn = sqlite3.connect(db)
    conn.execute(statement)
    conn.commit()
    conn.close()


def test_refuses_someone_elses_sqlite_database(db):
    sql(db, "CREATE TABLE photos (id INTEGER)")
    with pytest.raises(CatalogError, match="not a fastsync catalog"):
        Catalog.open(db, SRC, DST, "test")


def test_refuses_a_newer_schema(cat, db):
    cat.close()
    sql(db, "PRAGMA user_version = 99")
    with pytest.raises(CatalogError, match="schema v99"):
        Catalog.open(db, SRC, DST, "test")


def test_one_process_at_a_time(cat, db):
    with pytest.raises(CatalogLocked, match=f"pid {os.getpid()}"):
        Catalog.open(db, SRC, DST, "test")


def test_lock_is_released_on_close(cat, db):
    cat.close()
    fd = os.open(db + ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)      # would raise if still held
    os.close(fd)


def test_scan_marks_what_the_destination_lacks_as_pending(cat):
    backlog, matched = scan(cat, [src_row(b"/same"), src_row(b"/new", size=5),
                                  src_row(b"/older", mtime=2000), src_row(b"/shorter", size=3)],
                            [dst_row(b"/same"), dst_row(b"/older"), dst_row(b"/shorter")])
    assert matched == [1, 10]
    assert (backlog.files, backlog.bytes) == (3, 5 + 10 + 3)
    assert status(cat, b"/same")[0] == "synced"
    assert [status(cat, r)[0] for r in (b"/new", b"/older", b"/shorter")] == ["pending"] * 3


def test_pairs_are_counted_once_whichever_side_arrives_first(cat):
    cat.begin_scan()
    a = cat.add_source([src_row(b"/a")], 1)
    b = cat.add_dest([dst_row(b"/a"), dst_row(b"/b")], 1)
    c = cat.add_source([src_row(b"/b")], 1)
    assert (a[0], b[0], c[0]) == (0, 1, 1)


def test_mtimes_compare_at_the_destination_granularity(cat):
    backlog, _ = scan(cat, [src_row(b"/f", mtime=1_000_000_123)],
                      [dst_row(b"/f", mtime=1_000_000_100)], window=100)
    assert backlog.files == 0
    backlog, _ = scan(cat, [src_row(b"/f", mtime=1_000_000_123)],
                      [dst_row(b"/f", mtime=1_000_000_100)], window=1)
    assert backlog.files == 1


def test_symlinks_match_by_target_and_dirs_by_mtime(cat):
    backlog, _ = scan(cat, [src_row(b"/l", 3, 5, "symlink", b"a/b"),
                            src_row(b"/m", 3, 5, "symlink", b"a/c"),
                            src_row(b"/d", 0, 7, "dir"), src_row(b"/e", 0, 7, "dir")],
                      [dst_row(b"/l", 3, 9, "symlink", b"a/b"), dst_row(b"/m", 3, 5, "symlink", b"a/b"),
                       dst_row(b"/d", 0, 7, "dir"), dst_row(b"/e", 0, 8, "dir")])
    assert (backlog.files, backlog.dirs) == (1, 1)
    assert status(cat, b"/l")[0] == "synced" and status(cat, b"/m")[0] == "pending"


def record_copy(cat, rel, hash_="aa", size=10, mtime=1000):
    run = cat.start_run("scan", "sha256", "test")
    st = (0o100644, size, mtime, mtime, mtime, None, 0, 0, 1, 1)
    cat.record(run, [Outcome(to_db(SRC + rel), True, size=size, hash=hash_, stat=st)], "sha256")
    return run


def test_rescan_keeps_the_hash_of_unchanged_files_only(cat):
    scan(cat, [src_row(b"/keep"), src_row(b"/change")], [])
    record_copy(cat, b"/keep", "11")
    record_copy(cat, b"/change", "22")
    backlog, _ = scan(cat, [src_row(b"/keep"), src_row(b"/change", mtime=5000)],
                      [dst_row(b"/keep"), dst_row(b"/change")])
    assert status(cat, b"/keep") == ("synced", "11")
    assert status(cat, b"/change") == ("pending", None)
    assert backlog.files == 1


def test_a_destination_changed_behind_our_back_is_pending_but_keeps_the_hash(cat):
    scan(cat, [src_row(b"/f")], [])
    record_copy(cat, b"/f", "33")
    scan(cat, [src_row(b"/f")], [dst_row(b"/f", mtime=999)])
    assert status(cat, b"/f") == ("pending", "33")


def test_rows_of_vanished_sources_are_dropped(cat):
    scan(cat, [src_row(b"/a"), src_row(b"/b")], [])
    backlog, _ = scan(cat, [src_row(b"/a")], [])
    assert backlog.files == 1
    assert cat._query("SELECT count(*) FROM files")[0][0] == 1


def test_an_interrupted_scan_changes_nothing(cat):
    scan(cat, [src_row(b"/a")], [dst_row(b"/a")])
    cat.begin_scan()
    cat.add_source([src_row(b"/a", size=99), src_row(b"/b")], 1)
    # no finish_scan: the run was interrupted
    assert cat.backlog().files == 0
    assert status(cat, b"/a")[0] == "synced"


def test_backlog_iterates_in_path_order_across_text_and_blob_paths(cat):
    rels = [b"/b", b"/a", b"/\xff", b"/c/d", b"/\xfe"]
    scan(cat, [src_row(r) for r in rels], [])
    got = [p.src for p in cat.iter_backlog(page=2)]
    assert got == [SRC + r for r in (b"/a", b"/b", b"/c/d", b"/\xfe", b"/\xff")]


def test_backlog_skips_rows_that_become_synced_while_iterating(cat):
    scan(cat, [src_row(b"/%d" % i) for i in range(10)], [])
    seen = []
    for entry in cat.iter_backlog(page=3):
        seen.append(entry.src)
        if entry.src == SRC + b"/1":
            record_copy(cat, b"/5")
    assert SRC + b"/5" not in seen and len(seen) == 9


def test_failures_count_attempts_and_keep_the_row_pending(cat):
    scan(cat, [src_row(b"/f")], [])
    run = cat.start_run("scan", "sha256", "test")
    for _ in range(2):
        cat.record(run, [Outcome(to_db(SRC + b"/f"), False, error="EACCES: denied")], "sha256")
    row = cat._query("SELECT status, attempts, last_error FROM files")[0]
    assert row == ("pending", 2, "EACCES: denied")
    assert cat.backlog().fresh == 0
    assert cat.run_counts(run)["files_failed"] == 2


def test_copies_mark_parent_directories_pending(cat):
    scan(cat, [src_row(b"", 0, 5, "dir"), src_row(b"/f")], [dst_row(b"", 0, 5, "dir")])
    assert status(cat, b"")[0] == "synced"
    run = cat.start_run("scan", "sha256", "test")
    st = (0o100644, 10, 1, 1, 1, None, 0, 0, 1, 1)
    cat.record(run, [Outcome(to_db(SRC + b"/f"), True, 10, "ab", st)], "sha256", [DST])
    assert status(cat, b"")[0] == "pending"
    assert [d[1] for d in cat.pending_dirs()] == [DST]


def test_extras_are_destination_entries_without_a_source_row(cat):
    scan(cat, [src_row(b"", 0, 5, "dir"), src_row(b"/keep")],
         [dst_row(b"", 0, 5, "dir"), dst_row(b"/keep"), dst_row(b"/x", 0, 1, "dir"),
          dst_row(b"/x/junk")])
    assert list(cat.iter_extras()) == [(DST + b"/x/junk", "file"), (DST + b"/x", "dir")]


def test_a_failed_commit_is_rolled_back_and_later_transactions_work(cat, db):
    """A COMMIT can fail (here a deferred foreign key, checked only at COMMIT): the
    transaction must be rolled back, or every later BEGIN fails with "cannot start a
    transaction within a transaction" and the run cannot even record how it ended."""
    sql(db, "CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    sql(db, "CREATE TABLE child (parent INTEGER REFERENCES parent (id)"
            " DEFERRABLE INITIALLY DEFERRED)")
    cat._conn.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(FatalError, match="FOREIGN KEY constraint failed"):
        with cat._tx() as c:
            c.execute("INSERT INTO child VALUES (42)")      # fine until COMMIT
    assert cat._query("SELECT count(*) FROM child") == [(0,)]
    run = cat.start_run("scan", "sha256", "test")               # a later transaction
    cat.finish_run(run, "failed")
    assert cat._query("SELECT status FROM runs WHERE id = ?", (run,)) == [("failed",)]
