"""A name whose kind differs between SRC and DST (issue 9, item 7): a file or a link where
DST has a directory, a directory where DST has a file or a link.

Without --delete-extras the entry fails at once, once, saying why and that
--delete-extras would replace it; DST is left as it was. With it, what DST has in the
way is removed (a whole tree if need be; its content is extra, as `rsync --delete`
treats it), each removal is a `delete` audit line, and DST ends up equal to SRC.
Nothing is ever removed or written through a symlink outside DST.
"""

import errno
import os
import subprocess
import time

import pytest

from fastsync.cli import main
from fastsync.destination import LocalDestination
from fastsync.kinds import KindClash, remove_tree
from fastsync.errors import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL

from ..conftest import assert_same_tree, snapshot, temporaries, write

# A backoff retry would wait at least 0.75 x 10 s, a copy "later in this run" 50 s: a
# run that ends well within that retried nothing.
SLOW_RETRY = ("--retry-delay", "10")
AT_ONCE = 6.0

REPLACE = "--delete-extras would replace it"


def sync(pair, *extra):
    started = time.monotonic()
    code = main(pair.args(*SLOW_RETRY, *extra))
    return code, time.monotonic() - started


def failed(pair, run=None):
    return [e for e in pair.audit() if e["status"] == "failed"
            and (run is None or e["run"] == run)]


def deletions(pair):
    return {e["dst"]: e["kind"] for e in pair.audit()
            if e["op"] == "delete" and e["status"] == "ok"}


def row(pair, path):
    return pair.rows("SELECT * FROM files WHERE dst_path = ?", (str(path),))[0]


def same_times(a, b):
    os.utime(b, ns=(os.stat(a).st_atime_ns, os.stat(a).st_mtime_ns))


def below_message(kind, path):
    return (f"ENOTDIR: DST has a {kind} at {str(path)!r} where SRC has a directory; "
            f"{REPLACE}")


# ------------------------------------------------- a file where DST has a directory --

def test_a_file_where_dst_has_a_directory_fails_at_once_and_says_why(pair, capsys):
    write(pair.src / "d" / "x", b"the file")
    write(pair.src / "ok", b"fine")
    write(pair.dst / "d" / "x" / "old", b"old content")
    os.makedirs(pair.dst / "d" / "x" / "sub")
    same_times(pair.src / "d", pair.dst / "d")        # d itself is in sync
    before = snapshot(pair.dst / "d")

    code, took = sync(pair)

    assert code == EXIT_PARTIAL and took < AT_ONCE
    assert snapshot(pair.dst / "d") == before          # the directory and its content
    assert os.stat(pair.dst / "d").st_mtime_ns == os.stat(pair.src / "d").st_mtime_ns
    assert (pair.dst / "ok").read_bytes() == b"fine" and temporaries(pair.dst) == []
    message = f"EISDIR: DST has a directory where SRC has a file; {REPLACE}"
    r = row(pair, pair.dst / "d" / "x")
    assert (r["status"], r["attempts"], r["last_error"]) == ("pending", 1, message)
    lines = failed(pair)
    assert len(lines) == 1 and lines[0]["op"] == "copy" and lines[0]["error"] == message
    assert "retry" not in lines[0] and not deletions(pair)
    err = capsys.readouterr().err
    assert err.count(message) == 1 and "retry" not in err and "failed 1;" in err
    assert pair.rows("SELECT files_failed FROM runs")[0][0] == 1

    # every run tries it once more, and says the same
    assert sync(pair)[0] == EXIT_PARTIAL
    assert row(pair, pair.dst / "d" / "x")["attempts"] == 2
    assert [e["error"] for e in failed(pair, run=2)] == [message]
    assert snapshot(pair.dst / "d") == before


def test_with_delete_extras_a_directory_in_the_way_of_a_file_is_removed_whole(pair,
                                                                               tmp_path):
    outside = tmp_path / "outside"
    write(outside / "precious", b"keep me")
    write(pair.src / "x", b"the file")
    write(pair.dst / "x" / "a", b"a")
    write(pair.dst / "x" / "sub" / "b", b"b")
    os.symlink(outside, pair.dst / "x" / "sub" / "dirlink")        # never followed
    os.symlink(outside / "precious", pair.dst / "x" / "filelink")
    outside_before = snapshot(outside)

    code, took = sync(pair, "--delete-extras")

    assert code == EXIT_OK and took < AT_ONCE
    assert_same_tree(pair.src, pair.dst)
    assert (pair.dst / "x").read_bytes() == b"the file"
    assert snapshot(outside) == outside_before
    x = pair.dst / "x"
    assert deletions(pair) == {
        str(x / "a"): "file", str(x / "sub" / "b"): "file",
        str(x / "sub" / "dirlink"): "symlink", str(x / "filelink"): "symlink",
        str(x / "sub"): "dir", str(x): "dir"}
    r = row(pair, x)
    assert (r["status"], r["attempts"], r["last_error"]) == ("synced", 0, None)
    assert pair.rows("SELECT files_deleted FROM runs")[0][0] == 6
    assert not failed(pair)
    # the next run finds nothing to do
    assert sync(pair, "--delete-extras")[0] == EXIT_OK
    assert len(deletions(pair)) == 6 and not failed(pair)


def test_the_summary_counts_what_was_removed_to_make_room(pair, capsys):
    write(pair.src / "x", b"the file")
    write(pair.dst / "x" / "a", b"a")
    assert sync(pair, "--delete-extras")[0] == EXIT_OK
    assert "deleted 2" in capsys.readouterr().err
    assert [e["deleted"] for e in pair.audit() if e["op"] == "run"
            and e["status"] == "ok"] == [2]


# ---------------------------------------------- a link where DST has a directory --

def test_a_symlink_where_dst_has_a_directory(pair):
    os.symlink("target/elsewhere", pair.src / "x")
    write(pair.dst / "x" / "old", b"old")
    code, took = sync(pair)
    assert code == EXIT_PARTIAL and took < AT_ONCE
    assert (pair.dst / "x" / "old").read_bytes() == b"old"
    message = f"EISDIR: DST has a directory where SRC has a symbolic link; {REPLACE}"
    r = row(pair, pair.dst / "x")
    assert (r["status"], r["attempts"], r["last_error"]) == ("pending", 1, message)
    assert [(e["op"], e["error"]) for e in failed(pair)] == [("link", message)]
    assert temporaries(pair.dst) == []

    assert sync(pair, "--delete-extras")[0] == EXIT_OK
    assert os.readlink(pair.dst / "x") == "target/elsewhere"
    assert deletions(pair) == {str(pair.dst / "x" / "old"): "file",
                               str(pair.dst / "x"): "dir"}
    assert row(pair, pair.dst / "x")["status"] == "synced"


# ------------------------------------- a non-directory where DST has another one --

@pytest.mark.parametrize("at_dst", ["link to a file", "link to a directory", "file"])
def test_a_non_directory_replaces_another_without_delete_extras(pair, tmp_path, at_dst):
    """A link or a file in the way of a file is replaced by the rename, like any older
    version of the entry: only a directory needs --delete-extras."""
    outside = tmp_path / "outside"
    write(outside / "precious", b"keep me")
    write(pair.src / "f", b"SRC's file")
    os.symlink("SRC's link target", pair.src / "l")
    if at_dst == "file":
        write(pair.dst / "f", b"an older file")
        write(pair.dst / "l", b"a file where SRC has a link")
    else:
        target = outside / "precious" if at_dst == "link to a file" else outside
        os.symlink(target, pair.dst / "f")
        os.symlink(target, pair.dst / "l")
    before = snapshot(outside)
    assert sync(pair)[0] == EXIT_OK
    assert_same_tree(pair.src, pair.dst)
    assert (pair.dst / "f").read_bytes() == b"SRC's file"
    assert not (pair.dst / "f").is_symlink()
    assert os.readlink(pair.dst / "l") == "SRC's link target"
    assert snapshot(outside) == before and not deletions(pair)


# ------------------------------------------- a directory where DST has a file --

def make_dir_with_content(src):
    write(src / "x" / "a", b"a")
    write(src / "x" / "sub" / "b", b"b")
    os.makedirs(src / "x" / "sub" / "empty")
    write(src / "ok", b"fine")


def test_a_directory_where_dst_has_a_file_fails_with_everything_below_it(pair, capsys):
    make_dir_with_content(pair.src)
    write(pair.dst / "x", b"DST's file")

    code, took = sync(pair)

    assert code == EXIT_PARTIAL and took < AT_ONCE
    assert (pair.dst / "x").read_bytes() == b"DST's file"
    assert sorted(os.listdir(pair.dst)) == ["ok", "x"] and temporaries(pair.dst) == []
    message = below_message("file", pair.dst / "x")
    for rel in ("x", "x/a", "x/sub", "x/sub/b", "x/sub/empty"):
        r = row(pair, pair.dst / rel)
        assert (r["status"], r["attempts"], r["last_error"]) == ("pending", 1, message), rel
    lines = failed(pair)
    assert sorted((e["op"], e["dst"]) for e in lines) == sorted(
        [("copy", str(pair.dst / "x" / "a")), ("copy", str(pair.dst / "x" / "sub" / "b"))]
        + [("dir", str(pair.dst / p)) for p in ("x", "x/sub", "x/sub/empty")])
    assert all(e["error"] == message and "retry" not in e for e in lines)
    err = capsys.readouterr().err
    assert "failed 2;" in err and "3 directories failed" in err and "retry" not in err
    assert "exists at the destination" not in err


def test_with_delete_extras_a_file_in_the_way_of_a_directory_is_replaced(pair):
    make_dir_with_content(pair.src)
    write(pair.dst / "x", b"DST's file")
    code, took = sync(pair, "--delete-extras")
    assert code == EXIT_OK and took < AT_ONCE
    assert_same_tree(pair.src, pair.dst)
    assert deletions(pair) == {str(pair.dst / "x"): "file"}
    assert {r["status"] for r in pair.rows()} == {"synced"}
    assert pair.rows("SELECT files_deleted FROM runs")[0][0] == 1


def test_with_delete_extras_a_file_in_the_way_of_an_empty_directory_is_replaced(pair):
    """No file below it: the directories phase makes the room."""
    os.makedirs(pair.src / "x" / "y")
    write(pair.dst / "x", b"DST's file")
    assert sync(pair, "--delete-extras")[0] == EXIT_OK
    assert_same_tree(pair.src, pair.dst)
    assert deletions(pair) == {str(pair.dst / "x"): "file"}
    assert pair.rows("SELECT files_deleted FROM runs")[0][0] == 1


def test_many_files_below_a_file_in_the_way_fail_once_each_and_quietly(pair, capsys):
    for i in range(40):
        write(pair.src / "x" / f"f{i:02d}", b"data %d" % i)
    write(pair.dst / "x", b"DST's file")
    code, took = sync(pair)
    assert code == EXIT_PARTIAL and took < AT_ONCE
    message = below_message("file", pair.dst / "x")
    copies = [e for e in failed(pair) if e["op"] == "copy"]
    assert len(copies) == 40 and all(e["error"] == message for e in copies)
    attempts = pair.rows("SELECT attempts FROM files WHERE kind = 'file'")
    assert {r["attempts"] for r in attempts} == {1}
    err = capsys.readouterr().err
    # one warning for the files below it, one for the directory itself: not 41
    assert err.count(message) == 2 and "failed 40;" in err
    assert (pair.dst / "x").read_bytes() == b"DST's file"


# ----------------------- a directory where DST has a symlink to a directory --

def test_a_directory_where_dst_has_a_link_to_a_directory_is_never_written_through(
        pair, tmp_path):
    outside = tmp_path / "outside"
    write(outside / "a", b"outside's own a")
    os.makedirs(outside / "sub")
    before = snapshot(outside)
    make_dir_with_content(pair.src)
    os.symlink(outside, pair.dst / "x")

    code, took = sync(pair)
    assert code == EXIT_PARTIAL and took < AT_ONCE
    assert snapshot(outside) == before
    assert os.readlink(pair.dst / "x") == str(outside)
    message = below_message("symbolic link", pair.dst / "x")
    r = row(pair, pair.dst / "x" / "a")
    assert (r["status"], r["attempts"], r["last_error"]) == ("pending", 1, message)

    assert sync(pair, "--delete-extras")[0] == EXIT_OK
    assert snapshot(outside) == before
    assert_same_tree(pair.src, pair.dst)
    assert not (pair.dst / "x").is_symlink()
    assert deletions(pair) == {str(pair.dst / "x"): "symlink"}


# ------------------------------------------------------------ fatal errors --

def test_a_read_only_destination_met_while_removing_a_tree_stops_the_run(pair, monkeypatch,
                                                                         capsys):
    write(pair.src / "x", b"the file")
    write(pair.dst / "x" / "sub" / "b", b"b")
    real = os.rmdir

    def rmdir(path, *args, **kwargs):
        if os.fsencode(path).endswith(b"sub"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(path, *args, **kwargs)
    monkeypatch.setattr(os, "rmdir", rmdir)

    assert main(pair.args("--delete-extras")) == EXIT_FATAL
    assert "stopped: EROFS" in capsys.readouterr().err
    r = row(pair, pair.dst / "x")
    assert (r["status"], r["attempts"]) == ("pending", 0)       # not the file's fault
    assert (pair.dst / "x" / "sub").is_dir() and temporaries(pair.dst) == []
    # what was removed before it is told, and only that
    assert deletions(pair) == {str(pair.dst / "x" / "sub" / "b"): "file"}
    monkeypatch.undo()
    assert main(pair.args("--delete-extras")) == EXIT_OK
    assert_same_tree(pair.src, pair.dst)


def test_a_read_only_destination_met_while_removing_a_file_stops_the_run(pair, monkeypatch,
                                                                         capsys):
    make_dir_with_content(pair.src)
    write(pair.dst / "x", b"DST's file")
    real = os.unlink
    blocker = os.fsencode(pair.dst / "x")

    def unlink(path, *args, **kwargs):
        if os.fsencode(path) == blocker:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(path, *args, **kwargs)
    monkeypatch.setattr(os, "unlink", unlink)

    assert main(pair.args("--delete-extras")) == EXIT_FATAL
    assert "stopped: EROFS" in capsys.readouterr().err
    assert (pair.dst / "x").read_bytes() == b"DST's file"
    assert row(pair, pair.dst / "x" / "a")["attempts"] == 0
    assert not deletions(pair)


# ------------------------------------------------------------------ the guards --

def test_room_is_never_made_outside_dst(pair, tmp_path):
    outside = tmp_path / "outside"
    write(outside / "x", b"not DST's")
    dest = LocalDestination(os.fsencode(pair.dst), replace=True)
    try:
        for path in (os.fsencode(outside / "x"), os.fsencode(pair.dst),
                     os.fsencode(pair.dst) + b"/../outside/x"):
            with pytest.raises(OSError) as info:
                dest.make_room(KindClash(path, "file", "dir"))
            assert info.value.errno == errno.EPERM
    finally:
        dest.close()
    assert (outside / "x").read_bytes() == b"not DST's" and not dest.take_removed()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a filesystem needs root")
def test_removing_a_tree_stops_at_another_filesystem_mounted_in_it(tmp_path):
    top = tmp_path / "x"
    write(top / "a", b"a")
    (top / "mnt").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(top / "mnt")],
                   check=True)
    try:
        write(top / "mnt" / "keep", b"on another filesystem")
        removed = []
        with pytest.raises(OSError) as info:
            remove_tree(os.fsencode(top), lambda path, kind: removed.append(path))
        assert info.value.errno == errno.EXDEV and "mounted" in info.value.strerror
        assert (top / "mnt" / "keep").read_bytes() == b"on another filesystem"
        assert removed == [os.fsencode(top / "a")] and not (top / "a").exists()
    finally:
        subprocess.run(["umount", str(top / "mnt")], check=True)


def test_a_filesystem_mounted_where_a_file_now_goes_is_not_emptied(pair):
    """DST/x is a mount point and SRC now has a file x: with --delete-extras, making
    room does not empty that filesystem (its mount point could never be removed anyway);
    the file fails, saying why. (Mirroring afterwards treats what is mounted inside DST
    as part of DST, as rsync --delete does: its extras are deleted, each audited.)"""
    if os.geteuid() != 0:
        pytest.skip("mounting a filesystem needs root")
    write(pair.src / "x", b"the file")
    (pair.dst / "x").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(pair.dst / "x")],
                   check=True)
    try:
        write(pair.dst / "x" / "keep", b"on another filesystem")
        assert sync(pair, "--delete-extras")[0] == EXIT_PARTIAL
        log = pair.audit()
        failure = [i for i, e in enumerate(log) if e["status"] == "failed"]
        assert len(failure) == 1
        assert "EXDEV" in log[failure[0]]["error"]
        assert "another filesystem is mounted" in log[failure[0]]["error"]
        # nothing was removed to make room: the only deletion is mirror's, afterwards
        removed = [i for i, e in enumerate(log) if e["op"] == "delete"]
        assert all(i > failure[0] for i in removed)
        assert os.path.ismount(pair.dst / "x")
    finally:
        subprocess.run(["umount", str(pair.dst / "x")], check=True)


@pytest.fixture
def own_fsync_dst(pair):
    """A tmpfs at DST/share: files there are fsynced and renamed one by one by the
    writers (as on NFS, SMB, FUSE), not by the batch."""
    (pair.dst / "share").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs",
                    str(pair.dst / "share")], check=True)
    yield pair.dst / "share"
    subprocess.run(["umount", str(pair.dst / "share")], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a filesystem needs root")
def test_kinds_are_replaced_where_each_file_is_renamed_by_its_writer(pair, own_fsync_dst):
    write(pair.src / "share" / "x", b"the file")
    write(pair.src / "share" / "y" / "a", b"a")
    write(own_fsync_dst / "x" / "old", b"old")
    write(own_fsync_dst / "y", b"DST's file")
    code, took = sync(pair)
    assert code == EXIT_PARTIAL and took < AT_ONCE
    assert row(pair, own_fsync_dst / "x")["last_error"] == (
        f"EISDIR: DST has a directory where SRC has a file; {REPLACE}")
    assert row(pair, own_fsync_dst / "y" / "a")["last_error"] == below_message(
        "file", own_fsync_dst / "y")
    assert (own_fsync_dst / "x" / "old").read_bytes() == b"old"
    assert (own_fsync_dst / "y").read_bytes() == b"DST's file"

    assert sync(pair, "--delete-extras")[0] == EXIT_OK
    assert_same_tree(pair.src, pair.dst)
    assert deletions(pair) == {str(own_fsync_dst / "x" / "old"): "file",
                               str(own_fsync_dst / "x"): "dir",
                               str(own_fsync_dst / "y"): "file"}
