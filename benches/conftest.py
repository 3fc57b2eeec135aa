"""Shared bench helpers. Benches are not part of the test run; the whole suite runs with
one command (README, "Performance"):

    ./build.sh && FASTSYNC_BIN=dist/fastsync .venv/bin/python -m pytest benches -s

Every bench adds rows to one table, printed at the end with each peer's figure beside
fastsync's and the ratio. MB = 10**6 bytes. The network-share benches run only when the
testbed (../shared/testbed) is up; they say so when skipped.
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


def cpu_seconds() -> float:
    t = os.times()
    return t.children_user + t.children_system


def run_timed(argv: list[str], cwd: Path | None = None, ok=(0,)) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user+sys) of a command and its children."""
    before = cpu_seconds()
    start = time.perf_counter()
    rc = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL).returncode
    if rc not in ok:
        raise AssertionError(f"{argv[0]} exited {rc}")
    return time.perf_counter() - start, cpu_seconds() - before


def fastsync_cmd() -> list[str]:
    binary = os.environ.get("FASTSYNC_BIN")
    return [binary] if binary else [sys.executable, "-m", "fastsync"]


def median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]
