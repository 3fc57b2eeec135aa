"""SRC, DST, the catalog, its lock and the log: never the same file, never inside one
another, however spelled (issue 9 item 4), and any bytes in their names (item 9)."""

import os
import subprocess

import pytest

from ..conftest import assert_same_tree, command, write
from .test_cli import one_line_error


def _run(*args):
    return subprocess.run([*command(), *args], capture_output=True, timeout=60)


def test_log_and_catalog_the_same_file_is_refused(pair):
    write(pair.src / "f", b"x")
    write(pair.log, b'{"op":"run"}\n')
    proc = _run("--db", str(pair.log), "--log", str(pair.log), str(pair.src), str(pair.dst))
    assert proc.returncode == 2
    one_line_error(proc, "is the catalog", "different files")
    assert pair.log.read_bytes() == b'{"op":"run"}\n'      # the log is untouched
    assert os.listdir(pair.dst) == []


@pytest.mark.parametrize("spelling", ["symlink", "dotdot", "lock", "wal"])
def test_log_that_is_the_catalog_however_spelled(pair, spelling):
    write(pair.src / "f", b"x")
    (pair.root / "sub").mkdir()
    log = {"symlink": pair.root / "alias.db", "dotdot": pair.root / "sub" / ".." / "catalog.db",
           "lock": pair.root / "catalog.db.lock", "wal": pair.root / "catalog.db-wal"}[spelling]
    if spelling == "symlink":
        log.symlink_to(pair.db)
    proc = _run("--db", str(pair.db), "--log", str(log), str(pair.src), str(pair.dst))
    assert proc.returncode == 2, proc.stderr.decode()
    one_line_error(proc, "the log", "catalog")
    assert not pair.db.exists()


def test_catalog_inside_dst_through_a_symlinked_directory(pair):
    write(pair.src / "f", b"x")
    (pair.root / "alias").symlink_to(pair.dst)
    proc = _run("--db", str(pair.root / "alias" / "c.db"), "--log", str(pair.log),
                str(pair.src), str(pair.dst))
    assert proc.returncode == 2
    one_line_error(proc, "must not be inside SRC or DST")
    assert os.listdir(pair.dst) == []


@pytest.fixture
def bind_of_dst(pair):
    """DST bind-mounted elsewhere: same directory, no symlink to resolve."""
    if os.geteuid() != 0:
        pytest.skip("bind mounts need root")
    other = pair.root / "bind"
    other.mkdir()
    if subprocess.run(["mount", "--bind", str(pair.dst), str(other)]).returncode:
        pytest.skip("mount --bind is not permitted here")
    yield other
    subprocess.run(["umount", str(other)])


def test_log_inside_dst_through_a_bind_mount(pair, bind_of_dst):
    write(pair.src / "f", b"x")
    proc = _run("--db", str(pair.db), "--log", str(bind_of_dst / "audit.log"),
                str(pair.src), str(pair.dst))
    assert proc.returncode == 2
    one_line_error(proc, "the log", "must not be inside SRC or DST")


def test_src_inside_dst_through_a_bind_mount(pair, bind_of_dst):
    (pair.dst / "inner").mkdir()
    write(pair.dst / "inner" / "f", b"x")
    proc = _run(*pair.args()[:4], str(bind_of_dst / "inner"), str(pair.dst))
    assert proc.returncode == 2
    one_line_error(proc, "must not be inside one another")


def test_catalog_and_log_in_a_directory_whose_name_is_not_utf8(pair, tmp_path):
    write(pair.src / "f", b"x")
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.mkdir(odd)
    db, log = os.path.join(odd, b"c.db"), os.path.join(odd, b"a.log")
    proc = subprocess.run([*map(os.fsencode, command()), b"--db", db, b"--log", log,
                           os.fsencode(pair.src), os.fsencode(pair.dst)],
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert_same_tree(pair.src, pair.dst)
    assert os.path.getsize(db) > 0 and os.path.exists(db + b".lock")
    again = subprocess.run([*map(os.fsencode, command()), b"--db", db, b"--log", log,
                            os.fsencode(pair.src), os.fsencode(pair.dst)],
                           capture_output=True, timeout=60)
    assert again.returncode == 0 and b"copied 0 files" in again.stdout + again.stderr
