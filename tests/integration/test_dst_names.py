"""What DST can hold, probed at startup (issue 9 items 5 and 13): names that fold to one
on a case-insensitive DST, names DST would store as another name, symlinks DST refuses.
An rclone mount is a real case-folding DST that refuses links with EIO."""

import os
import subprocess

import pytest

from fastsync import faults
from fastsync.cli import main
from fastsync.errors import EXIT_OK, EXIT_PARTIAL

from ..conftest import Pair, write

NS = 1_600_000_000_000_000_000


@pytest.fixture
def fat(pair):
    """DST on an rclone FUSE mount that folds case, as the testbed's SMB shares do (and
    answers symlink() with EIO, as they do too). .ci/run installs rclone and fuse3."""
    import shutil
    import time
    if os.geteuid() != 0 or shutil.which("rclone") is None or not os.path.exists("/dev/fuse"):
        pytest.skip("needs root, rclone and /dev/fuse (.ci/run installs rclone)")
    back, mnt = pair.root / "back", pair.root / "mnt"
    back.mkdir()
    mnt.mkdir()
    proc = subprocess.Popen(["rclone", "mount", str(back), str(mnt), "--vfs-case-insensitive",
                             "--vfs-cache-mode", "writes", "--config", "/dev/null"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not os.path.ismount(mnt):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.skip(f"rclone mount failed: {proc.stderr.read().decode()[-300:]}")
        time.sleep(0.1)
    yield Pair(pair.root, pair.src, mnt)
    subprocess.run(["fusermount", "-u", str(mnt)])
    proc.wait(30)


def _errors(pair):
    return {os.path.basename(r["src"]): r["error"] for r in pair.audit()
            if r["op"] == "scan" and r["status"] == "failed"}


def test_names_that_differ_only_in_case_are_neither_copied(fat, capsys):
    write(fat.src / "readme", b"lower case", mtime_ns=NS)
    write(fat.src / "README", b"UPPER CASE", mtime_ns=NS)
    write(fat.src / "Docs" / "a.txt", b"a", mtime_ns=NS)
    write(fat.src / "docs" / "b.txt", b"b", mtime_ns=NS)
    write(fat.src / "plain.txt", b"plain", mtime_ns=NS)
    for attempt in range(2):      # the same verdict every run, nothing copied over
        assert main(fat.args()) == EXIT_PARTIAL
        assert sorted(os.listdir(fat.dst)) == ["plain.txt"]
        errors = _errors(fat)
        for one, other in (("readme", "README"), ("Docs", "docs")):
            assert f"SRC also has {other!r} here" in errors[one]
            assert f"SRC also has {one!r} here" in errors[other]
            assert "neither is copied" in errors[one]
        rows = {os.path.basename(r["src_path"]) for r in fat.rows()}
        assert not rows & {"readme", "README", "Docs", "docs", "a.txt", "b.txt"}
        fat.log.unlink()
    assert "4 scan errors" in capsys.readouterr().err


def test_the_lock_name_in_another_case_at_the_root_of_src_is_not_copied(fat):
    """On a DST that folds case, SRC's `.FASTSYNC.LOCK` would land on DST's lock."""
    write(fat.src / ".FASTSYNC.LOCK", b"a user's file", mtime_ns=NS)
    write(fat.src / "plain.txt", b"plain", mtime_ns=NS)
    assert main(fat.args()) == EXIT_OK
    assert os.listdir(fat.dst) == ["plain.txt"]
    assert any(r["op"] == "special" and r["src"].endswith("/.FASTSYNC.LOCK")
               for r in fat.audit())


def test_a_name_that_folds_onto_an_older_dst_entry_is_not_deleted_after_the_copy(fat):
    """DST has `notes` from before; SRC has only `NOTES`. The copy lands in the same
    DST entry; --delete-extras must not then delete `notes` as an extra."""
    write(fat.dst / "notes", b"old", mtime_ns=NS)
    write(fat.src / "NOTES", b"new content", mtime_ns=NS + 10**9)
    code = main(fat.args("--delete-extras", "--max-delete", "1"))
    assert code == EXIT_OK
    # (rclone's case folding is in lookups only: its listing may still show `notes`)
    assert (fat.dst / "NOTES").read_bytes() == b"new content"
    assert not [r for r in fat.audit() if r["op"] == "delete"]   # nor said it deleted


def test_names_dst_would_store_as_other_names_fail_clearly(pair):
    """A share that maps `:` and `?` to look-alikes (what probe.py finds out; scan.py
    takes the finding as Traits): such names are scan errors, never recorded."""
    import threading
    from fastsync.audit import AuditLog
    from fastsync.catalog import Catalog
    from fastsync.probe import NOT_UTF8, Traits
    from fastsync.retry import Policy, Retrier, Root
    from fastsync.scan import scan
    write(pair.src / "a:b.txt", b"colon", mtime_ns=NS)
    write(pair.src / "why?" / "inside.txt", b"question", mtime_ns=NS)
    write(pair.src / "cafe\u0301.txt", b"decomposed", mtime_ns=NS)
    write(pair.src / "fine.txt", b"fine", mtime_ns=NS)
    write(os.path.join(os.fsencode(pair.src), b"caf\xe9.txt"), b"latin-1", mtime_ns=NS)
    src, dst = os.fsencode(pair.src), os.fsencode(pair.dst)
    cat = Catalog.open(str(pair.db), src, dst, "t")
    audit = AuditLog(str(pair.log))
    try:
        stop = threading.Event()
        roots = {"src": Root("SRC", src), "dst": Root("DST", dst, writable=True)}
        traits = Traits(changed=(":", "?", "e\u0301", NOT_UTF8))
        result = scan(cat, src, dst, 1, stop, lambda stats: None, audit,
                      Retrier(Policy(retries=0, delay=0), roots, stop), traits)
    finally:
        audit.close()
        cat.close()
    assert result.stats.errors == 4
    assert "DST does not keep names that are not valid UTF-8" in _errors(pair)["caf\udce9.txt"]
    errors = _errors(pair)
    assert "DST does not keep the character ':' in names" in errors["a:b.txt"]
    assert "DST does not keep the character '?' in names" in errors["why?"]
    assert "DST normalises Unicode names" in errors["cafe\u0301.txt"]
    assert "inside.txt" not in errors              # below it: not walked, one line
    rows = {os.path.basename(r["src_path"]) for r in pair.rows()}
    assert rows == {"src", "fine.txt"}


def test_symlinks_fail_at_once_where_dst_holds_none(fat, capsys):
    write(fat.src / "data.txt", b"data", mtime_ns=NS)
    for i in range(3):
        os.symlink("data.txt", fat.src / f"link{i}")
    assert main(fat.args("--retry-delay", "5")) == EXIT_PARTIAL
    assert os.listdir(fat.dst) == ["data.txt"]
    failed = [r for r in fat.audit() if r["op"] == "link" and r["status"] == "failed"]
    assert len(failed) == 3
    assert all("DST cannot hold symbolic links" in r["error"] for r in failed)
    assert not any(r.get("retry") for r in failed)    # not "later in this run"
    assert not [r for r in fat.audit() if r["op"] == "retry"]
    assert "failed 3" in capsys.readouterr().err


@pytest.fixture
def plan():
    yield faults.install
    faults.install(None)


def test_a_dst_that_answers_symlink_with_eio_fails_links_at_once(pair, plan, capsys):
    """The testbed's SMB share answers symlink() with EIO, a 'transient' errno: without
    the probe each link was retried with backoff and then again later in the run."""
    write(pair.src / "data.txt", b"data", mtime_ns=NS)
    os.symlink("data.txt", pair.src / "link")
    plan("symlink:EIO*")
    assert main(pair.args("--retry-delay", "30")) == EXIT_PARTIAL
    failed = [r for r in pair.audit() if r["op"] == "link" and r["status"] == "failed"]
    assert len(failed) == 1 and "EIO" in failed[0]["error"]
    assert "DST cannot hold symbolic links" in failed[0]["error"]
    rows = pair.rows("SELECT status, attempts FROM files WHERE kind = 'symlink'")
    assert [tuple(r) for r in rows] == [("pending", 1)]
