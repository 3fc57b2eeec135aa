"""One run per catalog, however its path is spelled, and one run per destination,
whatever its catalog (issue 9 item 2): real processes, real flock."""

import fcntl
import os
import signal
import subprocess

from ..conftest import assert_same_tree, command, make_tree, temporaries, wait_for, write
from .test_cli import one_line_error

SLOW = ("--bwlimit", "1M", "--block-size", "256K")


def _slow_run(pair, *args):
    """A run that takes seconds: 4 MB at 1 MB/s. Returns it once it holds its locks."""
    for i in range(4):
        write(pair.src / f"big{i}", os.urandom(1 << 20))
    proc = subprocess.Popen([*command(), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    wait_for(lambda: temporaries(pair.dst) or proc.poll() is not None)
    assert proc.poll() is None, proc.stderr.read().decode()
    return proc


def test_catalog_reached_through_a_symlink_is_the_same_catalog(fastsync, pair):
    link = pair.root / "link.db"
    link.symlink_to(pair.db)
    first = _slow_run(pair, *pair.args(*SLOW))
    try:
        second = fastsync("--db", str(link), "--log", str(pair.root / "b.log"),
                          str(pair.src), str(pair.dst), check=4)
        one_line_error(second, "is in use by another fastsync")
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(60)
    assert first.returncode == 143
    rows = pair.rows("SELECT count(*) AS n FROM runs")
    assert rows[0]["n"] == 1          # the refused run wrote nothing to the catalog


def test_catalog_reached_through_a_hard_link_is_the_same_catalog(fastsync, pair):
    write(pair.src / "f", b"x")
    fastsync(*pair.args())
    other = pair.root / "other.db"
    os.link(pair.db, other)
    fd = os.open(pair.db, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)      # as a run holding pair.db does
    try:
        proc = fastsync("--db", str(other), "--log", str(pair.log), str(pair.src),
                        str(pair.dst), check=4)
        one_line_error(proc, "in use by another fastsync", "under another name")
    finally:
        os.close(fd)


def test_second_catalog_on_the_same_destination_is_refused(fastsync, pair):
    make_tree(pair.src / "tree", files=20)
    first = _slow_run(pair, *pair.args(*SLOW))
    try:
        second = fastsync("--db", str(pair.root / "other.db"), "--log",
                          str(pair.root / "other.log"), str(pair.src), str(pair.dst),
                          check=4)
        one_line_error(second, f"DST {str(pair.dst)!r} is in use by another fastsync run",
                       f"pid {first.pid}@")
    finally:
        first.wait(120)
    assert first.returncode == 0, first.stderr.read().decode()
    assert_same_tree(pair.src, pair.dst)         # the lock file is gone too
    assert not (pair.root / "other.db").exists()  # refused before anything was written


def test_lock_left_by_a_killed_run_does_not_block_the_next(fastsync, pair):
    first = _slow_run(pair, *pair.args(*SLOW))
    assert (pair.dst / ".fastsync.lock").exists()
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    proc = fastsync(*pair.args())
    assert proc.returncode == 0
    assert_same_tree(pair.src, pair.dst)
    assert not (pair.dst / ".fastsync.lock").exists()


def test_a_source_entry_named_like_the_lock_is_not_copied(fastsync, pair):
    write(pair.src / ".fastsync.lock", b"someone else's")
    write(pair.src / "sub" / ".fastsync.lock", b"an ordinary file below the root")
    proc = fastsync(*pair.args(), check=0)
    assert not (pair.dst / ".fastsync.lock").exists()
    assert (pair.dst / "sub" / ".fastsync.lock").read_bytes() == b"an ordinary file below the root"
    assert b"not copied" in proc.stdout + proc.stderr or any(
        r["op"] == "special" and r["src"].endswith("/.fastsync.lock") for r in pair.audit())


def test_a_symlink_planted_as_the_dst_lock_is_refused_not_written_through(fastsync, pair):
    write(pair.src / "f", b"x")
    victim = pair.root / "victim"
    victim.write_bytes(b"do not touch")
    os.symlink(victim, pair.dst / ".fastsync.lock")
    proc = fastsync(*pair.args(), check=2)
    one_line_error(proc, ".fastsync.lock' is not a regular file", "remove it")
    assert victim.read_bytes() == b"do not touch"
    assert not pair.db.exists()


def test_a_symlink_planted_as_the_probe_directory_is_removed_not_followed(pair):
    """A killed run's probe name (a fixed pid in a container) that is now a symlink to
    a directory: the link goes, what it points at stays."""
    from fastsync.probe import probe
    elsewhere = pair.root / "elsewhere"
    write(elsewhere / "precious", b"outside DST")
    os.symlink(elsewhere, pair.dst / f".fastsync-probe-{os.getpid()}.tmp")
    assert probe(os.fsencode(pair.dst)).window == 1
    assert (elsewhere / "precious").read_bytes() == b"outside DST"
    assert os.listdir(pair.dst) == []
