"""Shared bench helpers. Benches are not part of the test run: `pytest benches`
(see README, "Performance"). Results print as MB/s (10**6 bytes/s) with ratios."""

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

MB = 1_000_000
MiB = 1024 * 1024


@pytest.fixture(scope="session")
def scratch(tmp_path_factory):
    """A directory on the same disk as the repository's temporary files; each bench
    writes into fresh subdirectories (this machine's ext4 is slow to reuse freed space)."""
    path = tmp_path_factory.mktemp("bench")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_files(root: Path, sizes: list[int], seed: int = 0) -> int:
    rng = random.Random(seed)
    chunk = rng.randbytes(4 * MiB)
    total = 0
    for i, size in enumerate(sizes):
        path = root / f"d{i % 4}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            left = size
            while left:
                n = min(left, len(chunk))
                # vary every chunk so no filesystem can deduplicate or compress it
                f.write(rng.randbytes(16) + chunk[16:n] if n > 16 else chunk[:n])
                left -= n
        total += size
    subprocess.run(["sync"], check=True)
    return total


class Fresh:
    """Hands out new empty directories: dst-1, dst-2, ..."""

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


def run_timed(argv: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user+sys) of a command and its children."""
    before = cpu_seconds()
    start = time.perf_counter()
    subprocess.run(argv, check=True, cwd=cwd, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start, cpu_seconds() - before


def fastsync_cmd() -> list[str]:
    binary = os.environ.get("FASTSYNC_BIN")
    return [binary] if binary else [sys.executable, "-m", "fastsync"]
