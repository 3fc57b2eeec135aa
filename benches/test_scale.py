"""A tree of 1,000,000 files (1,000 directories x 1,000 files of 1-100 bytes).

1. Rescan: SRC and a DST that already holds every file (hard links, same mtimes), both
   scanned in parallel into a new catalog: entries per second over SRC+DST, peak RSS.
   Nothing is left to copy.
2. Scan into an empty DST, stopped (SIGINT) once copying has begun: leaves a backlog of
   about 1M pending rows.
3. Resume that backlog: seconds from start to the first byte in DST, peak RSS while
   copying for 15 s (then SIGINT).

FASTSYNC_BENCH_FILES changes the file count (default 1,000,000).
"""

import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from .conftest import fastsync_cmd, report

FILES = int(os.environ.get("FASTSYNC_BENCH_FILES", "1000000"))
PER_DIR = 1000
GROUP = f"scale {FILES:,} files"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    src = root / "src"
    data = b"x" * 100
    for d in range(0, FILES, PER_DIR):
        sub = src / f"d{d // PER_DIR:04d}"
        sub.mkdir(parents=True)
        for i in range(d, min(d + PER_DIR, FILES)):
            fd = os.open(sub / f"f{i:07d}", os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, data[:1 + i % 100])
            os.close(fd)
    subprocess.run(["sync"], check=True)
    yield root, src
    subprocess.run(["rm", "-rf", str(root)], check=False)


class Watched:
    """A fastsync process: peak RSS of it and its children (the one-file binary runs
    the program in a child), and when each stderr line appeared."""

    def __init__(self, argv):
        self.start = time.monotonic()
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        self.lines: list[tuple[float, str]] = []
        self.peak_kb = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._sample, daemon=True).start()

    def _read(self):
        for raw in self.proc.stderr:
            self.lines.append((time.monotonic() - self.start, raw.decode(errors="replace")))

    def _pids(self):
        pids = [self.proc.pid]
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return pids

    def _sample(self):
        while self.proc.poll() is None:
            for pid in self._pids():
                try:
                    with open(f"/proc/{pid}/status") as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                except OSError:
                    pass
            time.sleep(0.05)

    def seen(self, text):
        return next((t for t, line in self.lines if text in line), None)

    def wait_for(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value is not None:
                return value
            if self.proc.poll() is not None:
                break
            time.sleep(0.005)
        raise AssertionError(f"not seen within {timeout}s; stderr: {self.lines[-5:]}")

    def interrupt(self):
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=600)


def argv(work, src, dst, *extra):
    return [*fastsync_cmd(), "--db", str(work / "c.db"), "--log", str(work / "a.log"),
            *extra, str(src), str(dst)]


def first_entry(dst):
    with os.scandir(dst) as it:
        return time.monotonic() if next(it, None) is not None else None


def test_rescan_in_sync_tree(tree):
    root, src = tree
    dst, work = root / "dst-same", root / "work-same"
    work.mkdir()
    subprocess.run(["cp", "-al", str(src), str(dst)], check=True)
    subprocess.run(["sync"], check=True)
    run = Watched(argv(work, src, dst))
    assert run.proc.wait(timeout=1800) == 0
    took = time.monotonic() - run.start
    done = run.seen("scan done")
    assert done is not None and f"{FILES:,} already in sync" in "".join(l for _, l in run.lines)
    report(GROUP, "fastsync rescan SRC+DST", **{
        "entries/s": 2 * FILES / done, "scan s": done, "total s": took,
        "peak RSS MB": run.peak_kb / 1024})


def test_resume_backlog(tree):
    root, src = tree
    dst, work = root / "dst-empty", root / "work-empty"
    dst.mkdir()
    work.mkdir()
    first = Watched(argv(work, src, dst))
    first.wait_for(lambda: first.seen("scan done"), 1800)
    first.wait_for(lambda: first_entry(dst), 60)
    assert first.interrupt() == 130
    scan_s = first.seen("scan done")
    report(GROUP, "fastsync scan SRC, empty DST", **{
        "entries/s": FILES / scan_s, "scan s": scan_s, "peak RSS MB": first.peak_kb / 1024})

    first_dir = next(os.scandir(dst)).path

    def files_in_first_dir():
        return sum(1 for _ in os.scandir(first_dir))
    before = files_in_first_dir()
    resumed = Watched(argv(work, src, dst))
    # a temporary (or a file) more in DST's first directory: the first byte is on its way
    at = resumed.wait_for(
        lambda: time.monotonic() if files_in_first_dir() > before else None, 60)
    assert resumed.seen("resuming"), resumed.lines
    first_byte = at - resumed.start
    time.sleep(15)
    assert resumed.interrupt() == 130
    copied = sum(len(os.listdir(d.path)) for d in os.scandir(dst))
    assert copied > 0
    report(GROUP, "fastsync resume ~1M backlog", **{
        "first byte s": first_byte, "files/s": copied / (time.monotonic() - resumed.start),
        "peak RSS MB": resumed.peak_kb / 1024})


def first_pending_dir(db) -> str:
    """The DST directory of the file a resumed run copies first (by the index)."""
    conn = sqlite3.connect(db)
    try:
        (dst,), = conn.execute(
            "SELECT dst_path FROM files WHERE status = 'pending' AND kind != 'dir'"
            " ORDER BY priority, order_key, src_path LIMIT 1").fetchall()
    finally:
        conn.close()
    return os.path.dirname(dst)


def test_resume_backlog_with_priorities(tree):
    """The backlog test_resume_backlog left (about 1M pending rows), resumed with
    --priority and --order-by: the first run with them gives the matching pending rows
    their class and every one its order key (one pass); a later one, with the same
    options, reads them off the index. Timed to the first byte in DST, as above: an
    entry more in the directory of the file that goes first."""
    root, src = tree
    dst, work = root / "dst-empty", root / "work-empty"
    assert (work / "c.db").exists(), "runs after test_resume_backlog"
    urgent = dst / f"d{(FILES // PER_DIR) // 2:04d}"
    options = ("--priority", f"/{urgent.name}/", "--order-by", "size,asc")
    for label in ("priorities new: reorder pass", "priorities unchanged"):
        first_dir = str(urgent) if label.startswith("priorities new") else \
            first_pending_dir(work / "c.db")
        before = len(os.listdir(first_dir)) if os.path.isdir(first_dir) else 0
        run = Watched(argv(work, src, dst, *options))
        at = run.wait_for(lambda: time.monotonic() if os.path.isdir(first_dir) and
                          len(os.listdir(first_dir)) > before else None, 300)
        assert run.seen("resuming"), run.lines
        time.sleep(1)
        assert run.interrupt() == 130
        report(GROUP, f"fastsync resume ~1M backlog, --priority, {label}", **{
            "first byte s": at - run.start, "peak RSS MB": run.peak_kb / 1024})
