"""The whole tool on large local files, beside cp and rsync on the same data, in one run.

fastsync flushes what it writes before it reports a file done, so `cp -a` is timed
together with a `sync`; rsync is shown as is (rsync -a does not flush). Each round
copies into a fresh directory; the source stays in the page cache for every tool alike.
The ratio line at the end is fastsync's MB/s over each peer's.
"""

import shutil

import pytest

from .conftest import MB, MiB, Fresh, fastsync_cmd, make_files, run_timed

SIZES = [256 * MiB] * 4      # 1 GiB in four large files
ROUNDS = 3
RESULTS: dict[str, tuple[float, float]] = {}


@pytest.fixture(scope="module")
def source(scratch):
    src = scratch / "large-src"
    src.mkdir()
    return src, make_files(src, SIZES)


def tools(src, dst, scratch, n):
    db, log = scratch / f"c{n}.db", scratch / f"a{n}.log"
    return {
        "fastsync sha256": [*fastsync_cmd(), "-q", "--db", str(db), "--log", str(log),
                            str(src), str(dst)],
        "cp -a + sync": ["sh", "-c", f"cp -a '{src}/.' '{dst}/' && sync"],
        "rsync -a": ["rsync", "-a", f"{src}/", f"{dst}/"],
    }


@pytest.mark.parametrize("tool", ["fastsync sha256", "cp -a + sync", "rsync -a"])
def test_large_files(benchmark, scratch, source, tool):
    if tool == "rsync -a" and shutil.which("rsync") is None:
        pytest.fail("rsync is not installed: apt-get install rsync")
    src, total = source
    fresh = Fresh(scratch, tool.split()[0])
    cpu = []

    def once():
        dst = fresh()
        wall, used = run_timed(tools(src, dst, scratch, fresh.n)[tool])
        cpu.append(used)
        shutil.rmtree(dst)
        return wall

    benchmark.pedantic(once, rounds=ROUNDS, warmup_rounds=0)
    rate = total / benchmark.stats.stats.median / MB
    RESULTS[tool] = (rate, sorted(cpu)[len(cpu) // 2])
    benchmark.extra_info.update({"MB/s": round(rate, 1), "cpu_s": round(RESULTS[tool][1], 2)})


def test_report_ratios():
    """Prints the comparison (runs after the three benches above)."""
    assert RESULTS, "run the whole module: pytest benches/test_pipeline.py"
    ours = RESULTS["fastsync sha256"][0]
    print("\nlarge files, 4 x 256 MiB, median of 3 rounds:")
    for tool, (rate, cpu) in RESULTS.items():
        print(f"  {tool:16s} {rate:8.1f} MB/s  {cpu:6.2f} CPU s  fastsync/this = "
              f"{ours / rate:5.2f}")
