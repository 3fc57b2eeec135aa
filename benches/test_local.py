"""fastsync beside `cp -a` and `rsync -a` on local disk: same data, same run.

Three trees: large files (4 x 512 MiB), a mixed tree (64 files, 4 KiB to 256 MiB in a
geometric ladder) and a small-file tree (20,000 files of 1-64 KiB in 200 directories).
fastsync flushes what it writes before it reports a file done, so `cp -a` is timed
together with a `sync`; rsync is timed as is (rsync -a does not flush) and once more with
a `sync` after it. Each round copies into a fresh directory after a `sync` (not timed);
the source stays in the page cache for every tool alike. Figures are medians of the
rounds; CPU seconds are user + system of the tool and its children.
"""

import random
import shutil
import subprocess

import pytest

from .conftest import (MB, MiB, Fresh, fastsync_cmd, make_tree, median, report, run_timed,
                       tree_size)

ROUNDS = 3


def large():
    return [(f"large/f{i}.bin", 512 * MiB) for i in range(4)]


def mixed():
    n = 64
    return [(f"mixed/d{i % 5}/f{i:02d}.bin", int(4096 * 65536 ** (i / (n - 1))))
            for i in range(n)]


def small():
    rng = random.Random(7)
    return [(f"small/a{i % 20:02d}/b{i // 20 % 10}/f{i:05d}.dat", rng.randint(1024, 65536))
            for i in range(20_000)]


PROFILES = {"large": ("large 4 x 512 MiB", large),
            "mixed": ("mixed 64 files 4 KiB-256 MiB", mixed),
            "small": ("small 20,000 files 1-64 KiB", small)}
TOOLS = ["fastsync sha256", "cp -a + sync", "rsync -a", "rsync -a + sync"]


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
    if tool.startswith("fastsync"):
        return [*fastsync_cmd(), "-q", "--db", str(work / "c.db"), "--log",
                str(work / "a.log"), str(src), str(dst)]
    if tool == "cp -a + sync":
        return ["sh", "-c", f"cp -a '{src}/.' '{dst}/' && sync"]
    if tool == "rsync -a":
        return ["rsync", "-a", f"{src}/", f"{dst}/"]
    return ["sh", "-c", f"rsync -a '{src}/' '{dst}/' && sync"]


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("profile", list(PROFILES))
def test_local_copy(benchmark, trees, profile, tool):
    if "rsync" in tool and shutil.which("rsync") is None:
        pytest.fail("rsync is not installed: apt-get install rsync")
    root, get = trees
    src, total, nfiles = get(profile)
    fresh = Fresh(root, f"{profile}-{tool.split()[0]}-{len(tool)}")
    walls, cpus, copied, last = [], [], [], []

    def setup():
        # the previous round's copy is checked and deleted before this round (untimed)
        if last:
            copied.append(tree_size(last[0])[1])
            shutil.rmtree(last.pop())
        dst, work = fresh(), fresh()
        last.append(dst)
        subprocess.run(["sync"], check=True)
        return (dst, work), {}

    def once(dst, work):
        wall, cpu = run_timed(command(tool, src, dst, work))
        walls.append(wall)
        cpus.append(cpu)

    benchmark.pedantic(once, setup=setup, rounds=ROUNDS, warmup_rounds=0)
    setup()
    wall = median(walls)
    assert copied == [total] * ROUNDS, f"{tool} copied {copied} of {total} bytes"
    figures = {"MB/s": total / wall / MB, "files/s": nfiles / wall, "CPU s": median(cpus),
               "wall s": wall}
    report(f"local {PROFILES[profile][0]} (median of {ROUNDS})", tool, **figures)
    benchmark.extra_info.update({k: round(v, 2) for k, v in figures.items()})
