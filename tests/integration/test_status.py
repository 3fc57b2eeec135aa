"""`fastsync status`: what the catalog says, read-only, also while a run holds it."""

import json
import os
import sqlite3
import subprocess

from ..conftest import command, temporaries, wait_for, write
from .test_cli import one_line_error


def _status(pair, *extra, check=0):
    proc = subprocess.run([*command(), "status", "--db", str(pair.db), *extra],
                          capture_output=True, timeout=60)
    assert proc.returncode == check, proc.stderr.decode()
    return proc


def _with_a_failure(fastsync, pair):
    write(pair.src / "a.bin", os.urandom(50_000))
    write(pair.src / "sub" / "b.txt", b"b")
    write(pair.src / "clash", b"a file where DST has a directory")
    (pair.dst / "clash" / "inside").mkdir(parents=True)
    fastsync(*pair.args(), check=1)


def test_counts_failures_and_runs_as_text(fastsync, pair):
    _with_a_failure(fastsync, pair)
    out = _status(pair, "--failed").stdout.decode()
    assert f"catalog {pair.db}: {pair.src} -> {pair.dst}" in out
    assert "synced: 2 dirs, 2 files (48.8 KiB)" in out
    assert "pending: 1 files (32 B)" in out
    assert "failed at their last attempt: 1 (pending; --failed lists them)" in out
    assert (f"  {pair.src / 'clash'}: EISDIR: DST has a directory where SRC has a file; "
            f"--delete-extras would replace it (attempts 1)") in out
    assert " scan partial: copied 2 (48.8 KiB), failed 1, deleted 0, " in out
    assert "ETA " in out and "at the last run's rate" in out


def test_json_agrees_with_the_catalog(fastsync, pair):
    _with_a_failure(fastsync, pair)
    report = json.loads(_status(pair, "--json", "--failed").stdout)
    conn = sqlite3.connect(pair.db)
    synced_bytes = conn.execute("SELECT sum(size) FROM files WHERE status = 'synced'"
                                " AND kind = 'file'").fetchone()[0]
    conn.close()
    assert report["files"]["synced"]["file"] == {"count": 2, "bytes": synced_bytes}
    assert report["files"]["pending"]["file"]["count"] == 1
    assert report["failing"] == 1 and report["failed"][0]["attempts"] == 1
    assert report["failed"][0]["src"] == str(pair.src / "clash")
    run, = report["runs"]
    assert (run["status"], run["files_copied"], run["files_failed"]) == ("partial", 2, 1)
    assert report["pending_bytes"] == 32
    assert report["eta_seconds"] == 32 / run["bytes_per_second"]


def test_works_while_a_run_holds_the_catalog(pair):
    for i in range(3):
        write(pair.src / f"big{i}", os.urandom(1 << 20))
    proc = subprocess.Popen([*command(), *pair.args("--bwlimit", "1M", "--block-size",
                                                    "256K")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: temporaries(pair.dst) or proc.poll() is not None)
        report = json.loads(_status(pair, "--json").stdout)
        assert report["runs"][-1]["status"] == "running"
        assert report["files"]["pending"]["file"]["count"] >= 1
    finally:
        proc.terminate()
        proc.wait(60)


def test_a_missing_or_foreign_catalog_is_one_line_and_status_2(pair):
    one_line_error(_status(pair, check=2), "cannot be read: No such file or directory")
    pair.db.write_bytes(b"not a database")
    one_line_error(_status(pair, check=2), "is not a fastsync catalog")
    pair.db.unlink()
    sqlite3.connect(pair.db).execute("CREATE TABLE t (x)").connection.close()
    one_line_error(_status(pair, check=2), "is an SQLite database but not a fastsync catalog")
