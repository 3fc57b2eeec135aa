"""What --http costs a copy, and how fast /metrics answers with a big catalog.

1. The same mixed tree (2,000 files of 1-64 KiB and 8 of 256 MiB) copied into a fresh
   directory, caches dropped and the source read back first, interleaved rounds:
   without --http, and with --http and a client asking /api/status and /metrics every
   100 ms for the whole copy (its requests counted, so a silent client is caught).
2. /metrics and /api/status timed (median and max of 50 requests each) while a run's
   catalog holds 1,000,000 rows, and one /api/files page of failed rows.
"""

import json
import os
import re
import sqlite3
import statistics
import subprocess
import threading
import time
import urllib.request

from .conftest import (MiB, Fresh, drop_caches, fastsync_cmd, interleaved, make_tree,
                       report, run_timed, summarise, tree_size, warm)

ROUNDS = int(os.environ.get("FASTSYNC_BENCH_ROUNDS", "3"))
LARGE = int(os.environ.get("FASTSYNC_BENCH_HTTP_LARGE", "8"))    # files of 256 MiB


def _tree():
    return ([(f"small/d{i % 40}/f{i:04d}", 1024 + (i * 7919) % (63 * 1024))
             for i in range(2000)] + [(f"large/f{i}", 256 * MiB) for i in range(LARGE)])


class Poller(threading.Thread):
    """Reads /api/status and /metrics every 100 ms until told to stop."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.done, self.requests = url, threading.Event(), 0

    def run(self):
        while not self.done.wait(0.1):
            for path in ("api/status", "metrics"):
                try:
                    urllib.request.urlopen(self.url + path, timeout=5).read()
                    self.requests += 1
                except OSError:
                    pass


def _copy_with_http(src, dst, db) -> tuple[float, float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen([*fastsync_cmd(), "--db", str(db), "--log", str(db) + ".log",
                             "--http=127.0.0.1:0", str(src), str(dst)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    poller = None
    for line in proc.stderr:
        found = re.search(rb"dashboard and API at (http://\S+)", line)
        if found:
            poller = Poller(found.group(1).decode())
            poller.start()
            break
    proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    poller.done.set()
    poller.join()
    assert os.waitstatus_to_exitcode(status) == 0
    return wall, usage.ru_utime + usage.ru_stime, poller.requests


def test_http_costs_the_copy_nothing(tmp_path):
    src = tmp_path / "src"
    make_tree(src, _tree())
    files, total = tree_size(src)
    fresh, runs, polled = Fresh(tmp_path, "dst"), {"fastsync": [], "fastsync --http": []}, []
    for r, tool in interleaved(list(runs), ROUNDS):
        dst, db = fresh(), tmp_path / f"c-{r}-{len(polled)}-{tool[-4:]}.db"
        drop_caches()
        warm(src)
        if tool == "fastsync":
            runs[tool].append(run_timed([*fastsync_cmd(), "--db", str(db), "--log",
                                         str(db) + ".log", str(src), str(dst)]))
        else:
            wall, cpu, requests = _copy_with_http(src, dst, db)
            runs[tool].append((wall, cpu))
            polled.append(requests)
        assert tree_size(dst) == (files, total)
    for tool, figures in summarise(runs, files, total, "fastsync", "plain",
                                   first="MB/s").items():
        report("http overhead", tool, **figures)
    report("http overhead", "client", **{"requests per copy": statistics.median(polled)})
    assert min(polled) > 0


def _big_catalog(db, src, dst, rows=1_000_000):
    """A catalog as a 1M-file migration leaves it (synced rows, 1,000 failed ones), and
    SRC's real files pending again, never attempted: the next run resumes them without
    scanning, so the million rows stay while it copies."""
    subprocess.run([*fastsync_cmd(), "-q", "--db", str(db), "--log", str(db) + ".log",
                    str(src), str(dst)], check=True)
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO files (src_path, dst_path, kind, size, changed, modified, accessed,"
            " permissions, status, attempts, last_error) VALUES (?, ?, 'file', 1, 0, 0, 0,"
            " 420, ?, ?, ?)",
            ((f"{src}/x/f{i:07d}", f"{dst}/x/f{i:07d}",
              "pending" if i % 1000 == 0 else "synced", 1 if i % 1000 == 0 else 0,
              "EIO: Input/output error" if i % 1000 == 0 else None) for i in range(rows)))
        conn.execute("UPDATE files SET status = 'pending', attempts = 0"
                     " WHERE src_path LIKE ? AND kind = 'file' AND src_path NOT LIKE ?",
                     (f"{src}/big%", f"{src}/x/%"))
    conn.close()
    for name in os.listdir(dst):
        os.remove(dst / name)


def _time(url, path, n=50) -> tuple[float, float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        urllib.request.urlopen(url + path, timeout=10).read()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, max(times) * 1000


def test_metrics_answer_fast_with_a_million_rows(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src, [(f"big{i}", 64 * MiB) for i in range(4)])
    dst.mkdir()
    db = tmp_path / "c.db"
    _big_catalog(db, src, dst)
    proc = subprocess.Popen([*fastsync_cmd(), "--db", str(db), "--log", str(db) + ".log",
                             "--bwlimit", "8M", "--http=127.0.0.1:0", str(src), str(dst)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = None
        for line in proc.stderr:
            found = re.search(rb"dashboard and API at (http://\S+)", line)
            if found:
                url = found.group(1).decode()
                break
        while json.loads(urllib.request.urlopen(url + "api/status").read())["phase"] \
                != "copying":
            time.sleep(0.1)
        rows = sqlite3.connect(db).execute("SELECT count(*) FROM files").fetchone()[0]
        assert rows > 1_000_000
        for path in ("metrics", "api/status", "api/files?status=failed&limit=100"):
            median, worst = _time(url, path)
            report("http latency, 1M-row catalog", path, **{"median ms": median,
                                                             "max ms": worst})
    finally:
        proc.terminate()
        proc.wait(60)
