"""fastsync beside `rsync -a` and `cp -a` on local disk: same data, same run, same method.

Three trees: large files (4 x 512 MiB), a mixed tree (64 files, 4 KiB to 256 MiB in a
geometric ladder) and small files (FASTSYNC_BENCH_SMALL_FILES, default 20,000, of
1-16 KiB in 200 directories).

The method is the same for every contender:
- every copy goes somewhere never written before, and nothing is deleted until every
  timing is done. Small files: a new ext4 filesystem of its own per copy (a loop image,
  mkfs defaults, journal on), because on this journal-less root ext4 creating files after
  many were deleted spends most of its time in the inode allocator, by an amount that
  depends on what was deleted before (conftest.FreshFilesystem). Large and mixed files:
  a fresh directory on the root disk, because a loop device turns O_DIRECT writes (what
  fastsync uses for large files on a local disk) into synchronous writes of the backing
  file, which no real disk does (measured: fastsync 0.73 of `cp -a` + `sync` there, 2.1
  on the root disk); with a few dozen files the allocator effect does not arise;
- before each copy, untimed: `sync`, drop the page, dentry and inode caches, then read the
  whole source once; every copy starts with the source in memory and nothing dirty;
- fastsync (default options: sha256, 2 streams) makes its copy durable itself before it
  records a file done; `rsync -a` and `cp -a` are timed together with a `sync`;
- rounds are interleaved, each round starting one contender later
  (FASTSYNC_BENCH_ROUNDS, default 3: each contender runs first, second and third once);
- every copy is checked (files and bytes), untimed, right after it is made.

Figures: medians over the rounds of wall seconds (files/s and MB/s from it) and CPU
seconds (user + system of the contender and every child it waited for, from wait4; the
kernel's flusher threads that write back for `sync` are not in it, the writeback that
fastsync's own fsync/syncfs does in its thread is), CPU µs per file, and files/s and CPU
relative to `rsync -a` + `sync`.
"""

import os
import random
import shutil

import pytest

from .conftest import (MiB, Fresh, FreshFilesystem, drop_caches, fastsync_cmd, interleaved, make_tree,
                       report, run_timed, summarise, tree_size, warm)

ROUNDS = int(os.environ.get("FASTSYNC_BENCH_ROUNDS", "3"))
SMALL_FILES = int(os.environ.get("FASTSYNC_BENCH_SMALL_FILES", "20000"))
TOOLS = ["fastsync", "rsync -a + sync", "cp -a + sync"]
BASELINE, BASELINE_LABEL = "rsync -a + sync", "rsync+sync"


def large():
    return [(f"large/f{i}.bin", 512 * MiB) for i in range(4)]


def mixed():
    n = 64
    return [(f"mixed/d{i % 5}/f{i:02d}.bin", int(4096 * 65536 ** (i / (n - 1))))
            for i in range(n)]


def small():
    rng = random.Random(7)
    return [(f"small/a{i % 20:02d}/b{i // 20 % 10}/f{i:05d}.dat", rng.randint(1024, 16384))
            for i in range(SMALL_FILES)]


# profile -> (table title, plan, the figure printed first, a fresh filesystem per copy)
PROFILES = {"large": ("large 4 x 512 MiB", large, "MB/s", False),
            "mixed": ("mixed 64 files 4 KiB-256 MiB", mixed, "MB/s", False),
            "small": (f"small {SMALL_FILES:,} files 1-16 KiB", small, "files/s", True)}


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    made = {}

    def get(profile):
        if profile not in made:
            files = PROFILES[profile][1]()
            made[profile] = (root / profile, make_tree(root, files), len(files))
        return made[profile]
    yield root, get
    shutil.rmtree(root, ignore_errors=True)


def command(tool, src, dst, work):
    if tool == "fastsync":
        return [*fastsync_cmd(), "-q", "--db", str(work / "c.db"), "--log",
                str(work / "a.log"), str(src), str(dst)]
    if tool == "cp -a + sync":
        return ["sh", "-c", f"cp -a '{src}/.' '{dst}/' && sync"]
    return ["sh", "-c", f"rsync -a '{src}/' '{dst}/' && sync"]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_local_copy(trees, profile):
    if shutil.which("rsync") is None:
        pytest.fail("rsync is not installed: apt-get install rsync")
    root, get = trees
    src, total, nfiles = get(profile)
    title, _, first, own_fs = PROFILES[profile]
    runs_dir = root / f"{profile}-runs"
    runs_dir.mkdir()
    fresh = Fresh(runs_dir, "run")
    filesystems = FreshFilesystem(runs_dir, total + total // 2 + 512 * MiB)
    runs = {tool: [] for tool in TOOLS}
    try:
        for _, tool in interleaved(TOOLS, ROUNDS):
            dst, work = (filesystems() if own_fs else fresh()), fresh()
            drop_caches()
            warm(src)
            runs[tool].append(run_timed(command(tool, src, dst, work)))
            copied = tree_size(dst)
            assert copied == (nfiles, total), f"{tool} copied {copied}, not {(nfiles, total)}"
    finally:
        filesystems.close()
    # every timing is done: only now are the copies deleted
    shutil.rmtree(runs_dir)
    medium = "a fresh ext4 each" if own_fs else "fresh dirs on the root disk"
    group = f"local {title} (median of {ROUNDS}, interleaved, {medium})"
    for tool, figures in summarise(runs, nfiles, total, BASELINE, BASELINE_LABEL,
                                   first).items():
        report(group, tool, **figures)
