"""fastsync -n: it tells what a run would do, and changes nothing: not DST (not even a
lock, a probe or a time), not the catalog (a resumable backlog stays resumable), not the
audit log."""

import hashlib
import json
import os
import sqlite3

import pytest

from fastsync.cli import main
from fastsync.errors import EXIT_OK, EXIT_PARTIAL

from ..conftest import snapshot, write


def state(pair) -> tuple:
    """Everything a dry run must leave as it was: DST's entries with their kinds,
    contents and mtimes (the root's too), and the bytes of the catalog and its log."""
    def digest(path):
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
    files = sorted(p.name for p in pair.root.iterdir())
    return (snapshot(pair.dst), os.stat(pair.dst).st_mtime_ns, digest(pair.db),
            digest(pair.log), files)


def tree(pair):
    write(pair.src / "a/one", b"1" * 100)
    write(pair.src / "a/two", b"2" * 2000)
    write(pair.src / "b/three", b"3")
    os.symlink("a/one", pair.src / "link")


def test_a_first_dry_run_tells_and_creates_nothing(pair, capsys):
    tree(pair)
    before = state(pair)
    assert main(pair.args("-n")) == EXIT_OK
    assert state(pair) == before
    assert not pair.db.exists() and not pair.log.exists()
    err = capsys.readouterr().err
    assert "would copy 4 files (2.1 KiB)" in err
    for rel in ("a/one", "a/two", "b/three", "link"):
        assert f" {rel}\n" in err
    assert "would create 2 directories" in err
    assert "a real run would copy 4 files (2.1 KiB), create 2 directories" in err
    assert "nothing was changed" in err
    # and the real run does what it said
    assert main(pair.args()) == EXIT_OK
    assert snapshot(pair.dst) == snapshot(pair.src)


def test_a_dry_run_leaves_a_resumable_backlog_resumable(pair, capsys):
    tree(pair)
    assert main(pair.args()) == EXIT_OK
    conn = sqlite3.connect(pair.db)
    conn.execute("UPDATE files SET status = 'pending' WHERE src_path LIKE '%/a/%'")
    conn.commit()
    conn.close()
    write(pair.src / "new", b"new")                 # a scan would find it
    before = state(pair)
    capsys.readouterr()
    assert main(pair.args("--dry-run")) == EXIT_OK
    err = capsys.readouterr().err
    assert "a real run would resume the backlog (2 files pending; no scan)" in err
    assert " a/one\n" in err and " new\n" not in err
    assert state(pair) == before
    assert main(pair.args()) == EXIT_OK
    assert "resuming the backlog from an earlier run: 2 files" in capsys.readouterr().err


def test_a_dry_run_after_a_change_lists_new_and_changed_files(pair, capsys):
    tree(pair)
    assert main(pair.args()) == EXIT_OK
    write(pair.src / "a/two", b"changed")
    write(pair.src / "c/new", b"n")
    before = state(pair)
    capsys.readouterr()
    assert main(pair.args("-n")) == EXIT_OK
    err = capsys.readouterr().err
    assert "would copy 2 files" in err
    assert "changed" in next(line for line in err.splitlines() if line.endswith(" a/two"))
    assert "new" in next(line for line in err.splitlines() if line.endswith(" c/new"))
    assert "would create 1 directory:" in err and " c\n" in err
    assert state(pair) == before


def test_a_dry_run_leaves_stale_temporaries_and_probes_of_killed_runs(pair):
    tree(pair)
    write(pair.dst / ".fastsync-0123456789abcdef.tmp", b"partial")
    os.mkdir(pair.dst / f".fastsync-probe-{os.getpid() + 100000}.tmp")
    before = state(pair)
    assert main(pair.args("-n")) == EXIT_OK
    assert state(pair) == before


def test_a_dry_run_shows_deletions_kind_changes_and_specials(pair, capsys):
    tree(pair)
    assert main(pair.args()) == EXIT_OK
    for i in range(3):
        write(pair.dst / f"old/extra{i}", b"e")
    os.unlink(pair.src / "b/three")
    os.mkdir(pair.src / "b/three")                   # a file at DST where SRC has a dir
    os.mkfifo(pair.src / "fifo")
    before = state(pair)
    capsys.readouterr()
    assert main(pair.args("-n", "--delete-extras", "--max-delete", "2")) == EXIT_OK
    err = capsys.readouterr().err
    assert state(pair) == before
    assert "would fail: DST has a file where SRC has a dir; --delete-extras would " \
           "replace it" not in err      # with --delete-extras it is replaced instead
    assert "replace (file at DST by a dir, deleting 1 entry) b/three" in err
    # the replacement deletes 1 entry of the 2 --max-delete allows; the mirror the other
    assert "delete 1 entry with --delete-extras" in err
    assert "keep 3 more over --max-delete" in err
    assert "1 not copied" in err
    # without --delete-extras the kind change is a failure a real run would report
    assert main(pair.args("-n")) == EXIT_OK
    err = capsys.readouterr().err
    assert "would fail: DST has a file where SRC has a dir" in err and " b/three" in err
    assert main(pair.args()) == EXIT_PARTIAL              # and a real run does fail it


def test_a_dry_run_shows_the_guards_numbers(pair, capsys):
    tree(pair)
    assert main(pair.args()) == EXIT_OK
    for i in range(9):
        write(pair.dst / f"extra{i}", b"e")
    capsys.readouterr()
    assert main(pair.args("-n", "--delete-extras")) == EXIT_OK
    err = capsys.readouterr().err
    assert "a real run would refuse: --delete-extras would delete 9 of 15 entries" in err
    assert len(os.listdir(pair.dst)) == 12


def test_dry_run_json_lists_every_entry(pair, capsys):
    for i in range(25):
        write(pair.src / f"f{i:02d}", b"x" * i)
    assert main(pair.args("-n", "--progress", "json")) == EXIT_OK
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    copies = [o for o in out if o["phase"] == "dry-run" and o["action"] == "copy"]
    assert [o["path"] for o in copies] == [f"f{i:02d}" for i in range(25)]
    assert [o["bytes"] for o in copies] == list(range(25))
    done = [o for o in out if o["phase"] == "done"][-1]
    assert done["status"] == "dry-run" and done["files_to_copy"] == 25
    assert done["bytes_to_copy"] == sum(range(25))


@pytest.mark.parametrize("verbose", [False, True])
def test_the_console_lists_the_first_ten_or_all_with_v(pair, capsys, verbose):
    for i in range(25):
        write(pair.src / f"f{i:02d}", b"x")
    assert main(pair.args("-n", *(["-v"] if verbose else []))) == EXIT_OK
    err = capsys.readouterr().err
    listed = [line for line in err.splitlines() if line.startswith("  ")
              and line.split()[-1].startswith("f")]
    assert len(listed) == (25 if verbose else 10)
    assert ("-v lists them all" in err) != verbose


def test_a_dry_run_honours_filters_and_files_from(pair, tmp_path, capsys):
    tree(pair)
    write(pair.src / "skip.tmp", b"t")
    (tmp_path / "w").write_text("a\nskip.tmp\n")
    assert main(pair.args("-n", "--exclude", "*.tmp", "--files-from",
                          str(tmp_path / "w"))) == EXIT_OK
    err = capsys.readouterr().err
    assert "would copy 2 files" in err and " a/one\n" in err and " a/two\n" in err
    assert "b/three" not in err and "skip.tmp" not in err.replace("--exclude", "")


def test_dry_run_json_lists_what_would_not_be_copied_or_would_fail(pair, capsys):
    write(pair.src / "ok", b"x")
    os.mkfifo(pair.src / "fifo")
    write(pair.src / ".fastsync-0123456789abcdef.tmp", b"reserved name")
    assert main(pair.args("-n", "--progress", "json")) == EXIT_OK
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    skipped = {o["path"]: o["error"] for o in out if o.get("action") == "skip"}
    assert skipped == {"fifo": "fifo: not copied",
                       ".fastsync-0123456789abcdef.tmp":
                       "name reserved for fastsync's temporary files: not copied"}
    assert [o["path"] for o in out if o.get("action") == "copy"] == ["ok"]


def test_a_dry_run_after_a_killed_run_writes_no_file_beside_the_catalog(pair):
    """A run killed with SIGKILL leaves the catalog with its -wal and -shm: the dry run
    reads them as they are (no checkpoint into the catalog, nothing removed), and the
    catalog's directory keeps its mtime (nothing created and removed in it)."""
    import signal
    import subprocess
    import sys
    import time
    for i in range(20):
        write(pair.src / f"f{i:02d}", os.urandom(20_000))
    proc = subprocess.Popen([sys.executable, "-m", "fastsync", *pair.args(
        "--bwlimit", "20K")], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not any(e["op"] == "copy" for e in pair.audit()) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    companions = [pair.root / f"catalog.db{s}" for s in ("", "-wal", "-shm")]
    assert all(p.exists() for p in companions)

    def files():
        return ([hashlib.sha256(p.read_bytes()).hexdigest() for p in companions],
                sorted(os.listdir(pair.root)), os.stat(pair.root).st_mtime_ns,
                snapshot(pair.dst))
    before = files()
    assert main(pair.args("-n")) == EXIT_OK
    assert files() == before
    assert main(pair.args()) == EXIT_OK                  # the real run still resumes
    assert snapshot(pair.dst) == snapshot(pair.src)
