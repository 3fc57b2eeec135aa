"""The spec's behaviours end to end, on real trees, through the real command line
(in this process, so they are quick and measured by coverage)."""

import hashlib
import os
import threading
import time

import pytest

from fastsync.catalog import from_db
from fastsync.cli import main
from fastsync.transfer import temp_path
from fastsync.errors import EXIT_OK, EXIT_PARTIAL

from ..conftest import assert_same_tree, make_tree, snapshot, temporaries, write

NS = 1_500_000_000_123_456_789


def copies(pair, run=None):
    return [e for e in pair.audit() if e["op"] in ("copy", "link") and e["status"] == "ok"
            and (run is None or e["run"] == run)]


def test_full_sync_copies_every_byte_and_mtime(pair):
    make_tree(pair.src, seed=3, files=60)
    assert main(pair.args()) == EXIT_OK
    assert_same_tree(pair.src, pair.dst)
    rows = pair.rows("SELECT * FROM files WHERE kind = 'file'")
    assert len(rows) == 60 and {r["status"] for r in rows} == {"synced"}
    assert temporaries(pair.dst) == []


def test_every_file_gets_one_audit_line_with_its_hash(pair):
    made = make_tree(pair.src, seed=4, files=25)
    main(pair.args())
    lines = copies(pair)
    assert len(lines) == 25
    for line in lines:
        rel = line["src"][len(str(pair.src)) + 1:]
        assert line["dst"] == str(pair.dst / rel)
        assert line["hash"] == "sha256:" + hashlib.sha256(made[rel]).hexdigest()
        assert line["ts"].endswith("Z") and line["size"] == len(made[rel])


@pytest.mark.parametrize("algo", ["md5", "sha1", "sha256", "blake2b"])
def test_each_checksum_matches_hashlib(pair, algo):
    blobs = {"empty": b"", "small": b"abc", "multi": os.urandom(3 * 65536 + 17)}
    for name, data in blobs.items():
        write(pair.src / name, data)
    assert main(pair.args("--checksum", algo, "--block-size", "64K")) == EXIT_OK
    for row in pair.rows():
        if row["kind"] != "file":
            continue
        data = blobs[os.path.basename(from_db(row["src_path"])).decode()]
        assert row["hash"] == hashlib.new(algo, data).hexdigest()
        assert row["hash_algo"] == algo
    assert {line["hash"].split(":")[0] for line in copies(pair)} == {algo}


def test_timestamps_survive_to_the_nanosecond(pair):
    write(pair.src / "f", b"x" * 10)
    os.utime(pair.src / "f", ns=(NS + 111, NS + 222))
    os.makedirs(pair.src / "d" / "e")
    write(pair.src / "d" / "e" / "g", b"y")
    os.utime(pair.src / "d" / "e" / "g", ns=(NS + 1, NS + 2))
    os.utime(pair.src / "d" / "e", ns=(NS + 3, NS + 4))
    os.utime(pair.src / "d", ns=(NS + 5, NS + 6))
    main(pair.args())
    st = os.stat(pair.dst / "f")
    assert (st.st_atime_ns, st.st_mtime_ns) == (NS + 111, NS + 222)
    assert os.stat(pair.dst / "d" / "e" / "g").st_mtime_ns == NS + 2
    # directories get their times after their content was written into them
    assert os.stat(pair.dst / "d" / "e").st_mtime_ns == NS + 4
    assert os.stat(pair.dst / "d").st_mtime_ns == NS + 6


def test_the_catalog_records_source_metadata(pair):
    write(pair.src / "f", b"12345", mtime_ns=NS)
    os.chmod(pair.src / "f", 0o640)
    main(pair.args())
    row = pair.rows("SELECT * FROM files WHERE kind = 'file'")[0]
    st = os.stat(pair.src / "f")
    assert (row["size"], row["modified"], row["changed"], row["permissions"]) == (
        5, NS, st.st_ctime_ns, 0o640)
    assert row["dst_path"] == str(pair.dst / "f")
    assert row["created"] is None or row["created"] > 0
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(pair.dst / "f").st_mode & 0o777 == 0o666 & ~umask   # recorded, not applied


def test_unchanged_files_are_skipped_on_the_next_run(pair):
    make_tree(pair.src, seed=5, files=20)
    main(pair.args())
    before = snapshot(pair.dst)
    inode = os.stat(pair.dst / next(iter(pair.src.rglob("*.bin"))).relative_to(pair.src)).st_ino
    assert main(pair.args()) == EXIT_OK
    assert copies(pair, run=2) == []
    assert snapshot(pair.dst) == before
    rel = next(iter(pair.src.rglob("*.bin"))).relative_to(pair.src)
    assert os.stat(pair.dst / rel).st_ino == inode


def test_skip_rule_is_size_and_mtime(pair):
    """The spec's rule: same size and mtime means in sync, even if the bytes differ."""
    write(pair.src / "same", b"AAAA", mtime_ns=NS)
    write(pair.dst / "same", b"BBBB", mtime_ns=NS)
    write(pair.src / "newer", b"AAAA", mtime_ns=NS + 1)
    write(pair.dst / "newer", b"BBBB", mtime_ns=NS)
    main(pair.args())
    assert (pair.dst / "same").read_bytes() == b"BBBB"
    assert (pair.dst / "newer").read_bytes() == b"AAAA"


def test_changed_files_are_overwritten_whole_shorter_or_longer(pair):
    write(pair.src / "shrinks", os.urandom(200_000), mtime_ns=NS)
    write(pair.src / "grows", b"small", mtime_ns=NS)
    main(pair.args())
    write(pair.src / "shrinks", b"now tiny", mtime_ns=NS + 10)
    write(pair.src / "grows", os.urandom(300_000), mtime_ns=NS + 10)
    assert main(pair.args()) == EXIT_OK
    assert_same_tree(pair.src, pair.dst)
    assert os.path.getsize(pair.dst / "shrinks") == 8


def test_rescan_keeps_hashes_of_unchanged_files(pair):
    write(pair.src / "keep", b"keep me", mtime_ns=NS)
    write(pair.src / "edit", b"version 1", mtime_ns=NS)
    main(pair.args())
    hashes = {os.path.basename(from_db(r["src_path"])): r["hash"] for r in pair.rows()}
    write(pair.src / "edit", b"version 2", mtime_ns=NS + 5)
    main(pair.args("--rescan"))
    after = {os.path.basename(from_db(r["src_path"])): r for r in pair.rows()}
    assert after[b"keep"]["hash"] == hashes[b"keep"]
    assert after[b"edit"]["hash"] == hashlib.sha256(b"version 2").hexdigest()
    assert (pair.dst / "edit").read_bytes() == b"version 2"


def test_rescan_keeps_the_hash_when_only_the_destination_changed(pair):
    write(pair.src / "f", b"content", mtime_ns=NS)
    main(pair.args())
    stored = pair.rows("SELECT hash FROM files WHERE kind = 'file'")[0][0]
    os.utime(pair.dst / "f", ns=(NS, NS + 99))          # someone touched the copy
    assert main(pair.args()) == EXIT_OK                  # backlog empty -> rescan -> recopy
    row = pair.rows("SELECT * FROM files WHERE kind = 'file'")[0]
    assert row["hash"] == stored and row["status"] == "synced"
    assert os.stat(pair.dst / "f").st_mtime_ns == NS


def test_an_empty_backlog_rescans_and_finds_new_files(pair, capsys):
    write(pair.src / "one", b"1")
    main(pair.args())
    write(pair.src / "two", b"2")
    main(pair.args())
    assert "backlog empty: looking for new and changed files" in capsys.readouterr().err
    assert (pair.dst / "two").read_bytes() == b"2"


def make_backlog(pair, *names):
    """A catalog with pending rows, as an interrupted run leaves it."""
    for n in names:
        write(pair.src / n, n.encode())
    main(pair.args())
    import sqlite3
    conn = sqlite3.connect(pair.db)
    conn.execute("UPDATE files SET status = 'pending' WHERE kind = 'file'")
    conn.commit()
    conn.close()
    for n in names:
        os.unlink(pair.dst / n)


def test_a_pending_backlog_resumes_without_scanning(pair, capsys):
    make_backlog(pair, "a", "b")
    write(pair.src / "new", b"new")          # a scan would find this; a resume does not
    capsys.readouterr()
    assert main(pair.args()) == EXIT_OK
    err = capsys.readouterr().err
    assert "resuming the backlog from an earlier run: 2 files" in err
    assert "scanning SRC" not in err and "scan done" not in err
    assert (pair.dst / "a").read_bytes() == b"a" and not (pair.dst / "new").exists()
    main(pair.args())                        # backlog empty now: this one scans
    assert (pair.dst / "new").read_bytes() == b"new"


def test_rescan_option_forces_a_scan(pair, capsys):
    make_backlog(pair, "a")
    write(pair.src / "new", b"new")
    main(pair.args("--rescan"))
    assert "scanning SRC and DST (--rescan)" in capsys.readouterr().err
    assert_same_tree(pair.src, pair.dst)


def test_a_failed_file_is_recorded_and_does_not_block_the_rescan(pair, capsys):
    write(pair.src / "good", b"fine")
    write(pair.src / "clash", b"a file in SRC")
    os.makedirs(pair.dst / "clash" / "inside")      # a directory where the file belongs
    assert main(pair.args()) == EXIT_PARTIAL
    assert (pair.dst / "good").read_bytes() == b"fine"
    row = pair.rows("SELECT * FROM files WHERE src_path LIKE '%clash'")[0]
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "EISDIR" in row["last_error"] or "directory" in row["last_error"]
    failed = [e for e in pair.audit() if e["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["src"].endswith("clash") and failed[0]["error"]
    assert "failed: " in capsys.readouterr().err
    # the next run scans (new files are found) and retries the failed file once
    write(pair.src / "later", b"later")
    assert main(pair.args()) == EXIT_PARTIAL
    assert (pair.dst / "later").read_bytes() == b"later"
    assert pair.rows("SELECT attempts FROM files WHERE src_path LIKE '%clash'")[0][0] == 2
    assert temporaries(pair.dst) == []


def test_directory_tree_is_recreated_including_empty_directories(pair):
    os.makedirs(pair.src / "a" / "b" / "c")
    os.makedirs(pair.src / "empty")
    write(pair.src / "a" / "file", b"x")
    main(pair.args())
    assert_same_tree(pair.src, pair.dst)
    assert (pair.dst / "a" / "b" / "c").is_dir() and (pair.dst / "empty").is_dir()


def test_symlinks_are_recreated_not_followed(pair, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    write(outside / "secret", b"must not be copied")
    os.symlink(outside, pair.src / "dirlink")
    os.symlink("missing-target", pair.src / "dangling")
    os.symlink(b"\xffraw", os.fsencode(pair.src / "rawlink"))
    assert main(pair.args()) == EXIT_OK
    assert os.readlink(pair.dst / "dirlink") == str(outside)
    assert os.readlink(pair.dst / "dangling") == "missing-target"
    assert os.readlink(os.fsencode(pair.dst / "rawlink")) == b"\xffraw"
    assert not (pair.dst / "secret").exists()
    assert_same_tree(pair.src, pair.dst)


def test_special_files_are_reported_not_copied(pair, capsys):
    os.mkfifo(pair.src / "pipe")
    write(pair.src / "file", b"x")
    assert main(pair.args()) == EXIT_OK
    assert not (pair.dst / "pipe").exists()
    special = [e for e in pair.audit() if e["op"] == "special"]
    assert len(special) == 1 and special[0]["src"].endswith("pipe")
    assert special[0]["status"] == "skipped" and "fifo" in special[0]["error"]
    assert "1 entries not copied (fifos" in capsys.readouterr().err


ODD_NAMES = [b"with space", b"new\nline", b"-leading-dash", b"\xff\xfenot-utf8",
             "ünïcödé-名前".encode(), b"back\\slash", b"star*?", b"x" * 255, b".hidden",
             b"tab\tname", b"quote'\""]


def test_odd_file_names_round_trip(pair):
    for i, name in enumerate(ODD_NAMES):
        write(os.path.join(os.fsencode(pair.src), b"dir\xe9", name), name)
    assert main(pair.args()) == EXIT_OK
    assert_same_tree(pair.src, pair.dst)
    stored = {from_db(r["src_path"]) for r in pair.rows()}
    for name in ODD_NAMES:
        assert os.path.join(os.fsencode(pair.src), b"dir\xe9", name) in stored
    # the audit log stays valid JSON and keeps the raw bytes
    srcs = {os.fsencode(e["src"]) for e in copies(pair)}
    assert os.path.join(os.fsencode(pair.src), b"dir\xe9", b"\xff\xfenot-utf8") in srcs


def test_mirror_deletes_extras_only_when_asked(pair):
    write(pair.src / "keep", b"k")
    write(pair.dst / "extra-file", b"e")
    write(pair.dst / "old" / "deep" / "junk", b"j")
    os.symlink("nowhere", pair.dst / "extra-link")
    main(pair.args())
    assert (pair.dst / "extra-file").exists() and (pair.dst / "old" / "deep" / "junk").exists()
    assert not [e for e in pair.audit() if e["op"] == "delete"]
    assert main(pair.args("--delete-extras", "--max-delete", "5", "--rescan")) == EXIT_OK
    assert_same_tree(pair.src, pair.dst)
    deleted = sorted(e["dst"] for e in pair.audit() if e["op"] == "delete" and e["status"] == "ok")
    assert deleted == sorted(str(pair.dst / p) for p in
                             ("extra-file", "extra-link", "old", "old/deep", "old/deep/junk"))
    assert pair.rows("SELECT files_deleted FROM runs WHERE id = 2")[0][0] == 5


def test_bandwidth_limit_paces_the_copy(pair):
    data = os.urandom(3 * 1024 * 1024)
    write(pair.src / "f", data)
    started = time.monotonic()
    assert main(pair.args("--bwlimit", "1M", "--block-size", "1M")) == EXIT_OK
    elapsed = time.monotonic() - started
    # 3 MiB at 1 MiB/s from an empty bucket cannot take less than ~3 s (a lower bound:
    # a slow machine only makes it longer)
    assert elapsed >= 2.9
    assert (pair.dst / "f").read_bytes() == data


def run_sampling(pair, args, sample):
    """Run fastsync in this process while another thread calls sample() every ~10 ms;
    return the exit status and what sample() returned each time."""
    seen, done = [], threading.Event()

    def watch():
        while not done.is_set():
            seen.append(sample())
            time.sleep(0.01)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        return main(pair.args(*args)), seen
    finally:
        done.set()
        watcher.join()


@pytest.mark.parametrize("streams", [1, 3])
def test_streams_is_how_many_files_are_in_flight_at_once(pair, streams):
    """Under a cap, every file takes a while; --streams N has N files being written in
    DST at the same time (a share's client carries only so much per open file), never
    more. (Complete temporaries may wait a moment more for their batch's commit.)"""
    size = 1024 * 1024
    for i in range(3):
        write(pair.src / f"f{i}", os.urandom(size))
    def growing():
        n = 0
        for path in temporaries(pair.dst):
            try:
                n += os.stat(path).st_size < size
            except FileNotFoundError:
                pass        # renamed into place meanwhile
        return n

    status, seen = run_sampling(pair, ("--streams", str(streams), "--bwlimit", "1M",
                                       "--block-size", "128K"), growing)
    assert status == EXIT_OK
    assert max(seen) == streams
    assert_same_tree(pair.src, pair.dst)
    assert [r["status"] for r in pair.rows("SELECT status FROM files WHERE kind = 'file'")
            ] == ["synced"] * 3


def test_large_files_on_a_local_disk_are_written_around_the_page_cache(pair):
    """O_DIRECT for files of two blocks or more (with a short last block written
    buffered); small files and paced runs stay buffered. Bytes are exact either way."""
    block = 64 * 1024
    blobs = {"big": os.urandom(400 * block + 12345), "aligned": os.urandom(3 * block),
             "small": os.urandom(block + 7)}
    for name, data in blobs.items():
        write(pair.src / name, data)
    def open_direct():      # temporaries open with O_DIRECT in this process
        names = set()
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
                with open(f"/proc/self/fdinfo/{fd}") as f:
                    flags = int(f.read().split("flags:")[1].split()[0], 8)
            except (OSError, IndexError):
                continue
            if ".fastsync-" in target and flags & os.O_DIRECT:
                names.add(os.path.basename(target))
        return names

    status, seen = run_sampling(pair, ("--block-size", "64K", "--streams", "1"), open_direct)
    assert status == EXIT_OK
    direct = set().union(*seen)
    for name, data in blobs.items():
        assert (pair.dst / name).read_bytes() == data

    def temp(name):
        return os.path.basename(temp_path(os.fsencode(pair.dst / name))).decode()
    assert temp("big") in direct and temp("small") not in direct
    assert_same_tree(pair.src, pair.dst)


def test_quiet_prints_nothing(pair, capsys):
    make_tree(pair.src, files=5)
    assert main(pair.args("-q")) == EXIT_OK
    assert capsys.readouterr().err == ""


def test_verbose_names_each_file(pair, capsys):
    write(pair.src / "alpha", b"a")
    main(pair.args("-v"))
    assert "copied " + str(pair.src / "alpha") in capsys.readouterr().err


def test_stale_temporaries_of_a_killed_run_are_removed(pair, capsys):
    write(pair.src / "f", b"data")
    write(pair.dst / ".fastsync-0123456789abcdef.tmp", b"half a file")
    write(pair.dst / ".fastsync-fedcba9876543210.tmp", b"also in SRC: not ours to remove")
    write(pair.src / ".fastsync-fedcba9876543210.tmp", b"x")
    main(pair.args())
    assert "1 stale temporaries of killed runs removed" in capsys.readouterr().err
    assert not (pair.dst / ".fastsync-0123456789abcdef.tmp").exists()
    assert (pair.dst / ".fastsync-fedcba9876543210.tmp").read_bytes().startswith(b"also")


def test_source_names_reserved_for_temporaries_are_reported_not_copied(pair):
    """A killed run's leftover inside SRC (SRC was once a destination) must not become
    the temporary of its sibling: that sibling's copy would be corrupted."""
    from fastsync.transfer import temp_path
    write(pair.src / "d" / "report.txt", b"REAL REPORT CONTENT")
    leftover = os.path.basename(temp_path(b"/d/report.txt")).decode()
    write(pair.src / "d" / leftover, b"a partial copy left by a killed run")
    assert main(pair.args()) == EXIT_OK
    assert (pair.dst / "d" / "report.txt").read_bytes() == b"REAL REPORT CONTENT"
    assert not (pair.dst / "d" / leftover).exists()
    skipped = [e for e in pair.audit() if e["op"] == "special"]
    assert [e["src"] for e in skipped] == [str(pair.src / "d" / leftover)]
    assert "reserved" in skipped[0]["error"]


@pytest.fixture
def mounted_inside_dst(pair):
    """A tmpfs mounted at DST/other: another filesystem inside the destination."""
    import subprocess
    (pair.dst / "other").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(pair.dst / "other")],
                   check=True)
    yield pair.dst / "other"
    subprocess.run(["umount", str(pair.dst / "other")], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a filesystem needs root")
def test_a_filesystem_mounted_inside_dst_is_flushed_file_by_file(pair, mounted_inside_dst):
    os.makedirs(pair.src / "other" / "deeper")
    write(pair.src / "other" / "deeper" / "f", os.urandom(100_000), mtime_ns=NS)
    write(pair.src / "here", b"on the root filesystem", mtime_ns=NS)
    assert main(pair.args()) == EXIT_OK
    assert_same_tree(pair.src, pair.dst)
    assert os.stat(pair.dst / "other" / "deeper" / "f").st_dev != os.stat(pair.dst).st_dev
