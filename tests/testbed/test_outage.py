"""Real outages on ../shared/testbed: two SMB shares (rclone FUSE mounts) behind a
shaped link, served by one Samba in a network namespace.

Skipped unless the testbed is up. To run:
    ../shared/testbed/up.sh 500mbit
    .venv/bin/python -m pytest tests/testbed -v
Each test reads a local SRC and writes the DST share, so only the destination goes away.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ..conftest import assert_same_tree, wait_for, write

# ../shared/testbed beside the checkout (this file is two levels below its root)
TESTBED = (Path(__file__).resolve().parents[2] / ".." / "shared" / "testbed").resolve()
STATE = Path("/run/fs-testbed")
MNT_DST = Path("/mnt/fs-dst")
EXPORT_DST = Path("/srv/fs-testbed/dst")


def not_up() -> str | None:
    """Why the testbed cannot be used, or None."""
    if not (TESTBED / "up.sh").exists():
        return f"no testbed at {TESTBED} (expected ../shared/testbed beside the checkout)"
    if not ((STATE / "pids").exists() and os.path.ismount(MNT_DST) and EXPORT_DST.is_dir()):
        return f"the testbed is not up ({MNT_DST} not mounted): {TESTBED}/up.sh 500mbit"
    return None


pytestmark = pytest.mark.skipif(not_up() is not None, reason=str(not_up()))


def pid_of(name: str) -> int:
    pids = [line.split() for line in (STATE / "pids").read_text().splitlines()]
    return int([p for p in pids if p[0] == name][-1][1])


def restart_testbed() -> None:
    rate = (STATE / "rate").read_text().strip() if (STATE / "rate").exists() else "500mbit"
    subprocess.run([str(TESTBED / "up.sh"), rate], check=True, capture_output=True)


def share_answers() -> bool:
    """A real round trip to the DST server: a small file written and removed."""
    probe = MNT_DST / f".probe-{os.getpid()}"
    try:
        probe.write_bytes(b"x")
        probe.unlink()
        return True
    except OSError:
        return False


@pytest.fixture
def job(tmp_path):
    """Local SRC with 6 x 24 MiB; DST a fresh directory on the DST share."""
    src = tmp_path / "src"
    for i in range(6):
        # whole seconds: the share keeps mtimes to 100 ns, the rclone mount to 1 ms
        write(src / f"part{i}.bin", os.urandom(24 << 20), mtime_ns=(1_700_000_000 + i) * 10**9)
    name = f"outage-{uuid.uuid4().hex[:8]}"
    wait_for(share_answers, timeout=120, every=1.0)    # e.g. after the previous test
    (MNT_DST / name).mkdir()
    yield src, MNT_DST / name, EXPORT_DST / name, tmp_path
    subprocess.run(["rm", "-rf", str(EXPORT_DST / name)])


def start(src, dst, tmp_path):
    return subprocess.Popen(
        [sys.executable, "-m", "fastsync", "-v", "--bwlimit", "20M", "--retry-delay", "0.5",
         "--db", str(tmp_path / "c.db"), "--log", str(tmp_path / "a.log"), str(src), str(dst)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def writing(server_side: Path) -> bool:
    return any(p.name.startswith(".fastsync-") and "probe" not in p.name
               for p in server_side.iterdir())


def test_the_smb_server_stops_mid_transfer_and_comes_back(job):
    """The issue's scenario. rclone blocks the write while the server is away (it keeps
    retrying underneath), and the interrupted upload stream comes back broken (ESPIPE);
    fastsync copies that file again and ends with an exact copy."""
    src, dst, server_side, tmp = job
    proc = start(src, dst, tmp)
    started = time.monotonic()
    wait_for(lambda: writing(server_side), timeout=60)
    os.kill(pid_of("smbd"), signal.SIGTERM)
    time.sleep(10)
    restart_testbed()
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()
    assert time.monotonic() - started > 10
    assert_same_tree(src, server_side)
    assert_same_tree(src, dst)


def test_the_dst_mount_goes_away_and_is_waited_for(job):
    """The FUSE client of DST dies (every operation: ENOTCONN) and is mounted again
    seconds later: fastsync pauses, says what it waits for, and finishes exactly."""
    src, dst, server_side, tmp = job
    proc = start(src, dst, tmp)
    wait_for(lambda: writing(server_side), timeout=60)
    os.kill(pid_of("mnt-dst"), signal.SIGKILL)
    time.sleep(6)
    restart_testbed()
    code = proc.wait(timeout=600)
    err = proc.stderr.read().decode()
    assert code == 0, err
    assert f"DST {dst} is unreachable" in err and f"DST {dst} is back after" in err
    assert_same_tree(src, server_side)
