"""Every failure branch, driven by the deterministic fault plan (faults.py) through the
real command line, on real trees: what is retried, what fails, what stops the run, and
that the catalog and the destination tell the truth afterwards."""

import errno
import os
import threading

import pytest

from fastsync import faults
from fastsync.cli import main
from fastsync.config import Config
from fastsync.errors import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL
from fastsync.progress import Console
from fastsync.run import StopRequest, run

from ..conftest import assert_same_tree, temporaries, wait_for, write

FAST = ("-v", "--retry-delay", "0", "--block-size", "64K")
PROBING = ("-v", "--retry-delay", "0.05", "--block-size", "64K")   # outage probes


@pytest.fixture
def plan():
    """Install a fault plan for one test; always removed afterwards."""
    def install(text):
        faults.install(text)
    yield install
    faults.install(None)


@pytest.fixture
def tree(pair):
    write(pair.src / "a.txt", b"alpha" * 1000)
    write(pair.src / "big.bin", os.urandom(300_000))      # five 64 KiB blocks
    write(pair.src / "sub" / "c.txt", b"gamma")
    return pair


def row(pair, name):
    return pair.rows("SELECT * FROM files WHERE src_path LIKE ?", (f"%/{name}",))[0]


def failures(pair):
    return [e for e in pair.audit() if e["status"] == "failed"]


def assert_truthful(pair):
    """No partial file under a final name; every synced row is a complete copy."""
    assert temporaries(pair.dst) == []
    for r in pair.rows("SELECT * FROM files WHERE kind = 'file' AND status = 'synced'"):
        assert open(r["dst_path"], "rb").read() == open(r["src_path"], "rb").read()
    for path in pair.dst.rglob("*"):
        if path.is_file():
            assert path.read_bytes() == (pair.src / path.relative_to(pair.dst)).read_bytes()


# -------------------------------------------------------------- transient: retried --

@pytest.mark.parametrize("rule", [
    "read@big.bin:ok,EIO,ETIMEDOUT",      # inside the compiled read loop
    "write@big.bin:ok,ok,EIO,ECONNRESET",  # inside the compiled write loop
    "open@big.bin:EAGAIN,EINTR",
    "create@:EIO",
    "mkdir@sub:ENETUNREACH",
    "utime@:EIO,EIO",
    "rename@big.bin:EHOSTDOWN",
    "stat@big.bin:EIO",
    "list@sub:EIO",
])
def test_transient_errors_are_retried_and_the_copy_completes(tree, plan, capsys, rule):
    plan(rule)
    assert main(tree.args(*FAST)) == EXIT_OK
    assert_same_tree(tree.src, tree.dst)
    assert failures(tree) == []
    assert "retry 1 of 5" in capsys.readouterr().err


@pytest.mark.parametrize("rule", ["read@big.bin:ESTALE", "write@big.bin:ok,ESTALE",
                                  "utime@big:ESTALE",
                                  "read@big.bin:ok,ESTALE;open@big.bin:ok,EIO",    # reopen fails
                                  "write@big.bin:ok,ESTALE;create@big.bin:ok,EIO"])
def test_a_stale_handle_is_reopened_by_path(tree, plan, rule):
    plan(rule)
    assert main(tree.args(*FAST)) == EXIT_OK
    assert_same_tree(tree.src, tree.dst)


def test_a_rename_whose_reply_was_lost_counts_as_done(tree, plan, monkeypatch):
    """The rename went through on the server, but the client saw ETIMEDOUT."""
    import fastsync.transfer as transfer
    real = os.rename
    calls = []

    def rename(a, b):
        real(a, b)
        calls.append(b)
        if len(calls) == 1:
            raise OSError(errno.ETIMEDOUT, "Connection timed out")
    monkeypatch.setattr(transfer.os, "rename", rename)
    assert main(tree.args(*FAST)) == EXIT_OK
    assert_same_tree(tree.src, tree.dst)


def test_a_source_replaced_when_it_is_reopened_is_not_mixed_into_the_copy(tree, plan,
                                                                           monkeypatch):
    """ESTALE, and the file found again by path is another one of the same size and
    mtime: the copy must not mix the two; it is discarded and done again."""
    import fastsync.transfer as transfer
    real, calls = transfer.open_source, []
    st = os.stat(tree.src / "big.bin")
    replacement = os.urandom(st.st_size)

    def open_source(path):
        if path.endswith(b"big.bin"):
            calls.append(path)
        if len(calls) == 2 and path.endswith(b"big.bin"):     # the reopen after ESTALE
            write(tree.src / "big.bin.new", replacement)
            os.utime(tree.src / "big.bin.new", ns=(st.st_atime_ns, st.st_mtime_ns))
            os.rename(tree.src / "big.bin.new", tree.src / "big.bin")
        return real(path)
    monkeypatch.setattr(transfer, "open_source", open_source)
    plan("read@big.bin:ok,ESTALE")
    assert main(tree.args(*FAST)) == EXIT_OK
    assert (tree.dst / "big.bin").read_bytes() == replacement
    assert [e["error"] for e in failures(tree)] == ["source changed while it was being copied"]


def test_retries_are_bounded_then_the_file_fails_and_the_others_go_on(tree, plan):
    plan("read@big.bin:EIO*")
    assert main(tree.args(*FAST)) == EXIT_PARTIAL
    assert (tree.dst / "a.txt").exists() and (tree.dst / "sub" / "c.txt").exists()
    assert not (tree.dst / "big.bin").exists()
    r = row(tree, "big.bin")
    assert (r["status"], r["attempts"]) == ("pending", 4)   # first try + 3 in-run copies
    assert r["last_error"] == "EIO: Input/output error"
    lines = [e for e in failures(tree) if e["src"].endswith("big.bin")]
    assert [e.get("retry") for e in lines] == ["later in this run"] * 3 + [None]
    assert tree.rows("SELECT files_failed FROM runs")[0][0] == 1
    assert_truthful(tree)


def test_retries_option_sets_the_bound(tree, plan, capsys):
    plan("read@big.bin:EIO,EIO,EIO")
    assert main(tree.args(*FAST, "--retries", "3")) == EXIT_OK
    assert "retry 3 of 3" in capsys.readouterr().err


# ---------------------------------------------------------------- permanent: not --

@pytest.mark.parametrize("rule, code", [("open@big.bin:EACCES", "EACCES"),
                                        ("open@big.bin:ENOENT", "ENOENT"),
                                        ("rename@big.bin:EISDIR", "EISDIR"),
                                        ("create@:EPERM", "EPERM")])
def test_permanent_errors_fail_the_file_once_without_retrying(tree, plan, capsys, rule, code):
    plan(rule)
    assert main(tree.args(*FAST)) == EXIT_PARTIAL
    assert "retry" not in capsys.readouterr().err.lower().replace("retries", "")
    failed = failures(tree)
    assert len(failed) >= 1 and all(e["error"].startswith(code) for e in failed)
    assert all("retry" not in e for e in failed)
    r = row(tree, failed[0]["src"].rsplit("/", 1)[1])
    assert (r["status"], r["attempts"]) == ("pending", 1)
    assert_truthful(tree)


# ----------------------------------------------------- flush failures: copy again --

def test_a_file_that_fails_on_every_try_is_not_said_to_have_passed(tree, plan, capsys):
    plan("flush@big.bin:EIO*")
    assert main(tree.args(*FAST)) == EXIT_PARTIAL
    err = capsys.readouterr().err
    assert "failed 1;" in err
    assert "later try" not in err        # it was tried again, and never passed
    assert len([e for e in failures(tree) if e.get("retry")]) == 3


@pytest.mark.parametrize("rule, message", [
    ("flush@big.bin:EIO", "EIO: Input/output error"),             # close of the temporary
    ("syncfs:EIO", "EIO: destination write-back failed: Input/output error"),
    ("syncfs:ok,EIO", "EIO: destination sync failed: Input/output error")])
def test_a_failed_flush_is_not_retried_in_place_but_copied_again(tree, plan, capsys, rule,
                                                                message):
    plan(rule)
    assert main(tree.args(*FAST)) == EXIT_OK
    again = [e for e in failures(tree) if e.get("retry")]
    passed = len({e["src"] for e in again})
    assert f"{passed:,} files copied on a later try, after failing earlier in this run" \
        in capsys.readouterr().err
    assert_same_tree(tree.src, tree.dst)
    assert again and all(e["error"] == message for e in again)
    assert tree.rows("SELECT files_failed FROM runs")[0][0] == 0
    assert all(r["status"] == "synced" for r in tree.rows())


@pytest.mark.parametrize("rule", ["write@big.bin:ok,ESPIPE", "read@big.bin:ok,ESPIPE"])
def test_a_broken_stream_is_not_retried_in_place_but_copied_again(tree, plan, capsys, rule):
    """ESPIPE: a streaming FUSE mount cannot take a second try at an offset."""
    plan(rule)
    assert main(tree.args(*FAST)) == EXIT_OK
    assert_same_tree(tree.src, tree.dst)
    assert "retry 1 of" not in capsys.readouterr().err
    again = [e for e in failures(tree) if e.get("retry")]
    assert len(again) == 1 and again[0]["error"] == "ESPIPE: Illegal seek"


# ---------------------------------------------------------------- fatal: stop --

@pytest.mark.parametrize("rule", ["write@big.bin:ok,ENOSPC", "flush@big.bin:EDQUOT",
                                  "create@:EROFS"])
def test_a_full_destination_stops_the_run_cleanly(tree, plan, capsys, rule):
    plan(rule)
    assert main(tree.args(*FAST)) == EXIT_FATAL
    err = capsys.readouterr().err
    assert "fastsync: error: stopped: E" in err and "on the destination" in err
    assert_truthful(tree)
    pending = tree.rows("SELECT * FROM files WHERE status = 'pending' AND kind = 'file'")
    assert pending and all(r["attempts"] == 0 for r in pending)   # not the files' fault
    assert tree.rows("SELECT status FROM runs")[0][0] == "failed"
    faults.install(None)
    assert main(tree.args()) == EXIT_OK                            # space is back
    assert_same_tree(tree.src, tree.dst)


# ------------------------------------------------------------------ outages --

def test_an_unreachable_share_is_waited_for(tree, plan, capsys):
    dst = str(tree.dst)
    plan(f"create@big.bin:ENOTCONN;probe@{dst}:ENOTCONN,ENOTCONN,ENOTCONN")
    assert main(tree.args(*PROBING)) == EXIT_OK
    assert_same_tree(tree.src, tree.dst)
    err = capsys.readouterr().err
    assert f"DST {dst} is unreachable (ENOTCONN: Transport endpoint is not connected)" in err
    assert f"DST {dst} is back after" in err
    assert "retry" not in err         # waiting for the share is not an attempt


def test_a_file_open_during_an_outage_is_copied_again(tree, plan, capsys):
    plan(f"write@big.bin:ok,ENOTCONN;probe@{tree.dst}:ENOTCONN")
    assert main(tree.args(*PROBING)) == EXIT_OK
    assert_same_tree(tree.src, tree.dst)
    again = [e for e in failures(tree) if e.get("retry")]
    assert len(again) == 1 and "the share went away while the file was open" in again[0]["error"]


def test_outages_are_recorded_in_the_audit_log(tree, plan):
    plan(f"create@big.bin:EHOSTDOWN;probe@{tree.dst}:EHOSTDOWN,EHOSTDOWN")
    assert main(tree.args(*PROBING, "-q")) == EXIT_OK
    outage = [e for e in tree.audit() if e["op"] == "outage"]
    assert [(e["status"], e["side"], e["root"]) for e in outage] == [
        ("started", "DST", str(tree.dst)), ("ended", "DST", str(tree.dst))]
    assert outage[0]["error"] == "EHOSTDOWN: Host is down" and "seconds" in outage[1]


def test_a_share_that_stays_away_stops_the_run_after_the_timeout(tree, plan, capsys):
    plan(f"write@big.bin:ok,EIO;probe@{tree.dst}:EHOSTDOWN*")
    assert main(tree.args(*FAST, "--outage-timeout", "1")) == EXIT_FATAL
    err = capsys.readouterr().err
    assert f"stopped: DST {tree.dst} unreachable for 1s (EHOSTDOWN: Host is down)" in err
    assert "on the destination" not in err
    assert [e["status"] for e in tree.audit() if e["op"] == "outage"] == ["started", "failed"]
    assert_truthful(tree)
    assert row(tree, "big.bin")["attempts"] == 0


def test_an_unmounted_source_is_an_outage_not_a_vanished_file(tree, plan, capsys):
    """ENOENT on every file because the share's mount point is now an empty directory:
    the root is no longer the same directory, so the run waits instead of failing."""
    plan(f"open@big.bin:ENOENT;probe@{tree.src}:ENOENT,ENOENT")
    assert main(tree.args(*PROBING)) == EXIT_OK
    assert_same_tree(tree.src, tree.dst)
    err = capsys.readouterr().err
    assert f"SRC {tree.src} is unreachable" in err and "is back after" in err


def test_an_outage_during_the_scan_is_waited_for(tree, plan, capsys):
    plan(f"list@sub:EIO;probe@{tree.src}:ENOTCONN,ENOTCONN")
    assert main(tree.args(*PROBING)) == EXIT_OK
    assert_same_tree(tree.src, tree.dst)
    assert "is back after" in capsys.readouterr().err


# ---------------------------------------------------- the source changes under us --

def test_a_file_changed_while_copied_is_discarded_and_copied_again(pair):
    """A real change: the source grows while its copy is paced at 256 KiB/s."""
    write(pair.src / "growing.log", os.urandom(1 << 20))
    config = Config(src=os.fsencode(pair.src), dst=os.fsencode(pair.dst), db=str(pair.db),
                    log=str(pair.log), bwlimit=256 * 1024, block_size=64 * 1024,
                    retry_delay=0.2)
    result = {}
    t = threading.Thread(target=lambda: result.update(
        code=run(config, Console(quiet=True), StopRequest())))
    t.start()
    wait_for(lambda: any(b"-probe-" not in p for p in temporaries(pair.dst)))
    with open(pair.src / "growing.log", "ab") as f:
        f.write(b"appended while being copied\n")
    t.join(120)
    assert result["code"] == EXIT_OK
    assert_same_tree(pair.src, pair.dst)
    changed = [e for e in failures(pair) if "changed while it was being copied" in e["error"]]
    assert len(changed) == 1 and changed[0]["retry"] == "later in this run"
    assert pair.rows("SELECT status FROM files WHERE kind = 'file'")[0][0] == "synced"


def test_fault_plans_are_validated():
    with pytest.raises(ValueError, match="expected OP"):
        faults.Plan("explode:EIO")
    with pytest.raises(ValueError, match="is not ok or an errno"):
        faults.Plan("read:EWHATEVER")
    p = faults.Plan("read@x:ok,EIO;write:ENOSPC*")
    assert [p.check("read", b"/a/x") for _ in range(3)] == [0, errno.EIO, 0]
    assert p.check("read", b"/a/y") == 0
    assert [p.check("write", None) for _ in range(3)] == [errno.ENOSPC] * 3


@pytest.fixture
def small_dst(pair):
    """DST on a real 1 MiB tmpfs: writing more than that meets a real ENOSPC."""
    import subprocess
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(pair.dst)], check=True)
    yield pair.dst
    subprocess.run(["umount", str(pair.dst)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_really_full_destination_stops_cleanly(pair, small_dst, capsys):
    for i in range(6):
        write(pair.src / f"f{i}.bin", os.urandom(300_000))
    assert main(pair.args("--block-size", "64K")) == EXIT_FATAL
    assert "stopped: ENOSPC: No space left on device on the destination" in capsys.readouterr().err
    assert_truthful(pair)
    synced = pair.rows("SELECT count(*) FROM files WHERE kind = 'file' AND status = 'synced'")[0][0]
    assert 1 <= synced < 6


@pytest.fixture
def bound_dst(tmp_path):
    """DST is a bind mount of `share`: unmounting it leaves the empty local directory."""
    import subprocess
    share, dst = tmp_path / "share", tmp_path / "mnt"
    share.mkdir()
    dst.mkdir()
    subprocess.run(["mount", "--bind", str(share), str(dst)], check=True)
    yield share, dst
    subprocess.run(["umount", "-l", str(dst)], capture_output=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_files_never_count_as_copied_into_an_unmounted_shares_mount_point(pair, bound_dst):
    """DST is unmounted in the middle of a copy: the path now leads to the empty
    directory below. Nothing may be renamed there and recorded as synced; the run
    waits, gives up after --outage-timeout, and a later run completes the copy."""
    import subprocess
    import sys
    from ..conftest import Pair
    share, dst = bound_dst
    run = Pair(pair.root, pair.src, dst)
    for i in range(8):
        write(pair.src / f"f{i}.bin", os.urandom(200_000))
    proc = subprocess.Popen([sys.executable, "-m", "fastsync", "-q", *run.args(
        "--bwlimit", "400K", "--block-size", "64K", "--retry-delay", "0.1",
        "--outage-timeout", "2")], stderr=subprocess.PIPE)
    wait_for(lambda: any(p.name.endswith(".bin") for p in share.iterdir()), timeout=60)
    subprocess.run(["umount", "-l", str(dst)], check=True)
    assert proc.wait(timeout=120) == EXIT_FATAL
    assert "DST" in proc.stderr.read().decode()
    assert not any(p.name.endswith(".bin") for p in dst.iterdir())   # nothing "copied" here
    for r in run.rows("SELECT * FROM files WHERE kind = 'file' AND status = 'synced'"):
        name = os.path.basename(r["dst_path"])
        assert (share / name).read_bytes() == (pair.src / name).read_bytes()
    subprocess.run(["mount", "--bind", str(share), str(dst)], check=True)
    assert main(run.args()) == EXIT_OK
    assert_same_tree(pair.src, share)


def test_a_disk_that_refuses_an_o_direct_write_gets_it_buffered(tree, plan):
    """EINVAL from an O_DIRECT write (a filesystem wanting more alignment) is not the
    file's fault: the block is written again without O_DIRECT, and so are later files."""
    plan("write@big.bin:EINVAL")
    assert main(tree.args(*FAST)) == EXIT_OK
    assert_same_tree(tree.src, tree.dst)
    assert failures(tree) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_directories_are_never_made_in_an_unmounted_shares_mount_point(pair, bound_dst,
                                                                       monkeypatch, capsys):
    """DST is unmounted just before the directories are created (here: empty source
    directories, made in the directories phase): nothing may be created on the local
    disk below, and nothing recorded as done."""
    import subprocess
    from fastsync.catalog import Catalog
    from ..conftest import Pair
    share, dst = bound_dst
    run = Pair(pair.root, pair.src, dst)
    for i in range(3):
        (pair.src / f"empty{i}" / "inner").mkdir(parents=True)
    real, mounted = Catalog.pending_dirs, [True]

    def unmount_first(self, *args, **kw):
        if mounted:
            subprocess.run(["umount", "-l", str(dst)], check=True)
            mounted.clear()
        return real(self, *args, **kw)
    monkeypatch.setattr(Catalog, "pending_dirs", unmount_first)
    assert main(run.args("--retry-delay", "0.05", "--outage-timeout", "1")) == EXIT_FATAL
    assert "DST" in capsys.readouterr().err
    assert list(dst.iterdir()) == []                      # the local disk got nothing
    done = run.rows("SELECT count(*) FROM files WHERE kind = 'dir' AND status = 'synced'"
                    " AND dst_path != ?", (str(dst),))[0][0]
    assert done == 0


@pytest.mark.parametrize("rule", ["mkdir@sub:ENOSPC", "mkdir@sub:EROFS", "mkdir@sub:EDQUOT"])
def test_a_full_destination_met_while_making_a_directory_stops_the_run(tree, plan, rule,
                                                                       capsys):
    plan(rule)
    assert main(tree.args(*FAST)) == EXIT_FATAL
    assert "stopped" in capsys.readouterr().err
    assert not (tree.dst / "sub").exists()
    assert row(tree, "c.txt")["status"] == "pending"
    assert row(tree, "c.txt")["attempts"] == 0          # not the file's fault
    assert_truthful(tree)


@pytest.mark.parametrize("rule", ["mkdir@empty:ENOSPC", "utime@empty:EROFS"])
def test_a_full_destination_met_in_the_directories_phase_stops_the_run(pair, plan, rule):
    write(pair.src / "a.txt", b"alpha")
    (pair.src / "empty").mkdir()
    plan(rule)
    assert main(pair.args(*FAST)) == EXIT_FATAL
    assert pair.rows("SELECT status FROM runs")[0][0] == "failed"
    assert (pair.dst / "a.txt").read_bytes() == b"alpha"


# ------------------------------------- a filesystem mounted inside SRC goes away --

@pytest.fixture
def mount_in_src(pair):
    """A tmpfs mounted at SRC/share, with files on it; the test may unmount it."""
    import subprocess
    if os.geteuid() != 0:
        pytest.skip("mounting a filesystem needs root")
    point = pair.src / "share"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(point)], check=True)
    write(point / "a.txt", b"on the mounted filesystem")
    write(point / "deep" / "b.txt", b"deeper")
    write(pair.src / "local.txt", b"on SRC's own filesystem")
    yield point
    subprocess.run(["umount", str(point)], stderr=subprocess.DEVNULL)


def test_nothing_is_deleted_below_a_source_mount_that_went_away(pair, mount_in_src, capsys):
    import subprocess
    assert main(pair.args("--delete-extras", "--max-delete", "100")) == EXIT_OK
    assert (pair.dst / "share" / "deep" / "b.txt").read_bytes() == b"deeper"
    subprocess.run(["umount", str(mount_in_src)], check=True)
    write(pair.dst / "extra.txt", b"a real extra, outside the mount")
    capsys.readouterr()
    assert main(pair.args("--delete-extras", "--max-delete", "100")) == EXIT_PARTIAL
    assert (pair.dst / "share" / "a.txt").read_bytes() == b"on the mounted filesystem"
    assert (pair.dst / "share" / "deep" / "b.txt").read_bytes() == b"deeper"
    assert not (pair.dst / "extra.txt").exists()          # deletion goes on elsewhere
    out = capsys.readouterr()
    assert f"nothing deleted below {pair.dst / 'share'}" in out.err
    assert "their SRC filesystem is not mounted" in out.out + out.err
    deleted = [r["dst"] for r in pair.audit() if r["op"] == "delete" and r["status"] == "ok"]
    assert deleted == [str(pair.dst / "extra.txt")]
    # Mounted again: nothing to copy, nothing held, status 0
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_in_src)],
                   check=True)
    write(mount_in_src / "a.txt", b"on the mounted filesystem",
          mtime_ns=os.stat(pair.dst / "share" / "a.txt").st_mtime_ns)
    assert main(pair.args("--delete-extras", "--max-delete", "100")) == EXIT_OK
    assert not (pair.dst / "share" / "deep").exists()      # now really gone from SRC


def test_a_mount_point_removed_from_source_is_an_ordinary_deletion(pair, mount_in_src):
    import subprocess
    assert main(pair.args("--delete-extras", "--max-delete", "100")) == EXIT_OK
    subprocess.run(["umount", str(mount_in_src)], check=True)
    os.rmdir(mount_in_src)
    assert main(pair.args("--delete-extras", "--max-delete", "100")) == EXIT_OK
    assert not (pair.dst / "share").exists()
    assert (pair.dst / "local.txt").exists()


def test_a_nested_mount_keeps_its_protection_while_the_one_above_is_away(pair):
    """SRC/share and SRC/share/inner are both mounts. Both go away and a run scans
    (inner's mount point is gone with share's content); then share comes back without
    inner: inner's DST copy must still not be deleted."""
    import subprocess
    if os.geteuid() != 0:
        pytest.skip("mounting a filesystem needs root")
    share = pair.src / "share"
    share.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs"]
    subprocess.run([*mount, str(share)], check=True)
    try:
        (share / "inner").mkdir()
        subprocess.run([*mount, str(share / "inner")], check=True)
        write(share / "top.txt", b"top")
        write(share / "inner" / "data.txt", b"precious")
        assert main(pair.args("--delete-extras")) == EXIT_OK
        subprocess.run(["umount", str(share / "inner")], check=True)
        subprocess.run(["umount", str(share)], check=True)
        assert main(pair.args("--delete-extras")) == EXIT_PARTIAL
        subprocess.run([*mount, str(share)], check=True)     # back, but without inner
        write(share / "top.txt", b"top", mtime_ns=os.stat(pair.dst / "share" / "top.txt").st_mtime_ns)
        (share / "inner").mkdir()
        assert main(pair.args("--delete-extras")) == EXIT_PARTIAL
        assert (pair.dst / "share" / "inner" / "data.txt").read_bytes() == b"precious"
    finally:
        subprocess.run(["umount", "-R", str(share)], stderr=subprocess.DEVNULL)
