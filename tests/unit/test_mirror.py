"""Mirror mode's guards, on real trees: what is deleted, and everything that is kept."""

import os
import threading

import pytest

from fastsync.audit import AuditLog
from fastsync.catalog import Catalog, to_db
from fastsync.mirror import mirror

from ..conftest import write


@pytest.fixture
def setup(pair):
    cat = Catalog.open(str(pair.db), os.fsencode(pair.src), os.fsencode(pair.dst), "t")
    audit = AuditLog(str(pair.log))
    run = cat.start_run("scan", "sha256", "t")
    yield pair, cat, audit, run
    audit.close()
    cat.close()


def scanned(pair, cat, dst_entries, src_entries=()):
    """Record a completed scan: these DST entries, these SRC files."""
    src, dst = os.fsencode(pair.src), os.fsencode(pair.dst)
    cat.begin_scan()
    rows = [(to_db(src), to_db(dst), "dir", 0, None, 1, 1, 1, 0o755, 0, 0, None)]
    rows += [(to_db(src + b"/" + r), to_db(dst + b"/" + r), "file", 1, None, 1, 1, 1,
              0o644, 0, 0, None) for r in src_entries]
    cat.add_source(rows, 1)
    cat.add_dest([(to_db(dst), "dir", 0, 1, None)] +
                 [(to_db(dst + b"/" + r), k, 1, 1, None) for r, k in dst_entries], 1)
    cat.finish_scan(1)


def identity(pair):
    st = os.stat(pair.src)
    return st.st_dev, st.st_ino


def test_deletes_what_the_source_lacks_after_a_live_check(setup):
    pair, cat, audit, run = setup
    write(pair.src / "keep", b"k")
    write(pair.dst / "keep", b"k")
    write(pair.dst / "gone", b"g")
    write(pair.dst / "reborn", b"r")
    scanned(pair, cat, [(b"keep", "file"), (b"gone", "file"), (b"reborn", "file")], [b"keep"])
    write(pair.src / "reborn", b"appeared in SRC after the scan")
    result = mirror(cat, os.fsencode(pair.src), os.fsencode(pair.dst), identity(pair),
                    threading.Event(), audit, run)
    assert (result.deleted, result.kept, result.failed) == (1, 1, 0)
    assert not (pair.dst / "gone").exists()
    assert (pair.dst / "reborn").exists() and (pair.dst / "keep").exists()
    assert cat.run_counts(run)["files_deleted"] == 1


def test_refuses_when_src_is_not_the_same_directory(setup, tmp_path):
    pair, cat, audit, run = setup
    write(pair.src / "keep", b"k")
    write(pair.dst / "extra", b"e")
    scanned(pair, cat, [(b"extra", "file")], [b"keep"])
    other = os.stat(tmp_path)
    result = mirror(cat, os.fsencode(pair.src), os.fsencode(pair.dst),
                    (other.st_dev, other.st_ino), threading.Event(), audit, run)
    assert result.deleted == 0 and "no longer the directory" in result.refused
    assert (pair.dst / "extra").exists()


def test_refuses_when_src_is_empty(setup):
    """An unmounted share is an empty directory: everything would look deleted."""
    pair, cat, audit, run = setup
    write(pair.dst / "precious", b"p")
    scanned(pair, cat, [(b"precious", "file")])
    result = mirror(cat, os.fsencode(pair.src), os.fsencode(pair.dst), identity(pair),
                    threading.Event(), audit, run)
    assert result.deleted == 0 and "SRC is empty" in result.refused
    assert (pair.dst / "precious").exists()


def test_keeps_non_empty_directories_and_entries_that_changed_kind(setup):
    pair, cat, audit, run = setup
    write(pair.src / "keep", b"k")
    write(pair.dst / "dir" / "new-since-scan", b"n")
    write(pair.dst / "was-file" / "now-a-dir", b"x")
    scanned(pair, cat, [(b"dir", "dir"), (b"was-file", "file")], [b"keep"])
    result = mirror(cat, os.fsencode(pair.src), os.fsencode(pair.dst), identity(pair),
                    threading.Event(), audit, run)
    assert (result.deleted, result.kept) == (0, 2)
    assert (pair.dst / "dir" / "new-since-scan").exists()
    assert (pair.dst / "was-file" / "now-a-dir").exists()


def test_a_source_parent_that_became_a_file_means_absent(setup):
    pair, cat, audit, run = setup
    write(pair.src / "sub", b"a file where DST has a directory")
    write(pair.dst / "sub" / "x", b"x")
    scanned(pair, cat, [(b"sub/x", "file")], [b"sub"])
    result = mirror(cat, os.fsencode(pair.src), os.fsencode(pair.dst), identity(pair),
                    threading.Event(), audit, run)
    assert result.deleted == 1 and not (pair.dst / "sub" / "x").exists()


def test_stop_request_ends_mirroring(setup):
    pair, cat, audit, run = setup
    write(pair.src / "keep", b"k")
    for i in range(5):
        write(pair.dst / f"extra{i}", b"e")
    scanned(pair, cat, [(b"extra%d" % i, "file") for i in range(5)], [b"keep"])
    stop = threading.Event()
    stop.set()
    result = mirror(cat, os.fsencode(pair.src), os.fsencode(pair.dst), identity(pair), stop,
                    audit, run)
    assert result.deleted == 0 and len(list(pair.dst.iterdir())) == 5
