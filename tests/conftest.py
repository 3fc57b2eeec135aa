"""Shared fixtures: real trees on disk, the real CLI (in-process or as a subprocess, and
the built binary when FASTSYNC_BIN points at it), and helpers to compare trees exactly."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Each test runs in its own directory (default catalog and log land there) with
    the signal handlers and the fastsync logger restored afterwards."""
    monkeypatch.chdir(tmp_path)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in handlers.items():
        signal.signal(s, h)


@dataclass
class Pair:
    root: Path
    src: Path
    dst: Path

    @property
    def db(self) -> Path:
        return self.root / "catalog.db"

    @property
    def log(self) -> Path:
        return self.root / "audit.log"

    def args(self, *extra: str) -> list[str]:
        return ["--db", str(self.db), "--log", str(self.log), *extra, str(self.src),
                str(self.dst)]

    def audit(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text("utf-8").splitlines()]

    def rows(self, sql: str = "SELECT * FROM files", params=()) -> list[sqlite3.Row]:
        conn = sqlite3.connect(self.db)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


@pytest.fixture
def pair(tmp_path) -> Pair:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    return Pair(tmp_path, src, dst)


def write(path: Path | bytes, data: bytes = b"", mtime_ns: int | None = None) -> None:
    p = os.fsencode(path)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    if mtime_ns is not None:
        os.utime(p, ns=(mtime_ns, mtime_ns))


def make_tree(root: Path, seed: int = 1, files: int = 40, max_size: int = 300_000) -> dict:
    """A reproducible tree of random files in nested directories; returns {rel: bytes}."""
    rng = random.Random(seed)
    made = {}
    for i in range(files):
        depth = rng.randint(0, 3)
        rel = "/".join(f"d{rng.randint(0, 3)}" for _ in range(depth)) + f"/f{i:03d}.bin"
        rel = rel.lstrip("/")
        size = rng.choice([0, 1, 100, 4096, rng.randint(1, max_size)])
        data = rng.randbytes(size)
        write(root / rel, data, mtime_ns=1_600_000_000_000_000_000 + i * 1_000_003_007)
        made[rel] = data
    return made


def snapshot(root: Path | bytes) -> dict[bytes, tuple]:
    """Everything a copy must preserve, keyed by relative path (bytes): kind, content
    digest or link target, and mtime (ns) for files."""
    root_b = os.fsencode(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root_b):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = path[len(root_b) + 1:]
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", st.st_mtime_ns)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    out[rel] = ("file", hashlib.sha256(f.read()).hexdigest(), st.st_mtime_ns)
            else:
                out[rel] = ("special",)
    return out


def assert_same_tree(src: Path, dst: Path) -> None:
    want = {k: v for k, v in snapshot(src).items() if v[0] != "special"}
    got = snapshot(dst)
    assert got == want


def temporaries(root: Path) -> list[bytes]:
    return [os.path.join(d, n) for d, _, names in os.walk(os.fsencode(root)) for n in names
            if n.startswith(b".fastsync-")]


# ------------------------------------------------------------------ running it --

def command() -> list[str]:
    return [sys.executable, "-m", "fastsync"]


def pytest_generate_tests(metafunc):
    """`fastsync` runs the CLI as a subprocess: from source, and also as the built
    one-file binary when FASTSYNC_BIN names it (CI sets it after build.sh)."""
    if "fastsync" in metafunc.fixturenames:
        params = ["module"] + (["binary"] if os.environ.get("FASTSYNC_BIN") else [])
        metafunc.parametrize("fastsync", params, indirect=True)


class Runner:
    def __init__(self, argv0: list[str]):
        self.argv0 = argv0

    def __call__(self, *args: str, check: int | None = 0, timeout: float = 120,
                 env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.argv0, *args], capture_output=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
        if check is not None:
            assert proc.returncode == check, (proc.returncode, proc.stderr.decode())
        return proc

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([*self.argv0, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)


@pytest.fixture
def fastsync(request) -> Runner:
    if request.param == "binary":
        return Runner([os.environ["FASTSYNC_BIN"]])
    return Runner(command())


def wait_for(predicate, timeout: float = 30.0, every: float = 0.02) -> None:
    """Poll until predicate() is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)
