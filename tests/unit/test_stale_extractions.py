"""Leftovers of the one-file binary: `_MEI<random>` directories that killed runs left in
the temp directory are removed at start; never the running one, never one a live
process maps, never one being unpacked, never another program's or another user's."""

import mmap
import os
import sys
import time

import pytest

from fastsync import extraction

OLD = time.time() - 3600


def unpacked(tmp, name, *, fastsync=True, age=OLD):
    """A directory laid out like the binary's unpacked copy, last touched at `age`."""
    root = tmp / name
    (root / "fastsync" if fastsync else root / "lib").mkdir(parents=True)
    (root / "libpython3.11.so.1.0").write_bytes(b"\0" * 8192)
    for path in [*root.rglob("*"), root]:
        os.utime(path, (age, age))
    return root


@pytest.fixture
def tmp(tmp_path):
    path = tmp_path / "tmp"
    path.mkdir()
    return path


def test_only_dead_copies_of_fastsync_are_stale(tmp):
    current = unpacked(tmp, "_MEIcurrent")
    stale = unpacked(tmp, "_MEIstale1")
    unpacked(tmp, "_MEIyoung", age=time.time() - 5)         # being unpacked right now
    unpacked(tmp, "_MEIother", fastsync=False)               # another program's
    unpacked(tmp, "not_MEI")
    mapped = unpacked(tmp, "_MEImapped")
    with open(mapped / "libpython3.11.so.1.0", "rb") as f, \
            mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ):   # a live process maps it
        assert extraction.stale_extractions(str(tmp), str(current)) == [str(stale)]
    assert sorted(extraction.stale_extractions(str(tmp), str(current))) == sorted(
        [str(stale), str(mapped)])


def test_the_binary_removes_them_at_start_and_only_when_frozen(tmp, monkeypatch):
    current = unpacked(tmp, "_MEIcurrent", age=OLD)          # even when old itself
    stale = unpacked(tmp, "_MEIstale1")
    monkeypatch.setattr(sys, "_MEIPASS", str(current), raising=False)
    extraction.remove_stale_extractions()                          # not frozen: from source
    assert stale.exists()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    extraction.remove_stale_extractions()
    assert not stale.exists() and current.exists()
