"""The command line as scripts meet it: a real process (python -m fastsync, and the
built dist/fastsync when FASTSYNC_BIN is set), exit codes, one-line errors, and nothing
written when the input is bad."""

import contextlib
import fcntl
import os
import sqlite3
import subprocess

import pytest

from fastsync import __version__

from ..conftest import assert_same_tree, make_tree, write

OPTIONS = ["--db", "--log", "--bwlimit", "--checksum", "--delete-extras", "--rescan",
           "--block-size", "--queue-capacity", "--quiet", "--verbose", "--help", "--version",
           "--progress", "--stats"]


def one_line_error(proc, *fragments):
    err = proc.stderr.decode()
    assert err.count("\n") == 1, err
    assert err.startswith("fastsync: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_version(fastsync):
    assert fastsync("--version").stdout.decode().strip() == f"fastsync {__version__}"


def test_help_lists_every_option_with_its_default(fastsync):
    text = fastsync("--help").stdout.decode()
    for option in OPTIONS:
        assert option in text
    for default in ("[default: fastsync.db]", "[default: 5M]", "[default: 20]",
                    "[default: sha256]", "[default: 0]", "powers of 1024", "Exit status"):
        assert default in text


def test_a_sync_through_the_real_process(fastsync, pair):
    make_tree(pair.src, seed=7, files=30)
    proc = fastsync(*pair.args())
    assert_same_tree(pair.src, pair.dst)
    err = proc.stderr.decode()
    assert "\x1b" not in err and "\r" not in err          # not a terminal: plain lines
    assert "scan done: 30 files" in err and "ok: copied 30 files" in err
    assert pair.db.exists() and pair.log.exists()


def test_quiet_run_is_silent(fastsync, pair):
    make_tree(pair.src, files=3)
    proc = fastsync(*pair.args("-q"))
    assert proc.stderr == b"" and proc.stdout == b""


BAD_VALUES = [
    (["--bwlimit", "fast"], "--bwlimit 'fast' is not a size"),
    (["--bwlimit", "10B"], "--bwlimit '10B' is 10 bytes/s"),
    (["--bwlimit", "20480"], "--bwlimit '20480' has no unit"),
    (["--block-size", "0"], "--block-size '0' is out of range"),
    (["--block-size", "5Q"], "--block-size '5Q' is not a size"),
    (["--queue-capacity", "-3"], "--queue-capacity '-3' is not a whole number"),
    (["--queue-capacity", "0"], "--queue-capacity 0 is out of range"),
    (["--checksum", "crc32"], "--checksum 'crc32' is not supported"),
    (["--retries", "-1"], "--retries '-1' must be a whole number from 0 to 100"),
    (["--retries", "1000"], "--retries '1000' must be a whole number"),
    (["--retry-delay", "soon"], "--retry-delay 'soon' must be a number of seconds"),
    (["--outage-timeout", "99999999"], "--outage-timeout '99999999' must be a number"),
    (["--no-such-option"], "unknown or repeated option --no-such-option"),
    (["--bwlimit"], "--bwlimit requires argument"),
]


@pytest.mark.parametrize("extra, message", BAD_VALUES, ids=[m for _, m in BAD_VALUES])
def test_bad_values_fail_before_anything_is_written(fastsync, pair, extra, message):
    write(pair.src / "f", b"x")
    proc = fastsync(*pair.args(), *extra, check=2)
    one_line_error(proc, message)
    assert not pair.db.exists() and not pair.log.exists() and os.listdir(pair.dst) == []


def test_missing_paths_on_the_command_line(fastsync, pair):
    one_line_error(fastsync(str(pair.src), check=2), "expected two paths, SRC and DST")
    one_line_error(fastsync(check=2), "expected two paths")


@pytest.mark.parametrize("case", ["src-missing", "src-file", "dst-missing", "same", "dst-in-src",
                                  "src-in-dst", "db-dir-missing", "log-dir-missing",
                                  "db-inside-dst", "db-is-dir", "src-empty", "dst-empty",
                                  "log-empty", "log-is-fifo"])
def test_bad_paths(fastsync, pair, case):
    write(pair.src / "f", b"x")
    src, dst, db, log = str(pair.src), str(pair.dst), str(pair.db), str(pair.log)
    message = {
        "src-missing": "does not exist",
        "src-file": "is not a directory",
        "dst-missing": "does not exist",
        "same": "SRC and DST are the same directory",
        "dst-in-src": "must not be inside one another",
        "src-in-dst": "must not be inside one another",
        "db-dir-missing": "catalog directory",
        "log-dir-missing": "log directory",
        "db-inside-dst": "must not be inside SRC or DST",
        "db-is-dir": "is a directory",
        "src-empty": "SRC is an empty string",
        "dst-empty": "DST is an empty string",
        "log-empty": "--log is an empty string",
        "log-is-fifo": "is not a regular file",
    }[case]
    if case == "src-missing":
        src = src + "-nope"
    elif case == "src-file":
        src = str(pair.src / "f")
    elif case == "dst-missing":
        dst = dst + "/not/there"
    elif case == "same":
        dst = src
    elif case == "dst-in-src":
        os.mkdir(pair.src / "inner")
        dst = str(pair.src / "inner")
    elif case == "src-in-dst":
        os.mkdir(pair.dst / "inner")
        src = str(pair.dst / "inner")
    elif case == "db-dir-missing":
        db = str(pair.root / "no" / "such" / "c.db")
    elif case == "log-dir-missing":
        log = str(pair.root / "no" / "such" / "a.log")
    elif case == "db-inside-dst":
        db = str(pair.dst / "c.db")
    elif case == "db-is-dir":
        db = str(pair.root)
    elif case == "src-empty":
        src = ""
    elif case == "dst-empty":
        dst = ""
    elif case == "log-empty":
        log = ""
    elif case == "log-is-fifo":
        log = str(pair.root / "fifo")
        os.mkfifo(log)
    proc = fastsync("--db", db, "--log", log, src, dst, check=2, timeout=30)
    one_line_error(proc, message)
    assert not pair.log.exists() and not pair.db.exists()
    assert log == "" or not os.path.isfile(log)
    assert not list(pair.dst.glob("**/f"))


@contextlib.contextmanager
def read_only(path):
    """Make `path` unwritable, even for root (who ignores permission bits): a read-only
    bind mount as root, plain permissions for anyone else."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [path, *path.iterdir()]}
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield path
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.fixture
def readonly_dst(pair):
    with read_only(pair.dst) as path:
        yield path


def test_unwritable_destination(fastsync, pair, readonly_dst):
    """Without permission: a usage error (2). A read-only filesystem (root, who ignores
    permissions, meets EROFS here) is a fatal stop like a full one (3), as documented."""
    write(pair.src / "f", b"x")
    if os.geteuid() == 0:
        one_line_error(fastsync(*pair.args(), check=3), "EROFS: Read-only file system")
    else:
        one_line_error(fastsync(*pair.args(), check=2), "is not writable")
    assert not pair.db.exists()


@pytest.mark.parametrize("abbreviation,full", [("--del", "--delete-extras"),
                                                ("--bw=20M", "--bwlimit"),
                                                ("--stream", "--streams")])
def test_options_are_never_abbreviated(fastsync, pair, abbreviation, full):
    """docopt would take `--del` for --delete-extras: a typo must not start a mirror."""
    write(pair.dst / "extra", b"only in DST")
    args = [abbreviation] if "=" in abbreviation or full == "--delete-extras" else [
        abbreviation, "2"]
    one_line_error(fastsync(*args, *pair.args(), check=2), f"unknown option "
                   f"{abbreviation.split('=')[0]}", full)
    assert (pair.dst / "extra").exists() and not pair.db.exists()


def test_quiet_still_says_that_files_failed(fastsync, pair):
    """-q keeps errors: a run with failures says so in one line (cron mails it)."""
    write(pair.src / "good", b"x")
    write(pair.src / "clash", b"a file where DST has a directory")
    (pair.dst / "clash").mkdir()
    write(pair.dst / "clash" / "inside", b"keeps it a directory")
    proc = fastsync("-q", *pair.args(), check=1)
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "1 files failed" in err and str(pair.log) in err, err


def test_catalog_that_is_not_sqlite(fastsync, pair):
    pair.db.write_text("name,size\nfoo,1\n")
    one_line_error(fastsync(*pair.args(), check=2), "not an SQLite file")
    assert pair.db.read_text() == "name,size\nfoo,1\n"
    assert not pair.log.exists()


def test_catalog_of_another_program(fastsync, pair):
    conn = sqlite3.connect(pair.db)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    one_line_error(fastsync(*pair.args(), check=2), "not a fastsync catalog")


def test_catalog_for_another_pair(fastsync, pair, tmp_path):
    write(pair.src / "f", b"x")
    fastsync(*pair.args())
    other = tmp_path / "other"
    other.mkdir()
    proc = fastsync("--db", str(pair.db), "--log", str(pair.log), str(pair.src), str(other),
                    check=2)
    one_line_error(proc, "belongs to SRC=", "use another --db")
    assert os.listdir(other) == []


def test_catalog_from_a_newer_fastsync(fastsync, pair):
    write(pair.src / "f", b"x")
    fastsync(*pair.args())
    conn = sqlite3.connect(pair.db)
    conn.execute("PRAGMA user_version = 7")
    conn.commit()
    conn.close()
    one_line_error(fastsync(*pair.args(), check=2), "schema v7", "newer fastsync")


def test_second_instance_on_the_same_catalog(fastsync, pair):
    write(pair.src / "f", b"x")
    fd = os.open(str(pair.db) + ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.pwrite(fd, b"4242\n", 0)
    try:
        one_line_error(fastsync(*pair.args(), check=4), "in use by another fastsync (pid 4242)")
    finally:
        os.close(fd)
    assert os.listdir(pair.dst) == []


def test_failed_files_give_exit_status_1(fastsync, pair):
    write(pair.src / "clash", b"x")
    os.makedirs(pair.dst / "clash" / "sub")
    proc = fastsync(*pair.args(), check=1)
    assert "failed: " in proc.stderr.decode() and "Traceback" not in proc.stderr.decode()


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory nobody can write to, holding one existing log."""
    path = tmp_path / "readonly"
    path.mkdir()
    (path / "old.log").write_text("")
    with read_only(path):
        yield path


@pytest.mark.parametrize("name", ["new.log", "old.log"])
def test_unwritable_log_path(fastsync, pair, readonly_dir, name):
    write(pair.src / "f", b"x")
    proc = fastsync("--db", str(pair.db), "--log", str(readonly_dir / name), str(pair.src),
                    str(pair.dst), check=2)
    one_line_error(proc, "log")
    assert not pair.db.exists() and os.listdir(pair.dst) == []


def test_corrupt_catalog(fastsync, pair):
    write(pair.src / "f", b"x")
    fastsync(*pair.args())
    data = bytearray(pair.db.read_bytes())
    data[100:4096] = os.urandom(3996)          # the header survives, the schema does not
    pair.db.write_bytes(bytes(data))
    for extra in (pair.db.with_name(pair.db.name + "-wal"), pair.db.with_name(pair.db.name + "-shm")):
        if extra.exists():
            extra.unlink()
    one_line_error(fastsync(*pair.args(), check=2), "catalog")


def test_filters_files_from_priorities_and_a_dry_run_through_the_real_process(
        fastsync, pair, tmp_path):
    """The binary carries wcmatch and the new modules: a rehearsal changes nothing, then
    the run copies what the filters and the list let through, urgent first."""
    for rel in ("proj/a.txt", "proj/a.tmp", "proj/.snapshot/old", "proj/urgent/u.txt",
                "other/b.txt"):
        write(pair.src / rel, rel.encode())
    (tmp_path / "wave").write_text("proj\n")
    args = pair.args("--exclude", "*.tmp", "--exclude", ".snapshot/", "--files-from",
                     str(tmp_path / "wave"), "--priority", "urgent/", "--streams", "1")
    dry = fastsync("-n", *args)
    assert "would copy 2 files" in dry.stderr.decode()
    assert os.listdir(pair.dst) == [] and not pair.db.exists()
    fastsync(*args)
    copied = [e["src"] for e in pair.audit() if e["op"] == "copy"]
    assert copied == [str(pair.src / "proj/urgent/u.txt"), str(pair.src / "proj/a.txt")]
    assert sorted(os.listdir(pair.dst / "proj")) == ["a.txt", "urgent"]
    assert not (pair.dst / "other").exists()
