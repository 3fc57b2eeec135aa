"""Shared bench helpers. Benches are not part of the test run; the whole suite runs with
one command (README, "Performance"):

    ./build.sh && FASTSYNC_BIN=dist/fastsync .venv/bin/python -m pytest benches -s

Every bench adds rows to one table, printed at the end with each peer's figure beside
fastsync's and the ratio. MB = 10**6 bytes. The network-share benches run only when the
testbed (../shared/testbed) is up; they say so when skipped.

Side-by-side comparisons share one method (helpers below): every contender copies into a
fresh directory (Fresh) from the same cache state (drop_caches, warm), in interleaved
rounds whose order rotates (interleaved); wall and CPU seconds come from wait4
(run_timed); summarise turns the rounds into medians and ratios to a baseline tool.
"""

import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MB = 1_000_000
MiB = 1024 * 1024


@dataclass
class Row:
    group: str          # what was measured, e.g. "local large 4 x 512 MiB"
    tool: str
    figures: dict = field(default_factory=dict)   # name -> value, printed in order


ROWS: list[Row] = []


def report(group: str, tool: str, **figures) -> None:
    ROWS.append(Row(group, tool, figures))


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    tr = terminalreporter
    tr.section("fastsync benches")
    groups: dict[str, list[Row]] = {}
    for row in ROWS:
        groups.setdefault(row.group, []).append(row)
    for group, rows in groups.items():
        tr.write_line(f"\n{group}")
        ours = next((r for r in rows if r.tool.startswith("fastsync")), None)
        for row in rows:
            cells = "  ".join(f"{k} {_fmt(v)}" for k, v in row.figures.items())
            ratio = ""
            key = next(iter(row.figures), None)
            if ours is not None and row is not ours and key in ours.figures:
                mine, theirs = ours.figures[key], row.figures[key]
                if isinstance(mine, (int, float)) and theirs:
                    ratio = f"  fastsync/this {mine / theirs:5.2f}"
            tr.write_line(f"  {row.tool:28s} {cells}{ratio}")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:9.1f}" if abs(v) >= 10 else f"{v:9.2f}"
    return f"{v!s:>9}"


def write_file(path: Path, size: int, rng: random.Random, chunk: bytes) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(chunk))
            # vary every chunk so no filesystem can deduplicate or compress it
            f.write(rng.randbytes(16) + chunk[16:n] if n > 16 else rng.randbytes(n))
            left -= n


def make_tree(root: Path, paths_sizes: list[tuple[str, int]], seed: int = 0) -> int:
    rng = random.Random(seed)
    chunk = rng.randbytes(4 * MiB)
    total = 0
    for rel, size in paths_sizes:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, size, rng, chunk)
        total += size
    subprocess.run(["sync"], check=True)
    return total


def tree_size(root) -> tuple[int, int]:
    """Files and bytes under root (to check that a copy is complete)."""
    files = total = 0
    for d, _, names in os.walk(root):
        for n in names:
            files += 1
            total += os.path.getsize(os.path.join(d, n))
    return files, total


class Fresh:
    """Hands out new empty directories: dst-1, dst-2, ... (this machine's ext4 is slow
    to reuse space freed a moment ago, so rounds never write where one was deleted)."""

    def __init__(self, root: Path, name: str):
        self.root, self.name, self.n = root, name, 0

    def __call__(self) -> Path:
        self.n += 1
        path = self.root / f"{self.name}-{self.n}"
        path.mkdir()
        return path


class FreshFilesystem:
    """A new ext4 filesystem (mkfs defaults: with a journal, as on a real server) on a
    sparse loop image, one per copy: no tool meets another's deleted inodes. On this
    machine's journal-less root ext4, creating files right after many were deleted
    spends most of its time in the inode allocator (perf: find_inode_bit,
    recently_deleted), and how much depends on what was deleted before: fresh
    directories alone do not give every contender the same disk."""

    def __init__(self, root: Path, size: int):
        self.root, self.size, self.n, self.mounted = root, size, 0, []

    def __call__(self) -> Path:
        self.n += 1
        image, mnt = self.root / f"fs-{self.n}.img", self.root / f"fs-{self.n}"
        with open(image, "wb") as f:
            f.truncate(self.size)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
        mnt.mkdir()
        subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
        self.mounted.append(mnt)
        return mnt

    def close(self) -> None:
        for mnt in self.mounted:
            subprocess.run(["umount", str(mnt)], check=False)
        self.mounted.clear()


def run_timed(argv: list[str], cwd: Path | None = None, ok=(0,)) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user+sys) of a command and every child it waited
    for (rsync's receiver, the `sync` after it, the one-file binary's child), from wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        raise AssertionError(f"{argv[0]} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def drop_caches() -> None:
    """Nothing dirty, then page cache, dentries and inodes dropped (needs root)."""
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except PermissionError:
        pytest.fail("the benches drop the page cache before every timed copy: run as root")


def warm(root: Path) -> None:
    """Read every file under root once: its data and metadata are then in memory."""
    buf = bytearray(MiB)
    for d, _, names in os.walk(root):
        for n in names:
            with open(os.path.join(d, n), "rb", buffering=0) as f:
                while f.readinto(buf):
                    pass


def interleaved(tools: list[str], rounds: int):
    """(round, tool) in running order: each round runs every tool once, and each round
    starts one tool later, so with rounds = len(tools) every tool runs first, second, ...
    once and order effects (writeback of the previous copy, a warmer disk) cancel."""
    for r in range(rounds):
        k = r % len(tools)
        for tool in tools[k:] + tools[:k]:
            yield r, tool


def summarise(runs: dict[str, list[tuple[float, float]]], files: int, total: int,
              baseline: str, label: str, first: str = "files/s") -> dict[str, dict]:
    """Figures per tool from its (wall s, CPU s) runs: medians over the rounds (files/s and
    MB/s from the median wall), CPU µs per file, and files/s and CPU relative to baseline.
    `first` is printed first (the table's fastsync/this ratio is taken on it)."""
    out = {}
    for tool, pairs in runs.items():
        wall, cpu = median([w for w, _ in pairs]), median([c for _, c in pairs])
        rates = {"files/s": files / wall, "MB/s": total / wall / MB}
        out[tool] = {first: rates[first], **rates, "wall s": wall,
                     "wall min-max": f"{min(w for w, _ in pairs):.2f}-"
                                     f"{max(w for w, _ in pairs):.2f}",
                     "CPU s": cpu, "CPU µs/file": cpu / files * 1e6}
    base = out[baseline]
    for figures in out.values():
        figures[f"files/s / {label}"] = figures["files/s"] / base["files/s"]
        figures[f"CPU / {label}"] = figures["CPU s"] / base["CPU s"] if base["CPU s"] else 0.0
    return out


def fastsync_cmd() -> list[str]:
    binary = os.environ.get("FASTSYNC_BIN")
    return [binary] if binary else [sys.executable, "-m", "fastsync"]


def median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]
