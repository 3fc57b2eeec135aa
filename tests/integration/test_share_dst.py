"""A destination that is not one of the batch-durable local filesystems, as a share is:
here a ramfs mount, which fastsync treats like NFS, SMB or FUSE (every file fsynced,
closed and renamed on its own, by finishing threads, many at once; more streams)."""

import os
import subprocess

import pytest

from fastsync import faults
from fastsync.cli import main
from fastsync.errors import EXIT_OK, EXIT_PARTIAL

from ..conftest import assert_same_tree, make_tree, temporaries, write

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a filesystem needs root")


@pytest.fixture
def share(pair):
    subprocess.run(["mount", "-t", "ramfs", "ramfs", str(pair.dst)], check=True)
    yield pair
    subprocess.run(["umount", str(pair.dst)], check=True)


@pytest.fixture
def plan():
    yield faults.install
    faults.install(None)


def test_a_share_like_destination_gets_every_file_with_its_times(share, capsys):
    made = make_tree(share.src, files=300, max_size=200_000)
    assert main(share.args("--block-size", "64K")) == EXIT_OK
    assert_same_tree(share.src, share.dst)
    assert temporaries(share.dst) == []
    synced = share.rows("SELECT count(*) FROM files WHERE kind = 'file' AND status = 'synced'")
    assert synced[0][0] == len(made)
    ok = [e for e in share.audit() if e["op"] == "copy" and e["status"] == "ok"]
    assert len(ok) == len(made)
    assert "streams 8 (auto)" in capsys.readouterr().err


def test_a_rename_that_fails_on_a_finishing_thread_is_retried(share, plan):
    make_tree(share.src, files=60, max_size=20_000)
    plan("rename@f01:EIO,EIO")
    assert main(share.args("--retry-delay", "0")) == EXIT_OK
    assert_same_tree(share.src, share.dst)


def test_a_file_that_cannot_be_flushed_fails_alone_and_leaves_no_temporary(share, plan):
    make_tree(share.src, files=60, max_size=20_000)
    write(share.src / "zz" / "doomed.bin", os.urandom(5000))
    plan("flush@doomed.bin:EACCES*")
    assert main(share.args("--retry-delay", "0")) == EXIT_PARTIAL
    assert not (share.dst / "zz" / "doomed.bin").exists()
    assert temporaries(share.dst) == []
    row = share.rows("SELECT status, attempts, last_error FROM files"
                     " WHERE src_path LIKE '%doomed.bin'")[0]
    assert row["status"] == "pending" and row["attempts"] == 1
    assert "EACCES" in row["last_error"]
    others = share.rows("SELECT count(*) FROM files WHERE kind = 'file' AND status = 'synced'")
    assert others[0][0] == 60


def test_a_full_share_stops_the_run_and_records_only_what_is_durable(share, plan):
    make_tree(share.src, files=80, max_size=20_000)
    plan("rename:" + "ok," * 10 + "ENOSPC*")
    assert main(share.args("--retry-delay", "0")) == 3
    assert temporaries(share.dst) == []
    for r in share.rows("SELECT src_path, dst_path FROM files"
                        " WHERE kind = 'file' AND status = 'synced'"):
        assert open(r["dst_path"], "rb").read() == open(r["src_path"], "rb").read()
    pending = share.rows("SELECT count(*), max(attempts) FROM files"
                         " WHERE kind = 'file' AND status = 'pending'")[0]
    assert pending[0] > 0 and pending[1] == 0     # not the files' fault: no attempt counted
