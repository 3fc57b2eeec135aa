"""Times end to end (README "Times"): every time the filesystem accepts reaches DST and
the catalog exactly (negative, fractional, near the catalog's limits; atime and mtime;
files, directories, links); a time the catalog cannot hold fails its entry with a clear
message on every run and is never marked synced; a DST that keeps mtimes coarsely
(FAT's 2 s, 1 s on ext4 with small inodes) settles after one run."""

import os
import shutil
import subprocess
from types import SimpleNamespace

import pytest

from fastsync import _core, scan as scan_module
from fastsync.cli import main
from fastsync.errors import EXIT_OK, EXIT_PARTIAL

from ..conftest import write

Y2300 = 10_413_792_000 * 10**9      # 2300-01-01T00:00:00Z: beyond int64 ns, within ext4
LAST_NS = 2**63 - 2                 # the last time the catalog records (2**63 - 1 is DST's
                                    # "beyond the catalog")
LIMITS = "is outside what the catalog records (1677-09-21 .. 2262-04-11)"

# (atime, mtime) in ns for each entry: before, across and after the epoch, with every
# digit of the nanoseconds significant, up to the last one the catalog records.
FILES = {
    "neg.bin": (-1, -1_500_000_000),          # 1969-12-31T23:59:59.999999999Z, 23:59:58.5Z
    "y1901.bin": (-2_147_472_000_000_000_001, -2_147_471_999_123_456_789),   # 1901-12-14
    "frac.bin": (1_234_567_890_123_456_789, 1_600_000_000_987_654_321),
    "y2200.bin": (7_258_118_400_987_654_321, 7_258_118_400_123_456_789),
    "last.bin": (LAST_NS, LAST_NS),       # 2262-04-11T23:47:16.854775806Z
    "d/inner.bin": (-2_000_000_000_000_000_001, 3),               # 1906
}
DIRS = {"d": (-3_000_000_001, 7_000_000_000_000_000_001)}
# The link's atime is later than its ctime: reading the target (which the copy must do)
# moves an atime older than the ctime to now under relatime, as it would for any reader.
LINKS = {"link": (7_100_000_000_000_000_007, -987_654_321_000_000_001)}


def set_times(path, times: tuple[int, int]) -> None:
    os.utime(path, ns=times, follow_symlinks=False)


def lstat_times(path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_atime_ns, st.st_mtime_ns


def keeps(directory, times: tuple[int, int]) -> bool:
    """Does the filesystem of `directory` keep these times exactly?"""
    probe = os.path.join(directory, "probe")
    write(probe)
    try:
        set_times(probe, times)
        return lstat_times(probe) == times
    except OSError:
        return False
    finally:
        os.unlink(probe)


def row(pair, rel: str):
    rows = pair.rows("SELECT * FROM files WHERE src_path = ?", (str(pair.src / rel),))
    return rows[0] if rows else None


def copies(pair, run: int) -> list[dict]:
    return [e for e in pair.audit() if e["op"] in ("copy", "link") and e["run"] == run]


def files_copied(pair, run: int) -> int:
    return pair.rows("SELECT files_copied FROM runs WHERE id = ?", (run,))[0][0]


def scan_failures(pair) -> list[dict]:
    return [e for e in pair.audit() if e["op"] == "scan" and e["status"] == "failed"]


# ------------------------------------------------------------------ exact times --

def make_timed_tree(src) -> dict[str, tuple[int, int]]:
    for rel in FILES:
        write(src / rel, rel.encode())
    for rel in LINKS:
        os.symlink("anywhere", src / rel)
    wanted = {**FILES, **LINKS, **DIRS}
    for rel, times in wanted.items():      # directories last: their content moves them
        set_times(src / rel, times)
    return wanted


@pytest.mark.parametrize("ns", [Y2300 + 123_456_789, 2**63, 2**63 - 1, -1_500_000_000,
                                -2**31 * 10**9, 9_223_372_035_999_999_999,
                                15_032_385_534_999_999_999])   # near ext4's first and last
def test_stat_gives_any_time_exactly_in_nanoseconds(tmp_path, ns):
    """_core's statx times are exact even where ns overflow 64 bits (once they wrapped:
    2300-01-01 became 1715, which ext4 then stored as 1901)."""
    write(tmp_path / "f")
    try:
        os.utime(tmp_path / "f", ns=(ns, ns))
    except OSError:
        pytest.skip("the test directory's filesystem refuses this time")
    want = os.stat(tmp_path / "f").st_mtime_ns
    if want != ns:
        pytest.skip("the test directory's filesystem does not keep this time")
    st = _core.lstat(os.fsencode(tmp_path / "f"))
    assert (st[2], st[3]) == (ns, ns)


def test_every_time_the_filesystem_accepts_reaches_dst_and_the_catalog_exactly(pair):
    if not all(keeps(pair.root, t) for t in (*FILES.values(), *DIRS.values())):
        pytest.skip("the test directory's filesystem does not keep these times")
    wanted = make_timed_tree(pair.src)
    assert main(pair.args()) == EXIT_OK
    for rel, times in wanted.items():
        assert lstat_times(pair.dst / rel) == times, rel
        r = row(pair, rel)
        assert (r["accessed"], r["modified"], r["status"]) == (*times, "synced"), rel
    # A second run finds everything in sync and copies nothing.
    assert main(pair.args()) == EXIT_OK
    assert copies(pair, run=2) == [] and files_copied(pair, 2) == 0
    for rel in FILES:
        assert lstat_times(pair.dst / rel) == FILES[rel], rel


# ------------------------------------------------------ beyond what is recorded --

def test_a_time_beyond_the_catalog_fails_the_entry_on_every_run(pair, capsys):
    if not keeps(pair.root, (Y2300, Y2300)):
        pytest.skip("the test directory's filesystem does not keep 2300-01-01")
    write(pair.src / "ok.bin", b"fine", mtime_ns=1_600_000_000_000_000_000)
    write(pair.src / "future.bin", b"from 2300", mtime_ns=Y2300)
    write(pair.src / "read-later.bin", b"atime", mtime_ns=1)
    os.utime(pair.src / "read-later.bin", ns=(Y2300 + 5, 1))
    write(pair.src / "late" / "inside.bin", b"its content is copied", mtime_ns=7)
    os.utime(pair.src / "late", ns=(0, Y2300))
    os.symlink("anywhere", pair.src / "late-link")
    set_times(pair.src / "late-link", (0, Y2300))
    for run in (1, 2):
        assert main(pair.args()) == EXIT_PARTIAL, run
        err = capsys.readouterr().err
        assert f"modification time 2300-01-01T00:00:00Z {LIMITS}" in err
        assert f"access time 2300-01-01T00:00:00.000000005Z {LIMITS}" in err
        failed = {e["src"]: e["error"] for e in scan_failures(pair) if e["run"] == run}
        assert set(failed) == {str(pair.src / p) for p in
                               ("future.bin", "read-later.bin", "late", "late-link")}
        assert failed[str(pair.src / "future.bin")] == (
            f"modification time 2300-01-01T00:00:00Z {LIMITS}; not copied")
        for rel in ("future.bin", "read-later.bin", "late", "late-link"):
            assert row(pair, rel) is None, rel             # never recorded, never synced
            assert not (pair.dst / rel).exists() or rel == "late", rel
        assert (pair.dst / "late" / "inside.bin").read_bytes() == b"its content is copied"
        assert os.stat(pair.dst / "late" / "inside.bin").st_mtime_ns == 7
        assert row(pair, "ok.bin")["status"] == "synced"
    assert files_copied(pair, 2) == 0


def test_the_dst_copy_of_such_an_entry_is_not_deleted_as_an_extra(pair):
    if not keeps(pair.root, (Y2300, Y2300)):
        pytest.skip("the test directory's filesystem does not keep 2300-01-01")
    write(pair.src / "future.bin", b"new", mtime_ns=Y2300)
    write(pair.dst / "future.bin", b"an older copy", mtime_ns=1_500_000_000_000_000_000)
    write(pair.dst / "extra.bin", b"x")
    assert main(pair.args("--delete-extras", "--max-delete", "1")) == EXIT_PARTIAL
    assert (pair.dst / "future.bin").read_bytes() == b"an older copy"
    assert os.stat(pair.dst / "future.bin").st_mtime_ns == 1_500_000_000_000_000_000
    assert not (pair.dst / "extra.bin").exists()


def test_a_dst_time_beyond_the_catalog_never_counts_as_in_sync(pair):
    """DST's 2300 is stored as a sentinel that matches no source time, so the source
    is copied over it (storing 2300 itself would stop the scan: SQLite holds 64 bits)."""
    if not keeps(pair.root, (Y2300, Y2300)):
        pytest.skip("the test directory's filesystem does not keep 2300-01-01")
    write(pair.src / "f.bin", b"same size", mtime_ns=LAST_NS)
    write(pair.dst / "f.bin", b"SAME SIZE", mtime_ns=Y2300)
    assert main(pair.args()) == EXIT_OK
    assert (pair.dst / "f.bin").read_bytes() == b"same size"
    assert os.stat(pair.dst / "f.bin").st_mtime_ns == LAST_NS
    assert row(pair, "f.bin")["status"] == "synced"


def test_the_dst_sentinel_matches_no_source_time_at_any_granularity(pair):
    """Straight on the catalog, at FAT's 2 s window: DST's "beyond the catalog" never
    matches, not even the last recorded nanosecond; and the extreme DST time against a
    source at 0 (a difference of exactly -2**63, whose abs() SQLite cannot take) is no
    error."""
    from fastsync.catalog import Catalog
    from fastsync.times import DST_TIME_UNKNOWN, TIME_MAX_NS, TIME_MIN_NS
    window = 2 * 10**9
    cases = [(DST_TIME_UNKNOWN, TIME_MAX_NS), (DST_TIME_UNKNOWN, TIME_MIN_NS),
             (DST_TIME_UNKNOWN, 0), (TIME_MIN_NS, 0)]       # (DST mtime, SRC mtime)
    dest = [(str(pair.dst / f"f{i}"), "file", 1, d, None) for i, (d, _) in enumerate(cases)]
    srcs = [(str(pair.src / f"f{i}"), str(pair.dst / f"f{i}"), "file", 1, None, 0, s, 0,
             0o644, 0, 0, None, 0) for i, (_, s) in enumerate(cases)]
    cat = Catalog.open(str(pair.db), os.fsencode(pair.src), os.fsencode(pair.dst), "t")
    try:
        cat.begin_scan()
        assert tuple(cat.add_source(srcs, window)) == (0, 0)
        assert tuple(cat.add_dest(dest, window)) == (0, 0)
        cat.finish_scan(window)
    finally:
        cat.close()
    assert [r["status"] for r in pair.rows("SELECT status FROM files")] == ["pending"] * 4


def fake_lstat(index: int, value, name: bytes):
    """_core for the scan, with stat field `index` of `name` replaced by `value`: ctime
    and birth time cannot be set by a user."""
    def lstat(path):
        st = _core.lstat(path)
        if os.path.basename(path) == name:
            st = st[:index] + (value,) + st[index + 1:]
        return st
    return SimpleNamespace(lstat=lstat)


def test_a_change_time_beyond_the_catalog_fails_the_entry(pair, monkeypatch, capsys):
    write(pair.src / "odd.bin", b"x")
    write(pair.src / "ok.bin", b"y")
    monkeypatch.setattr(scan_module, "_core", fake_lstat(4, Y2300, b"odd.bin"))
    assert main(pair.args()) == EXIT_PARTIAL
    assert f"change time 2300-01-01T00:00:00Z {LIMITS}" in capsys.readouterr().err
    assert row(pair, "odd.bin") is None and not (pair.dst / "odd.bin").exists()
    assert row(pair, "ok.bin")["status"] == "synced"


def test_a_birth_time_beyond_the_catalog_is_recorded_as_unknown(pair, monkeypatch):
    """Recorded only, so it stops nothing: the scan records NULL (SQLite would refuse
    the number and stop the run)."""
    write(pair.src / "born.bin", b"x", mtime_ns=5)
    monkeypatch.setattr(scan_module, "_core", fake_lstat(5, -Y2300, b"born.bin"))
    assert main(pair.args()) == EXIT_OK
    assert (pair.dst / "born.bin").read_bytes() == b"x"
    assert row(pair, "born.bin")["status"] == "synced"


# --------------------------------------------------------- coarse destinations --

MKFS = {"vfat": (["mkfs.vfat", "-F", "32"], "dosfstools"),
        "ext4-128": (["mkfs.ext4", "-q", "-F", "-I", "128"], "e2fsprogs")}


def loop_mount(tmp_path, kind: str):
    """A fresh filesystem on a loop device: `vfat` (2 s mtimes, day atimes, 1980..2107)
    or `ext4-128` (128-byte inodes: 1 s, 1901..2038). Skips where that is impossible."""
    if os.geteuid() != 0:
        pytest.skip("mounting a loop device needs root")
    mkfs, package = MKFS[kind]
    if shutil.which(mkfs[0]) is None:
        pytest.skip(f"{mkfs[0]} is not installed (Debian package {package})")
    image, mnt = tmp_path / f"{kind}.img", tmp_path / kind
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    subprocess.run([*mkfs, str(image)], check=True, capture_output=True)
    mnt.mkdir()
    done = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)],
                          capture_output=True)
    if done.returncode != 0:
        reason = (done.stderr.decode().strip().splitlines() or ["?"])[0]
        pytest.skip(f"cannot loop-mount {kind} here: {reason}")
    return mnt


@pytest.fixture(params=[("vfat", 2 * 10**9), ("ext4-128", 10**9)], ids=lambda p: p[0])
def coarse(request, pair, tmp_path):
    kind, window = request.param
    mnt = loop_mount(tmp_path, kind)
    share = mnt / "share"         # a share's folder, not the root of the volume
    share.mkdir()
    yield SimpleNamespace(pair=pair, dst=share, window=window,
                          args=lambda *a: [*pair.args(*a)[:-1], str(share)])
    subprocess.run(["umount", str(mnt)], check=False)


def test_a_coarse_destination_settles_after_one_run(coarse):
    """Odd seconds and fractions (which FAT cannot hold) are in sync at DST's precision:
    the second run copies nothing and the catalog says every row is synced."""
    src = coarse.pair.src
    base = 1_600_000_001_123_456_789                  # 2020-09-13, an odd second
    names = ["a.bin", "b.txt", "sub/c.bin", "sub/deeper/d.bin", "sub/other/e.bin"]
    for i, rel in enumerate(names):
        write(src / rel, os.urandom(1000 + i), mtime_ns=base + i * 1_000_000_007)
    for i, rel in enumerate(["sub/deeper", "sub/other", "sub"]):
        os.utime(src / rel, ns=(base, base + 3_000_000_001 * (i + 1)))
    assert main(coarse.args()) == EXIT_OK
    assert main(coarse.args()) == EXIT_OK
    pair = coarse.pair
    assert files_copied(pair, 1) == len(names) and files_copied(pair, 2) == 0
    assert copies(pair, run=2) == []
    assert pair.rows("SELECT value FROM meta WHERE key = 'dst_mtime_granularity_ns'"
                     )[0][0] == coarse.window
    assert {r["status"] for r in pair.rows()} == {"synced"}
    for rel in [*names, "sub", "sub/deeper", "sub/other"]:
        got, want = os.stat(coarse.dst / rel).st_mtime_ns, os.stat(src / rel).st_mtime_ns
        assert abs(got - want) < coarse.window, rel
        assert (coarse.dst / rel).is_dir() or (coarse.dst / rel).read_bytes() == (
            src / rel).read_bytes()


def test_a_time_dst_cannot_hold_fails_the_file_instead_of_copying_it_every_run(
        pair, tmp_path):
    dst = loop_mount(tmp_path, "ext4-128") / "share"
    dst.mkdir()
    args = [*pair.args()[:-1], str(dst)]
    y2100 = 4_102_444_800 * 10**9
    write(pair.src / "y2100.bin", b"beyond 2038", mtime_ns=y2100)
    write(pair.src / "y2000.bin", b"within", mtime_ns=946_684_800 * 10**9)
    try:
        assert main(args) == EXIT_PARTIAL
        assert main(args) == EXIT_PARTIAL
        assert files_copied(pair, 2) == 0
        assert row(pair, "y2100.bin") is None         # never recorded, never synced
        assert row(pair, "y2000.bin")["status"] == "synced"
        assert sorted(os.listdir(dst)) == ["y2000.bin"]
        told = [r["error"] for r in pair.audit() if r["op"] == "scan"]
        assert len(told) == 2 and all(
            "modification time 2100-01-01T00:00:00Z is outside what DST can hold "
            "(1901-12-13T20:45:52Z .. 2038-01-19T03:14:07Z); not copied" in t for t in told)
    finally:
        subprocess.run(["umount", str(dst.parent)], check=False)
