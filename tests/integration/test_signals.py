"""Interruptions with real signals on a real process: Ctrl-C / SIGTERM stop promptly and
leave the catalog telling the truth; after kill -9 at any moment the next run finishes
with an exact copy."""

import contextlib
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from fastsync.catalog import from_db

from ..conftest import assert_same_tree, make_tree, temporaries, wait_for, write

MiB = 1024 * 1024


def slow_tree(pair, seed=0):
    """~8 MiB in a few large files and many small ones: several seconds at 2 MiB/s."""
    rng = random.Random(seed)
    for i in range(4):
        write(pair.src / f"big{i}.bin", rng.randbytes(MiB + rng.randint(0, MiB)),
              mtime_ns=1_600_000_000_000_000_000 + i)
    make_tree(pair.src / "small", seed=seed, files=60, max_size=20_000)


def catalog_tells_the_truth(pair) -> int:
    """Every row marked synced has exactly the source's bytes at its destination, and
    nothing under a final name is a partial copy. Returns the number of synced files."""
    conn = sqlite3.connect(pair.db)
    created = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'files'").fetchone()[0]
    rows = conn.execute("SELECT src_path, dst_path, hash FROM files"
                        " WHERE status = 'synced' AND kind = 'file'").fetchall() if created else []
    conn.close()   # (killed before the schema was committed: nothing is recorded yet)
    for src, dst, digest in rows:
        with open(from_db(dst), "rb") as f:
            data = f.read()
        with open(from_db(src), "rb") as f:
            assert data == f.read()
        assert digest is None or digest == hashlib.sha256(data).hexdigest()
    for path in pair.dst.rglob("*"):
        source = pair.src / path.relative_to(pair.dst)
        if path.is_file() and not path.name.startswith(".fastsync-") and source.exists():
            assert path.read_bytes() == source.read_bytes()    # extras have no source
    return len(rows)


def writing_started(pair) -> bool:
    """A data temporary exists (not the write probe made at startup)."""
    return any(b"-probe-" not in os.path.basename(t) for t in temporaries(pair.dst))


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_cleanly_and_the_next_run_resumes(fastsync, pair, signum, code):
    slow_tree(pair)
    proc = fastsync.start(*pair.args("--bwlimit", "2M", "--block-size", "256K"))
    wait_for(lambda: writing_started(pair))
    proc.send_signal(signum)
    assert proc.wait(timeout=20) == code
    err = proc.stderr.read().decode()
    assert "stopping" in err and "interrupted" in err
    assert temporaries(pair.dst) == []          # the file in flight was removed
    catalog_tells_the_truth(pair)
    pending = sqlite3.connect(pair.db).execute(
        "SELECT count(*) FROM files WHERE status = 'pending' AND kind = 'file'").fetchone()[0]
    assert pending > 0
    status = sqlite3.connect(pair.db).execute(
        "SELECT status FROM runs ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert status == "interrupted"
    resumed = fastsync(*pair.args())
    assert "resuming the backlog" in resumed.stderr.decode()
    assert_same_tree(pair.src, pair.dst)


@pytest.mark.parametrize("moment", [0.0, 0.02, 0.1, 0.3, 0.7, 1.2, 2.0, 3.0])
def test_kill_9_at_any_moment_then_rerun_gives_an_exact_copy(fastsync, pair, moment):
    """From process start-up through scan and transfer to the end of the run."""
    slow_tree(pair, seed=int(moment * 10))
    proc = fastsync.start(*pair.args("--bwlimit", "4M", "--block-size", "128K"))
    time.sleep(moment)
    proc.kill()
    proc.wait(timeout=20)
    if pair.db.exists():
        catalog_tells_the_truth(pair)
    fastsync(*pair.args())
    assert_same_tree(pair.src, pair.dst)
    assert temporaries(pair.dst) == []
    assert catalog_tells_the_truth(pair) == 64
    fastsync(*pair.args())                      # and a further run has nothing to do
    assert_same_tree(pair.src, pair.dst)


def last_run(pair) -> sqlite3.Row:
    return pair.rows("SELECT * FROM runs ORDER BY id DESC LIMIT 1")[0]


class StderrLines:
    """Collects a process's stderr lines in a thread, so a test can wait for one."""

    def __init__(self, proc):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc):
        for line in proc.stderr:
            self.lines.append(line.decode("utf-8", "replace"))

    def text(self) -> str:
        self._thread.join(10)
        return "".join(self.lines)


@contextlib.contextmanager
def catalog_held(pair):
    """Hold the catalog's write lock, as a slow disk might: a stopping run cannot record
    its last batch or its end, so it is still stopping when the test sends more."""
    blocker = sqlite3.connect(pair.db, isolation_level=None, timeout=20)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        blocker.rollback()
        blocker.close()


def interrupt_twice(fastsync, pair, gap: float) -> tuple[int, str, bool]:
    """SIGINT while copying, another `gap` seconds later, with the orderly stop held up
    for 1.5 s after the first. Returns the exit status, stderr, and whether the process
    had already ended when the catalog was released."""
    slow_tree(pair)
    proc = fastsync.start(*pair.args("--bwlimit", "1M", "--block-size", "256K"))
    err = StderrLines(proc)
    wait_for(lambda: writing_started(pair))
    with catalog_held(pair):
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: any("stopping" in line for line in err.lines))
        time.sleep(gap)
        proc.send_signal(signal.SIGINT)
        if gap < 1.5:
            time.sleep(1.5 - gap)
            ended = proc.poll() is not None
        else:       # leaving at once: well before the catalog's 30 s busy timeout
            ended = proc.wait(timeout=15) is not None
    return proc.wait(timeout=20), err.text(), ended


def test_two_signals_at_once_are_one_ctrl_c_and_stop_in_order(fastsync, pair):
    """A terminal's Ctrl-C reaches the one-file binary twice (directly and forwarded by
    PyInstaller's bootloader): that is one Ctrl-C, an orderly stop, not "leave now"."""
    code, err, ended = interrupt_twice(fastsync, pair, gap=0.1)
    assert not ended and code == 130
    assert "interrupted: copied" in err and "at once" not in err
    assert temporaries(pair.dst) == []
    run = last_run(pair)
    assert run["status"] == "interrupted" and run["finished"] is not None
    assert (pair.audit()[-1]["op"], pair.audit()[-1]["status"]) == ("run", "interrupted")
    catalog_tells_the_truth(pair)
    fastsync(*pair.args())
    assert_same_tree(pair.src, pair.dst)


def test_a_signal_more_than_a_second_after_the_first_leaves_at_once(fastsync, pair):
    """Still stopping 1.5 s after a Ctrl-C, a second one leaves at once; the catalog is
    consistent, and the next run finishes with an exact copy."""
    code, err, ended = interrupt_twice(fastsync, pair, gap=1.6)
    assert ended and code == 130
    assert "fastsync: signalled again: leaving at once" in err
    assert "interrupted: copied" not in err            # no orderly summary
    run = last_run(pair)      # the catalog was busy: the row could not be marked
    assert run["status"] is None and run["finished"] is None
    last = pair.audit()[-1]
    assert (last["op"], last["status"], last["error"]) == (
        "run", "interrupted", "signalled again: left at once")
    catalog_tells_the_truth(pair)
    fastsync(*pair.args())
    assert_same_tree(pair.src, pair.dst)
    assert temporaries(pair.dst) == []


@pytest.fixture(scope="module")
def big_source(tmp_path_factory):
    """8,000 small files and a few large ones."""
    src = tmp_path_factory.mktemp("crash") / "src"
    rng = random.Random(7)
    for d in range(16):
        for f in range(500):
            write(src / f"d{d:02d}" / f"f{f:03d}", rng.randbytes(rng.randint(0, 2000)),
                  mtime_ns=1_600_000_000_000_000_000 + d * 1000 + f)
    for i in range(3):
        write(src / f"large{i}.bin", rng.randbytes(2 * MiB))
    return src


def _marker(phase, pair, err_lines):
    """Has the run reached `phase`? (start: at once; scan: it said so; copy: a file was
    copied; mirror: a deletion is in the audit log)."""
    if phase == "start":
        return True
    if phase == "scan":
        return any("scanning SRC and DST" in line for line in err_lines)
    if phase == "copy":
        return any("copied " in line for line in err_lines)
    return pair.log.exists() and '"op":"delete"' in pair.log.read_text("utf-8", "replace")


@pytest.mark.parametrize("phase, seed", [(p, s) for p in ("start", "scan", "copy", "mirror")
                                         for s in range(3)])
def test_kill_9_in_scan_copy_or_mirror_never_leaves_a_lie(fastsync, tmp_path, big_source,
                                                          phase, seed):
    """SIGKILL at a random moment of a phase of a run with --delete-extras (extras to
    delete in DST, files to copy), then a clean run: always an exact mirror, and a
    catalog whose synced rows are all true."""
    from ..conftest import Pair
    dst = tmp_path / "dst"
    pair = Pair(tmp_path, big_source, dst)
    for i in range(1000):
        write(dst / "extra" / f"x{i:04d}", b"to be deleted")
    proc = fastsync.start(*pair.args("-v", "--delete-extras", "--max-delete", "2000"))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(
        line.decode("utf-8", "replace") for line in proc.stderr), daemon=True)
    reader.start()
    wait_for(lambda: _marker(phase, pair, lines) or proc.poll() is not None, timeout=60)
    time.sleep(random.Random(seed).uniform(0.0, 0.3 if phase != "copy" else 2.0))
    proc.kill()
    proc.wait(timeout=20)
    if pair.db.exists():
        catalog_tells_the_truth(pair)
    fastsync(*pair.args("--delete-extras", "--max-delete", "2000", "--rescan"))
    assert_same_tree(pair.src, pair.dst)
    assert temporaries(pair.dst) == []
    assert catalog_tells_the_truth(pair) == 8_003


def mei_dirs(tmp) -> set[str]:
    return {name for name in os.listdir(tmp) if name.startswith("_MEI")}


def age(root, seconds: float = 3600) -> None:
    """Make a directory tree look untouched for `seconds`."""
    when = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (when, when), follow_symlinks=False)
    os.utime(root, (when, when))


@pytest.mark.binary
@pytest.mark.skipif(not os.environ.get("FASTSYNC_BIN"), reason="needs FASTSYNC_BIN")
def test_binary_removes_what_killed_runs_unpacked_and_nothing_in_use(tmp_path):
    """The one-file binary unpacks ~35 MB into $TMPDIR/_MEI<random>; a run killed with
    its bootloader leaves it behind. The next run removes such leftovers, but never its
    own, nor one that a live process maps, even when old."""
    from ..conftest import Pair
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    binary = os.environ["FASTSYNC_BIN"]

    def pair(name):
        p = Pair(tmp_path / name, tmp_path / name / "src", tmp_path / name / "dst")
        p.dst.mkdir(parents=True)
        return p
    fake = tmp / "_MEIfake01"               # laid out like a killed run's leftover
    write(fake / "fastsync" / "_core.so", b"\0" * 4096)
    write(fake / "libpython3.11.so.1.0", b"\0" * 4096)
    age(fake)
    slow, quick = pair("slow"), pair("quick")
    slow_tree(slow)
    write(quick.src / "f", b"x")

    a = subprocess.Popen([binary, *slow.args("--bwlimit", "1M", "--block-size", "256K")],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: writing_started(slow))
        assert not fake.exists()            # removed by the run's start
        (own,) = mei_dirs(tmp)              # the running binary's own copy
        age(tmp / own)                      # old, but in use
        b = subprocess.run([binary, "-v", *quick.args()], env=env, capture_output=True,
                           timeout=60)
        assert b.returncode == 0, b.stderr.decode()
        assert "left by killed runs" not in b.stderr.decode()
        assert mei_dirs(tmp) == {own} and a.poll() is None
        copies = children(a.pid)            # the bootloader's child: the copy itself
    finally:
        a.kill()                            # the bootloader; the copy dies with it
        a.wait(timeout=20)
    wait_for(lambda: all(maps_nothing(pid) for pid in copies))
    assert mei_dirs(tmp) == {own}           # left behind by the kill
    write(quick.src / "g", b"y")
    b = subprocess.run([binary, "-v", *quick.args()], env=env, capture_output=True,
                       timeout=60)
    assert b.returncode == 0, b.stderr.decode()
    assert "removed 1 unpacked copy of fastsync left by killed runs" in b.stderr.decode()
    assert mei_dirs(tmp) == set()


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def maps_nothing(pid: int) -> bool:
    """Has this process ended (a zombie maps nothing)?"""
    try:
        with open(f"/proc/{pid}/maps", "rb") as f:
            return f.read() == b""
    except OSError:
        return True
