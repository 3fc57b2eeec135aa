"""Mirror mode's guards, on real trees: what is deleted, and everything that is kept."""

import errno
import json
import os
import subprocess
import threading

import pytest

from fastsync.audit import AuditLog
from fastsync.catalog import Catalog, to_db
from fastsync.errors import FatalError
from fastsync.mirror import mirror

from ..conftest import write


def mirror_all(*args, **kwargs):
    """mirror() allowed past the guard (test_mirror_limits.py): these trees are mostly
    extras on purpose."""
    return mirror(*args, max_delete=10**9, **kwargs)


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
    rows = [(to_db(src), to_db(dst), "dir", 0, None, 1, 1, 1, 0o755, 0, 0, None, 0)]
    rows += [(to_db(src + b"/" + r), to_db(dst + b"/" + r), "file", 1, None, 1, 1, 1,
              0o644, 0, 0, None, 0) for r in src_entries]
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
    result = mirror_all(cat, os.fsencode(pair.src), os.fsencode(pair.dst), identity(pair),
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
    result = mirror_all(cat, os.fsencode(pair.src), os.fsencode(pair.dst),
                    (other.st_dev, other.st_ino), threading.Event(), audit, run)
    assert result.deleted == 0 and "no longer the directory" in result.refused
    assert (pair.dst / "extra").exists()


def test_refuses_when_src_is_empty(setup):
    """An unmounted share is an empty directory: everything would look deleted."""
    pair, cat, audit, run = setup
    write(pair.dst / "precious", b"p")
    scanned(pair, cat, [(b"precious", "file")])
    result = mirror_all(cat, os.fsencode(pair.src), os.fsencode(pair.dst), identity(pair),
                    threading.Event(), audit, run)
    assert result.deleted == 0 and "SRC is empty" in result.refused
    assert (pair.dst / "precious").exists()


def test_keeps_non_empty_directories_and_entries_that_changed_kind(setup):
    pair, cat, audit, run = setup
    write(pair.src / "keep", b"k")
    write(pair.dst / "dir" / "new-since-scan", b"n")
    write(pair.dst / "was-file" / "now-a-dir", b"x")
    scanned(pair, cat, [(b"dir", "dir"), (b"was-file", "file")], [b"keep"])
    result = mirror_all(cat, os.fsencode(pair.src), os.fsencode(pair.dst), identity(pair),
                    threading.Event(), audit, run)
    assert (result.deleted, result.kept) == (0, 2)
    assert (pair.dst / "dir" / "new-since-scan").exists()
    assert (pair.dst / "was-file" / "now-a-dir").exists()


def test_a_source_parent_that_became_a_file_means_absent(setup):
    pair, cat, audit, run = setup
    write(pair.src / "sub", b"a file where DST has a directory")
    write(pair.dst / "sub" / "x", b"x")
    scanned(pair, cat, [(b"sub/x", "file")], [b"sub"])
    result = mirror_all(cat, os.fsencode(pair.src), os.fsencode(pair.dst), identity(pair),
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
    result = mirror_all(cat, os.fsencode(pair.src), os.fsencode(pair.dst), identity(pair), stop,
                    audit, run)
    assert result.deleted == 0 and len(list(pair.dst.iterdir())) == 5


# ------------------------------------------ errors that stop the run (exit status 3) --

def dest_rows(cat) -> set[str]:
    return {r[0] for r in cat._query("SELECT dst_path FROM dest_files")}


def audit_lines(pair) -> list[tuple]:
    """(op, status, DST path relative to DST, error) of the lines on disk now."""
    lines = [json.loads(line) for line in pair.log.read_text().splitlines()]
    return [(e["op"], e["status"], os.path.relpath(e["dst"], pair.dst), e.get("error"))
            for e in lines]


@pytest.fixture
def read_only_subtree(setup):
    """DST/ro is a real read-only bind mount: deleting in it meets a real EROFS."""
    if os.geteuid() != 0:
        pytest.skip("bind mounts need root")
    pair = setup[0]
    ro = pair.dst / "ro"
    write(ro / "extra", b"e")
    subprocess.run(["mount", "--bind", str(ro), str(ro)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
        yield ro
    finally:
        subprocess.run(["umount", str(ro)], check=True)


def test_a_read_only_destination_stops_mirroring_at_once(setup, read_only_subtree):
    """Extras go deepest (last in path order) first: z-extra1, z-extra0, then ro/extra
    meets EROFS; a-extra, after it, is not touched."""
    pair, cat, audit, run = setup
    write(pair.src / "keep", b"k")
    for name in ("a-extra", "z-extra0", "z-extra1"):
        write(pair.dst / name, b"e")
    scanned(pair, cat, [(b"a-extra", "file"), (b"ro", "dir"), (b"ro/extra", "file"),
                        (b"z-extra0", "file"), (b"z-extra1", "file")], [b"keep"])
    with pytest.raises(FatalError) as e:
        mirror_all(cat, os.fsencode(pair.src), os.fsencode(pair.dst), identity(pair),
               threading.Event(), audit, run)
    message = str(e.value)
    assert "EROFS: Read-only file system" in message and "\n" not in message
    assert str(pair.dst / "ro" / "extra") in message
    # The deletions before it are recorded, the entries after it are untouched.
    assert not (pair.dst / "z-extra0").exists() and not (pair.dst / "z-extra1").exists()
    assert (pair.dst / "a-extra").exists() and (pair.dst / "ro" / "extra").exists()
    assert dest_rows(cat) == {str(pair.dst / p) for p in ("", "a-extra", "ro", "ro/extra")}
    assert cat.run_counts(run)["files_deleted"] == 2
    assert audit_lines(pair) == [
        ("delete", "ok", "z-extra1", None), ("delete", "ok", "z-extra0", None),
        ("delete", "failed", "ro/extra", "EROFS: Read-only file system")]


@pytest.mark.parametrize("kind, code", [("file", errno.EROFS), ("file", errno.ENOSPC),
                                        ("file", errno.EDQUOT), ("dir", errno.EROFS)],
                         ids=["unlink-EROFS", "unlink-ENOSPC", "unlink-EDQUOT", "rmdir-EROFS"])
def test_a_fatal_error_on_delete_stops_mirroring(setup, monkeypatch, kind, code):
    """faults.py has no unlink/rmdir operation: the failing call is patched in."""
    pair, cat, audit, run = setup
    write(pair.src / "keep", b"k")
    for name in ("a-extra", "z-extra"):
        write(pair.dst / name, b"e")
    if kind == "dir":
        (pair.dst / "m-bad").mkdir()
    else:
        write(pair.dst / "m-bad", b"e")
    failing = os.fsencode(pair.dst / "m-bad")
    real = os.rmdir if kind == "dir" else os.unlink

    def refuse(path, *args, **kwargs):
        if os.fsencode(path) == failing:
            raise OSError(code, os.strerror(code), path)
        return real(path, *args, **kwargs)
    monkeypatch.setattr(os, "rmdir" if kind == "dir" else "unlink", refuse)
    scanned(pair, cat, [(b"a-extra", "file"), (b"m-bad", kind), (b"z-extra", "file")],
            [b"keep"])
    with pytest.raises(FatalError, match=errno.errorcode[code]):
        mirror_all(cat, os.fsencode(pair.src), os.fsencode(pair.dst), identity(pair),
               threading.Event(), audit, run)
    assert not (pair.dst / "z-extra").exists()
    assert (pair.dst / "m-bad").exists() and (pair.dst / "a-extra").exists()
    assert dest_rows(cat) == {str(pair.dst / p) for p in ("", "a-extra", "m-bad")}
    assert cat.run_counts(run)["files_deleted"] == 1


def test_other_delete_errors_fail_one_entry_and_the_rest_goes_on(setup, monkeypatch):
    pair, cat, audit, run = setup
    write(pair.src / "keep", b"k")
    for name in ("a-extra", "m-busy", "z-extra"):
        write(pair.dst / name, b"e")
    failing, real = os.fsencode(pair.dst / "m-busy"), os.unlink

    def refuse(path, *args, **kwargs):
        if os.fsencode(path) == failing:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real(path, *args, **kwargs)
    monkeypatch.setattr(os, "unlink", refuse)
    scanned(pair, cat, [(b"a-extra", "file"), (b"m-busy", "file"), (b"z-extra", "file")],
            [b"keep"])
    result = mirror_all(cat, os.fsencode(pair.src), os.fsencode(pair.dst), identity(pair),
                    threading.Event(), audit, run)
    assert (result.deleted, result.failed) == (2, 1)
    assert sorted(p.name for p in pair.dst.iterdir()) == ["m-busy"]


def test_a_destination_entry_that_cannot_be_looked_at_fails_alone(setup, monkeypatch):
    """An lstat of a DST entry that does not answer (EIO) keeps that entry and counts a
    failure; it does not end the run with a traceback."""
    pair, cat, audit, run = setup
    write(pair.src / "keep", b"k")
    for name in ("a-extra", "m-unreadable", "z-extra"):
        write(pair.dst / name, b"e")
    failing, real = os.fsencode(pair.dst / "m-unreadable"), os.lstat

    def broken(path, *args, **kwargs):
        if os.fsencode(path) == failing:
            raise OSError(errno.EIO, "Input/output error", path)
        return real(path, *args, **kwargs)
    monkeypatch.setattr(os, "lstat", broken)
    scanned(pair, cat, [(b"a-extra", "file"), (b"m-unreadable", "file"),
                        (b"z-extra", "file")], [b"keep"])
    result = mirror_all(cat, os.fsencode(pair.src), os.fsencode(pair.dst), identity(pair),
                    threading.Event(), audit, run)
    assert (result.deleted, result.failed) == (2, 1)
    assert (pair.dst / "m-unreadable").exists()
    audit.flush()
    assert ("delete", "failed", "m-unreadable", "EIO: Input/output error") in audit_lines(pair)
