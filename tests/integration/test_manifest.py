"""`fastsync manifest` after real syncs, checked by coreutils' own sha256sum, md5sum,
sha1sum and b2sum against the real DST: awkward names (spaces, newline, backslash,
carriage return, not UTF-8, `-`), several algorithms in one catalog, stdout, and a
manifest taken while a run holds the catalog."""

import os
import shutil
import signal
import sqlite3
import subprocess

import pytest

from fastsync.catalog import from_db

from ..conftest import command, temporaries, wait_for, write

TOOLS = {"md5": "md5sum", "sha1": "sha1sum", "sha256": "sha256sum", "blake2b": "b2sum"}
NAMES = [b"plain.txt", b"with space", b"nl\nin name", b"back\\slash", b"cr\rin name",
         b"not utf8 \xff\xfe", b"-", b" leading space", b"*star", b"sub/dir/deep.bin",
         b"sub/both \\ and \n"]

pytestmark = pytest.mark.skipif(shutil.which("sha256sum") is None,
                                reason="coreutils' sha256sum is not installed")


def manifest(fastsync, pair, *extra, check=0):
    return fastsync("manifest", "--db", str(pair.db), *extra, check=check)


def odd_tree(pair) -> None:
    for i, name in enumerate(NAMES):
        write(os.path.join(os.fsencode(pair.src), name), os.urandom(100 + i * 997))
    os.symlink("plain.txt", pair.src / "link")          # not a file: not in a manifest
    os.mkdir(pair.src / "empty-dir")


def check_with(tool: str, manifest_path, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([tool, "-c", os.fspath(manifest_path)], cwd=cwd,
                          capture_output=True)


def coreutils_lines(tool: str, dst) -> bytes:
    """What the tool itself writes for each file, run in DST, in the catalog's order."""
    out = b""
    for name in sorted(NAMES, key=lambda n: n.decode("utf-8", "surrogateescape")
                       if _utf8(n) else "\U0010ffff" + n.decode("latin-1")):
        arg = b"./-" if name == b"-" else name
        out += subprocess.run([tool, "--", arg], cwd=dst, capture_output=True,
                              check=True).stdout
    return out


def _utf8(name: bytes) -> bool:
    try:
        name.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_sha256sum_checks_every_file_at_dst(fastsync, pair):
    odd_tree(pair)
    fastsync(*pair.args())
    proc = manifest(fastsync, pair)
    path = pair.root / "manifest.sha256"
    assert f"{len(NAMES)} sha256 hashes written to manifest.sha256" in proc.stderr.decode()
    assert f"sha256sum -c {path}" in proc.stderr.decode()
    data = path.read_bytes()
    # byte for byte what sha256sum writes for those names: escapes included
    assert data == coreutils_lines("sha256sum", pair.dst)
    assert data.count(b"\n") == len(NAMES) and b"link" not in data
    escaped = [line for line in data.splitlines() if line.endswith(b"  nl\\nin name")]
    assert len(escaped) == 1 and escaped[0].startswith(b"\\")
    assert b"  not utf8 \xff\xfe\n" in data and b"  ./-\n" in data
    ok = check_with("sha256sum", path, pair.dst)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count(b": OK\n") == len(NAMES)
    # the check is real: one changed byte at DST fails it, naming that file
    with open(pair.dst / "with space", "r+b") as f:
        f.write(b"!")
    bad = check_with("sha256sum", path, pair.dst)
    assert bad.returncode == 1
    assert b"with space: FAILED\n" in bad.stdout
    assert bad.stdout.count(b": OK\n") == len(NAMES) - 1


@pytest.mark.parametrize("algo", ["md5", "sha1", "blake2b"])
def test_each_algorithm_is_checked_by_its_coreutils_tool(fastsync, pair, algo):
    if shutil.which(TOOLS[algo]) is None:
        pytest.skip(f"{TOOLS[algo]} is not installed")
    odd_tree(pair)
    fastsync(*pair.args("--checksum", algo))
    manifest(fastsync, pair)
    path = pair.root / f"manifest.{algo}"
    assert path.read_bytes() == coreutils_lines(TOOLS[algo], pair.dst)
    ok = check_with(TOOLS[algo], path, pair.dst)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count(b": OK\n") == len(NAMES)


def test_several_algorithms_make_one_manifest_each(fastsync, pair):
    for i in range(6):
        write(pair.src / f"f{i}", os.urandom(1000 + i))
    fastsync(*pair.args("--checksum", "md5"))
    write(pair.src / "f0", b"changed since")
    write(pair.src / "added", b"new")
    fastsync(*pair.args("--checksum", "blake2b"))
    algos = {r["hash_algo"]: r["n"] for r in pair.rows(
        "SELECT hash_algo, count(*) AS n FROM files WHERE kind = 'file' GROUP BY 1")}
    assert algos == {"md5": 5, "blake2b": 2}
    out = pair.root / "out" / "hashes"
    out.parent.mkdir()
    manifest(fastsync, pair, "--output", str(out))
    assert sorted(os.listdir(out.parent)) == ["hashes.blake2b", "hashes.md5"]
    for algo, count in algos.items():
        ok = check_with(TOOLS[algo], f"{out}.{algo}", pair.dst)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.count(b": OK\n") == count
    # whole lines: "f0" alone could be part of a hex digest
    assert b"  f0\n" in (out.parent / "hashes.blake2b").read_bytes()
    assert b"  f0\n" not in (out.parent / "hashes.md5").read_bytes()
    proc = manifest(fastsync, pair, "--output", "-", check=2)
    assert b"holds 2 algorithms (blake2b, md5)" in proc.stderr and proc.stdout == b""


def test_stdout_and_absolute_paths(fastsync, pair):
    odd_tree(pair)
    fastsync(*pair.args())
    proc = manifest(fastsync, pair, "--output", "-", "--absolute")
    assert os.fsencode(pair.dst) + b"/plain.txt\n" in proc.stdout
    ok = subprocess.run(["sha256sum", "-c", "-"], input=proc.stdout, cwd="/",
                        capture_output=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count(b": OK\n") == len(NAMES)
    assert not os.path.exists("manifest.sha256")


def test_only_synced_files_with_a_hash(fastsync, pair):
    for i in range(4):
        write(pair.src / f"f{i}", os.urandom(2000), mtime_ns=1_600_000_000_000_000_000)
    write(pair.dst / "f0", (pair.src / "f0").read_bytes(), mtime_ns=1_600_000_000_000_000_000)
    fastsync(*pair.args())               # f0 was in sync already: no hash
    with open(pair.dst / "f1", "r+b") as f:
        f.write(b"corrupt")
    os.utime(pair.dst / "f1", ns=(1_600_000_000_000_000_000,) * 2)
    fastsync("verify", "--db", str(pair.db), "--log", str(pair.log), check=1)   # f1 pending
    manifest(fastsync, pair)
    data = (pair.root / "manifest.sha256").read_bytes()
    assert [line.split(b"  ", 1)[1] for line in data.splitlines()] == [b"f2", b"f3"]


def test_a_manifest_is_read_while_a_run_holds_the_catalog(fastsync, pair):
    for i in range(3):
        write(pair.src / f"small{i}", os.urandom(500))
    fastsync(*pair.args())
    for i in range(4):
        write(pair.src / f"big{i}", os.urandom(1 << 20))
    run = subprocess.Popen([*command(), *pair.args("--bwlimit", "1M", "--block-size", "256K")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: temporaries(pair.dst) or run.poll() is not None)
        assert run.poll() is None, run.stderr.read().decode()
        manifest(fastsync, pair)
        assert run.poll() is None              # the run was not disturbed or refused
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(60)
    names = [line.split(b"  ", 1)[1] for line in
             (pair.root / "manifest.sha256").read_bytes().splitlines()]
    assert names[:3] == [b"small0", b"small1", b"small2"]
    assert set(names) <= {b"small0", b"small1", b"small2", b"big0", b"big1", b"big2",
                          b"big3"}
    conn = sqlite3.connect(pair.db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    conn.close()


def test_the_output_never_replaces_the_catalog(fastsync, pair):
    write(pair.src / "f", b"x")
    fastsync(*pair.args())
    before = pair.db.read_bytes()
    for target in (str(pair.db), str(pair.db) + "-wal", str(pair.root)):
        proc = manifest(fastsync, pair, "--output", target, check=2)
        assert proc.stderr.startswith(b"fastsync: error: --output ")
    assert pair.db.read_bytes() == before
    assert [from_db(r["dst_path"]) for r in pair.rows("SELECT dst_path FROM files"
                                                      " WHERE kind = 'file'")] \
        == [os.fsencode(pair.dst / "f")]


def test_nothing_to_write(fastsync, pair):
    write(pair.src / "f", b"x", mtime_ns=1_600_000_000_000_000_000)
    write(pair.dst / "f", b"x", mtime_ns=1_600_000_000_000_000_000)
    fastsync(*pair.args())                           # in sync already: no hash
    proc = manifest(fastsync, pair)
    assert b"no synced file has a hash yet; nothing written" in proc.stderr
    assert not os.path.exists("manifest.sha256")


def test_not_a_catalog(fastsync, pair):
    (pair.root / "x.db").write_bytes(b"hello")
    proc = fastsync("manifest", "--db", str(pair.root / "x.db"), check=2)
    assert b"is not a fastsync catalog" in proc.stderr
    proc = fastsync("manifest", "--db", str(pair.root / "none.db"), check=2)
    assert b"cannot be read: No such file or directory" in proc.stderr
    assert not (pair.root / "none.db").exists()
