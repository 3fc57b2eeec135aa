"""fastsync beside rsync, cp and rclone on two SMB shares behind one shaped link
(../shared/testbed, brought up with `up.sh 500mbit`: about 59.9 MB/s of payload each way).

Reading SRC is inbound traffic on the client's link end (rx), writing DST outbound (tx):
a tool that reads and writes at the same time uses both. Every run starts from an empty
DST with the shares' caches forgotten and the page cache dropped, and runs under the
testbed's wire.py, which samples the link every 100 ms: mean rate while active, the
busiest 1 s and 100 ms windows, and how long traffic went on after the tool exited.
The copy is checked against the data set's manifest (files and bytes, server side).

Bandwidth caps: fastsync --bwlimit 20M and 50M, rsync --bwlimit (KiB/s) and rclone
--bwlimit at the same rates, on the large files; figures in MiB/s and % of the cap.

Skipped unless the testbed is up. FASTSYNC_BENCH_TB_SCALE scales the data sets
(default 0.5: 8 x 256 MiB large files, about 1 GiB mixed).
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import fastsync_cmd, report, tree_size

TESTBED = next((p for p in (os.environ.get("FASTSYNC_TESTBED"), "../shared/testbed",
                            "/work/shared/testbed") if p and Path(p, "wire.py").exists()), None)
SRC, DST, EXPORT = Path("/mnt/fs-src"), Path("/mnt/fs-dst"), Path("/srv/fs-testbed")
LINK_MBPS = 59.9            # payload MB/s of the 500mbit link (testbed README)
SCALE = os.environ.get("FASTSYNC_BENCH_TB_SCALE", "0.5")
MiB = 1024 * 1024
EMPTY_RCLONE_CONF = "/tmp/fastsync-bench-rclone.conf"

pytestmark = pytest.mark.skipif(
    TESTBED is None or not (os.path.ismount(SRC) and os.path.ismount(DST)),
    reason="the testbed is not up (../shared/testbed/up.sh 500mbit)")


def manifest(profile):
    files = total = 0
    with open(EXPORT / "src" / f".manifest-{profile}.tsv") as f:
        for line in f:
            files += 1
            total += int(line.rsplit("\t", 1)[1])
    return files, total


@pytest.fixture(scope="module", params=["large", "mixed"])
def dataset(request):
    profile = request.param
    marker = EXPORT / "src" / f".bench-scale-{profile}"
    if not marker.exists() or marker.read_text() != SCALE:
        shutil.rmtree(EXPORT / "src" / profile, ignore_errors=True)
        subprocess.run([f"{TESTBED}/mkdata.sh", str(EXPORT / "src"), profile, "--scale",
                        SCALE], check=True, stdout=subprocess.DEVNULL)
        marker.write_text(SCALE)
    Path(EMPTY_RCLONE_CONF).touch()
    return profile


def reset():
    for entry in (EXPORT / "dst").iterdir():
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for url in ("127.0.0.1:5581", "127.0.0.1:5582"):
        subprocess.run(["rclone", "rc", "--url", url, "vfs/forget"], capture_output=True)
    subprocess.run("sync; echo 3 > /proc/sys/vm/drop_caches", shell=True, check=True)
    time.sleep(2)


def wire(argv, unit="MB"):
    """Run argv under wire.py; return its summary (rx/tx dicts, cmd_rc, wall, cpu)."""
    out = Path("/tmp/fastsync-bench-wire.json")
    subprocess.run(["python3", f"{TESTBED}/wire.py", "vnas0", "-q", "--unit", unit,
                    "--json", str(out), "--", *argv], stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def command(tool, profile, work):
    src, dst = f"{SRC}/{profile}", f"{DST}/{profile}"
    rclone = ["rclone", "copy", "--config", EMPTY_RCLONE_CONF]
    fastsync = [*fastsync_cmd(), "-q", "--db", f"{work}/c.db", "--log", f"{work}/a.log"]
    name, _, arg = tool.partition(" ")
    if name == "fastsync":
        return ["sh", "-c", f"mkdir -p '{dst}' && exec \"$@\"", "sh", *fastsync,
                *arg.split(), src, dst]
    if name == "rsync":
        return ["rsync", "-a", *arg.split(), f"{src}", f"{DST}/"]
    if name == "cp":
        return ["cp", "-a", src, f"{DST}/"]
    return [*rclone, *arg.split(), src, dst]


def run(tool, profile, tmp_path, unit="MB"):
    if shutil.which(tool.split()[0]) is None and not tool.startswith("fastsync"):
        pytest.fail(f"{tool.split()[0]} is not installed")
    reset()
    summary = wire(command(tool, profile, tmp_path), unit)
    # cp -a exits 1 on these mounts although the copy is complete: the mount answers
    # xattr calls with EIO (testbed README); the manifest check below is what counts
    assert summary["cmd_rc"] in ((0, 1) if tool.startswith("cp") else (0,)), summary
    assert tree_size(EXPORT / "dst" / profile) == manifest(profile), f"{tool}: incomplete copy"
    return summary


COPY_TOOLS = ["fastsync", "fastsync --streams 4", "rsync", "cp", "rclone"]


@pytest.mark.parametrize("tool", COPY_TOOLS)
def test_share_to_share(dataset, tool, tmp_path):
    w = run(tool, dataset, tmp_path)
    files, total = manifest(dataset)
    rate = total / w["cmd_wall_s"] / 1e6
    report(f"testbed 500mbit, {dataset} ({files} files, {total / 1e6:,.0f} MB), share to share",
           tool, **{"MB/s": rate, "% link": 100 * rate / LINK_MBPS,
                    "rx MB/s": w["rx"].get("mean_active", 0.0),
                    "tx MB/s": w["tx"].get("mean_active", 0.0),
                    "CPU s": w.get("cmd_cpu_s", 0.0), "busy %": w.get("machine_cpu_busy_pct")})


CAP_TOOLS = {20: ["fastsync --bwlimit 20M", "rsync --bwlimit=20480", "rclone --bwlimit 20M"],
             50: ["fastsync --bwlimit 50M", "rsync --bwlimit=51200", "rclone --bwlimit 50M"]}


@pytest.mark.parametrize("cap,tool", [(c, t) for c, ts in CAP_TOOLS.items() for t in ts])
def test_bandwidth_cap_on_the_wire(dataset, cap, tool, tmp_path):
    if dataset != "large":
        pytest.skip("caps are measured on the large files")
    w = run(tool, dataset, tmp_path, unit="MiB")
    tx, rx = w["tx"], w["rx"]
    report(f"testbed, cap {cap} MiB/s on the wire (tx = writes to DST; rx = reads)", tool,
           **{"tx mean %": 100 * tx["mean_active"] / cap,
              "tx max 1s %": 100 * tx["max_1s"] / cap,
              "tx max 100ms %": 100 * tx["max_100ms"] / cap,
              "rx max 1s %": 100 * rx["max_1s"] / cap,
              "rx max 100ms %": 100 * rx["max_100ms"] / cap,
              "tail s": tx.get("after_exit_s", 0.0), "CPU s": w.get("cmd_cpu_s", 0.0)})
