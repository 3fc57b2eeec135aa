"""A block pool larger than the memory the process may take is refused at startup, in
one line, before the scan (issue 9 item 9): `ulimit -v`, and a memory cgroup."""

import os
import resource
import subprocess
import uuid

import pytest

from ..conftest import assert_same_tree, command, make_tree
from .test_cli import one_line_error

GiB = 1024**3


def _limited(limit: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def test_a_pool_beyond_ulimit_v_is_refused_before_the_scan(pair):
    make_tree(pair.src, files=10)
    proc = subprocess.run([*command(), *pair.args("--block-size", "64M", "--streams", "2")],
                          capture_output=True, timeout=120, preexec_fn=_limited(GiB))
    assert proc.returncode == 2, proc.stderr.decode()
    one_line_error(proc, "--queue-capacity 20 x --block-size 64M with 2 streams needs "
                         "1.5 GiB of buffers, more than the address-space limit (ulimit -v) "
                         "leaves", "lower --block-size or --queue-capacity")
    assert not pair.db.exists() and os.listdir(pair.dst) == []


def test_under_ulimit_v_a_pool_that_fits_copies_everything(pair):
    """The estimate of what the run needs besides the pool (thread stacks) is not so
    large that it refuses what works: 2 GiB of address space, 8 streams, 5 MiB blocks."""
    make_tree(pair.src, files=30)
    proc = subprocess.run([*command(), *pair.args("--streams", "8")], capture_output=True,
                          timeout=120, preexec_fn=_limited(2 * GiB))
    assert proc.returncode == 0, proc.stderr.decode()
    assert_same_tree(pair.src, pair.dst)


@pytest.fixture
def memory_cgroup():
    """A child of this process's memory cgroup (v1 or v2) limited to 400 MiB."""
    if os.geteuid() != 0:
        pytest.skip("creating a cgroup needs root")
    for line in open("/proc/self/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            base, limit_file = "/sys/fs/cgroup/memory" + path, "memory.limit_in_bytes"
            break
    else:
        path = open("/proc/self/cgroup").read().split("0::", 1)[-1].split("\n")[0]
        base, limit_file = "/sys/fs/cgroup" + path, "memory.max"
    group = os.path.join(base, f"fastsync-test-{uuid.uuid4().hex[:8]}")
    try:
        os.mkdir(group)
        with open(os.path.join(group, limit_file), "w") as f:
            f.write(str(400 * 1024**2))
    except OSError as e:
        pytest.skip(f"cannot make a memory cgroup here: {e}")
    yield group
    os.rmdir(group)


def test_a_pool_beyond_the_cgroups_memory_limit_is_refused(pair, memory_cgroup):
    make_tree(pair.src, files=10)
    procs = os.path.join(memory_cgroup, "cgroup.procs")
    proc = subprocess.run(["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", *command(),
                           *pair.args("--block-size", "32M", "--streams", "2")],
                          capture_output=True, timeout=120)
    assert proc.returncode == 2, proc.stderr.decode()
    one_line_error(proc, "needs 768.0 MiB of buffers, more than the memory cgroup's limit "
                         "leaves")
    assert not pair.db.exists()
