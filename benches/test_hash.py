"""Single-core throughput of each checksum as the reader computes it: hashlib fed 5 MiB
blocks straight from the preallocated pool (no copies). This is the ceiling for a copy
with that checksum on one core."""

import hashlib
import os

import pytest

from fastsync import _core

from .conftest import MB, MiB, report

BLOCK = 5 * MiB
BLOCKS = 40          # 200 MiB per round


@pytest.fixture(scope="module")
def pool():
    pool = _core.BlockPool(BLOCKS, BLOCK)
    for i in range(BLOCKS):
        pool.view(i)[:] = os.urandom(BLOCK)
    return pool


@pytest.mark.parametrize("algo", ["md5", "sha1", "sha256", "blake2b"])
def test_hash_throughput(benchmark, pool, algo):
    views = [pool.view(i) for i in range(BLOCKS)]

    def digest():
        h = hashlib.new(algo)
        for v in views:
            h.update(v)
        return h.hexdigest()

    benchmark.pedantic(digest, rounds=5, warmup_rounds=1)
    rate = BLOCK * BLOCKS / benchmark.stats.stats.median / MB
    benchmark.extra_info["MB/s"] = round(rate, 1)
    report("hash ceiling, one core, 5 MiB blocks (median of 5)", algo, **{"MB/s": rate})
