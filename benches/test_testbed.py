"""fastsync beside rsync, cp and rclone on two SMB shares behind one shaped link
(../shared/testbed, brought up with `up.sh 500mbit`: about 59.9 MB/s of payload each way).

Reading SRC is inbound traffic on the client's link end (rx), writing DST outbound (tx):
a tool that reads and writes at the same time uses both. Every run starts from an empty
DST with the shares' caches forgotten and the page cache dropped, and runs under the
testbed's wire.py, which samples the link every 100 ms: mean rate while active, the
busiest 1 s and 100 ms windows, and how long traffic went on after the tool exited.
The copy is checked against the data set's manifest (files and bytes, server side).

The large files are also measured with the testbed's capacity.sh in the same run: dd
readers and writers, four of each at once (full duplex), is the ceiling fastsync's rate
is compared with (the row "dd ceiling": fastsync/this is the fraction of it).

Small files (mkdata.sh profile `small`, FASTSYNC_BENCH_TB_SMALL_SCALE, default 0.1:
2,000 files of 1-64 KiB in nested directories): fastsync with default options,
`rsync -a` and `rclone copy --transfers 8`, each into a fresh directory on the DST share
(nothing is deleted between them), FASTSYNC_BENCH_TB_ROUNDS interleaved rounds (default
1); files/s, wall and CPU seconds, and each relative to rclone.

Bandwidth caps: fastsync --bwlimit 20M and 50M, rsync --bwlimit (KiB/s) and rclone
--bwlimit at the same rates, on the large files; figures in MiB/s and % of the cap.

The testbed is ../shared/testbed beside the checkout; skipped, saying why, unless it is
there and up. FASTSYNC_BENCH_TB_SCALE scales the large and mixed data sets (default 0.5:
8 x 256 MiB large files, about 1 GiB mixed).
"""

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import (MiB, Fresh, fastsync_cmd, interleaved, median, report, summarise,
                       tree_size)

# ../shared/testbed beside the checkout (benches/ is one level below its root)
TESTBED = (Path(__file__).resolve().parents[1] / ".." / "shared" / "testbed").resolve()
SRC, DST, EXPORT = Path("/mnt/fs-src"), Path("/mnt/fs-dst"), Path("/srv/fs-testbed")
LINK_MBPS = 59.9            # payload MB/s of the 500mbit link (testbed README)
SCALE = os.environ.get("FASTSYNC_BENCH_TB_SCALE", "0.5")
SMALL_SCALE = os.environ.get("FASTSYNC_BENCH_TB_SMALL_SCALE", "0.1")
ROUNDS = int(os.environ.get("FASTSYNC_BENCH_TB_ROUNDS", "1"))
EMPTY_RCLONE_CONF = "/tmp/fastsync-bench-rclone.conf"


def not_up() -> str | None:
    """Why the testbed cannot be used, or None."""
    if not (TESTBED / "wire.py").exists():
        return f"no testbed at {TESTBED} (expected ../shared/testbed beside the checkout)"
    if not (os.path.ismount(SRC) and os.path.ismount(DST)):
        return f"the testbed is not up ({SRC}, {DST} not mounted): {TESTBED}/up.sh 500mbit"
    return None


pytestmark = pytest.mark.skipif(not_up() is not None, reason=str(not_up()))


def manifest(profile):
    files = total = 0
    with open(EXPORT / "src" / f".manifest-{profile}.tsv") as f:
        for line in f:
            files += 1
            total += int(line.rsplit("\t", 1)[1])
    return files, total


def make_dataset(profile, scale):
    """The data set in the SRC share (written server side), made again if the scale
    changed."""
    marker = EXPORT / "src" / f".bench-scale-{profile}"
    if not marker.exists() or marker.read_text() != scale:
        shutil.rmtree(EXPORT / "src" / profile, ignore_errors=True)
        subprocess.run([TESTBED / "mkdata.sh", EXPORT / "src", profile, "--scale", scale],
                       check=True, stdout=subprocess.DEVNULL)
        marker.write_text(scale)
    Path(EMPTY_RCLONE_CONF).touch()


@pytest.fixture(scope="module", params=["large", "mixed"])
def dataset(request):
    make_dataset(request.param, SCALE)
    return request.param


def forget():
    """The mounts forget their directory caches (else they still list what was deleted
    server side for up to 30 s)."""
    for url in ("127.0.0.1:5581", "127.0.0.1:5582"):
        subprocess.run(["rclone", "rc", "--url", url, "vfs/forget"], capture_output=True)


def clear_dst():
    """Delete what earlier runs left in the DST share (server side; never timed)."""
    for entry in (EXPORT / "dst").iterdir():
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    forget()


def quiesce():
    """The same state before every timed run: the mounts' directory caches forgotten,
    nothing dirty, page cache dropped (client and servers share it), 2 s of quiet."""
    forget()
    subprocess.run("sync; echo 3 > /proc/sys/vm/drop_caches", shell=True, check=True)
    time.sleep(2)


def wire(argv, out: Path, unit="MB"):
    """Run argv under wire.py; return its summary (rx/tx dicts, cmd_rc, wall, cpu)."""
    subprocess.run(["python3", TESTBED / "wire.py", "vnas0", "-q", "--unit", unit,
                    "--json", out, "--", *argv], stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def command(tool, profile, work, dst_root=DST):
    """argv copying SRC/profile to dst_root/profile."""
    src, dst = f"{SRC}/{profile}", f"{dst_root}/{profile}"
    rclone = ["rclone", "copy", "--config", EMPTY_RCLONE_CONF]
    fastsync = [*fastsync_cmd(), "-q", "--db", f"{work}/c.db", "--log", f"{work}/a.log"]
    name, _, arg = tool.partition(" ")
    if name == "fastsync":
        return ["sh", "-c", f"mkdir -p '{dst}' && exec \"$@\"", "sh", *fastsync,
                *arg.split(), src, dst]
    if name == "rsync":
        return ["rsync", "-a", *arg.split(), f"{src}", f"{dst_root}/"]
    if name == "cp":
        return ["cp", "-a", src, f"{dst_root}/"]
    return [*rclone, *arg.split(), src, dst]


def run(tool, profile, work: Path, unit="MB", dst_root=DST):
    """One timed run under wire.py, checked against the manifest. Into DST itself after
    clearing it (deleted, then synced by quiesce before the copy), or into dst_root, a
    fresh directory on the DST share, with nothing deleted."""
    if shutil.which(tool.split()[0]) is None and not tool.startswith("fastsync"):
        pytest.fail(f"{tool.split()[0]} is not installed")
    if dst_root == DST:
        clear_dst()
    work.mkdir(parents=True, exist_ok=True)
    quiesce()
    summary = wire(command(tool, profile, work, dst_root), work / "wire.json", unit)
    # cp -a exits 1 on these mounts although the copy is complete: the mount answers
    # xattr calls with EIO (testbed README); the manifest check below is what counts
    assert summary["cmd_rc"] in ((0, 1) if tool.startswith("cp") else (0,)), summary
    server_side = EXPORT / "dst" / dst_root.relative_to(DST) / profile
    assert tree_size(server_side) == manifest(profile), f"{tool}: incomplete copy"
    return summary


def share_group(profile):
    files, total = manifest(profile)
    return f"testbed 500mbit, {profile} ({files} files, {total / 1e6:,.0f} MB), share to share"


def test_dd_ceiling(dataset, tmp_path):
    """capacity.sh in this run: the full-duplex dd ceiling the large-file copy is held to
    (4 readers + 4 writers at once; the rate each way while both directions are busy)."""
    if dataset != "large":
        pytest.skip("the dd ceiling is measured beside the large files")
    with open(EXPORT / "src" / ".manifest-large.tsv") as f:
        mib = int(f.readline().rsplit("\t", 1)[1]) // MiB       # per dd: one file's size
    clear_dst()
    out = subprocess.run([TESTBED / "capacity.sh", str(mib)], check=True, capture_output=True,
                         text=True, env={**os.environ, "TB_OUT": str(tmp_path)}).stdout
    # case wall_s rx_MB/s rx_max1s tx_MB/s tx_max1s both_rx+tx
    cases = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:] if line.strip()}
    both = re.fullmatch(r"\s*([\d.]+)\+\s*([\d.]+)", " ".join(cases["duplex-4"][5:]))
    assert both, out
    rx, tx = float(both[1]), float(both[2])
    report(share_group("large"), "dd ceiling (duplex-4)", **{
        "MB/s": min(rx, tx), "% link": 100 * min(rx, tx) / LINK_MBPS, "rx MB/s": rx,
        "tx MB/s": tx, "read-4 MB/s": float(cases["read-4"][1]),
        "write-4 MB/s": float(cases["write-4"][3])})


COPY_TOOLS = ["fastsync", "fastsync --streams 4", "rsync", "cp", "rclone"]


@pytest.mark.parametrize("tool", COPY_TOOLS)
def test_share_to_share(dataset, tool, tmp_path):
    w = run(tool, dataset, tmp_path)
    files, total = manifest(dataset)
    rate = total / w["cmd_wall_s"] / 1e6
    report(share_group(dataset), tool, **{"MB/s": rate, "% link": 100 * rate / LINK_MBPS,
                    "rx MB/s": w["rx"].get("mean_active", 0.0),
                    "tx MB/s": w["tx"].get("mean_active", 0.0),
                    "CPU s": w.get("cmd_cpu_s", 0.0), "busy %": w.get("machine_cpu_busy_pct")})


SMALL_TOOLS = ["fastsync", "rsync", "rclone --transfers 8"]


def test_share_small_files(tmp_path):
    """fastsync (default options) beside rsync -a and rclone --transfers 8 on many small
    files, each copy into a fresh directory on the DST share; nothing is deleted between
    the timed copies (only what earlier runs left, before the first one)."""
    make_dataset("small", SMALL_SCALE)
    files, total = manifest("small")
    clear_dst()
    fresh = Fresh(DST, "small")         # made through the mount, untimed
    runs = {tool: [] for tool in SMALL_TOOLS}
    busy = {tool: [] for tool in SMALL_TOOLS}
    for i, (_, tool) in enumerate(interleaved(SMALL_TOOLS, ROUNDS)):
        w = run(tool, "small", tmp_path / f"run-{i}", dst_root=fresh())
        runs[tool].append((w["cmd_wall_s"], w.get("cmd_cpu_s", 0.0)))
        busy[tool].append(w.get("machine_cpu_busy_pct") or 0.0)
    group = (f"testbed 500mbit, small ({files:,} files, {total / 1e6:,.0f} MB), share to share, "
             f"fresh dirs (median of {ROUNDS})")
    for tool, figures in summarise(runs, files, total, "rclone --transfers 8",
                                   "rclone").items():
        report(group, tool, **figures, **{"busy %": median(busy[tool])})


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
