"""Mirror mode's limits, on real trees: --max-delete, the default guard (more than half of
DST extra: nothing deleted) and the dry mode (decides as the real pass, touches nothing).
What is checked is what a user sees: the files left at DST, the result, the audit log
and the catalog's record of DST."""

import json
import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from fastsync.audit import AuditLog
from fastsync.catalog import SCAN_COLUMNS, Catalog, to_db
from fastsync.mirror import SKIPPED_LISTED, mirror
from fastsync.probe import Traits

from ..conftest import Pair, write

KIND = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink"}


class Env:
    """A pair of trees with a real catalog, audit log and run row."""

    def __init__(self, pair: Pair):
        self.pair = pair
        self.src, self.dst = os.fsencode(pair.src), os.fsencode(pair.dst)
        self.cat = Catalog.open(str(pair.db), self.src, self.dst, "t")
        self.audit = AuditLog(str(pair.log))
        self.run = self.cat.start_run("scan", "sha256", "t")

    def close(self):
        self.audit.close()
        self.cat.close()

    def scanned(self) -> None:
        """Record a completed scan of both trees as they are on disk now."""
        cat = self.cat
        cat.begin_scan()
        cat.add_source([self._source_row(p) for p in _walk(self.src)], 1)
        cat.add_dest([self._dest_row(p) for p in _walk(self.dst)], 1)
        cat.finish_scan(1)

    def _source_row(self, path: bytes) -> tuple:
        st = os.lstat(path)
        dst = self.dst + path[len(self.src):]
        values = {"src_path": to_db(path), "dst_path": to_db(dst),
                  "kind": KIND[stat.S_IFMT(st.st_mode)],
                  "size": 0 if stat.S_ISDIR(st.st_mode) else st.st_size,
                  "created": None, "changed": st.st_ctime_ns, "modified": st.st_mtime_ns,
                  "accessed": st.st_atime_ns, "permissions": st.st_mode & 0o7777,
                  "uid": st.st_uid, "gid": st.st_gid,
                  "link_target": os.readlink(path) if stat.S_ISLNK(st.st_mode) else None,
                  "priority": 0}
        return tuple(values[c] for c in SCAN_COLUMNS)

    def _dest_row(self, path: bytes) -> tuple:
        st = os.lstat(path)
        return (to_db(path), KIND[stat.S_IFMT(st.st_mode)],
                0 if stat.S_ISDIR(st.st_mode) else st.st_size, st.st_mtime_ns,
                os.readlink(path) if stat.S_ISLNK(st.st_mode) else None)

    def mirror(self, **options):
        st = os.stat(self.src)
        return mirror(self.cat, self.src, self.dst, (st.st_dev, st.st_ino),
                      threading.Event(), self.audit, self.run, **options)

    def rel(self, path: bytes) -> str:
        return os.fsdecode(os.path.relpath(path, self.dst))

    def dest_rows(self) -> list[tuple]:
        """The catalog's record of DST: every column of every row, by path."""
        return sorted(tuple(r) for r in self.pair.rows("SELECT * FROM dest_files"))

    def dest_paths(self) -> set[str]:
        return {os.path.relpath(r[0], self.pair.dst) for r in self.dest_rows()} - {"."}

    def audit_lines(self) -> list[tuple]:
        """(status, DST path relative to DST, kind, error) of the delete lines on disk."""
        if not self.pair.log.exists():
            return []
        lines = [json.loads(line) for line in self.pair.log.read_text().splitlines()]
        return [(e["status"], os.path.relpath(e["dst"], self.pair.dst), e.get("kind"),
                 e.get("error")) for e in lines if e["op"] == "delete"]

    def left(self) -> list[str]:
        """What DST holds, relative paths, sorted."""
        return sorted(self.rel(p) for p in _walk(self.dst) if p != self.dst)


def _walk(root: bytes) -> list[bytes]:
    out = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        out += [os.path.join(dirpath, n) for n in dirnames + filenames]
    return out


def tree_state(root: Path) -> dict:
    """Every entry under root: kind, size, mtime (ns). Directories' mtimes change when
    an entry in them is deleted, so this shows any deletion."""
    out = {}
    for path in _walk(os.fsencode(root)):
        st = os.lstat(path)
        out[path] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def env(pair):
    e = Env(pair)
    yield e
    e.close()


def make_env(root: Path) -> Env:
    (root / "src").mkdir(parents=True)
    (root / "dst").mkdir()
    return Env(Pair(root, root / "src", root / "dst"))


def keep(env, *names, data=b"k"):
    """Files SRC and DST both have (not extras)."""
    for name in names:
        write(env.pair.src / name, data)
        write(env.pair.dst / name, data)


def extras(env, *names, data=b"e"):
    for name in names:
        write(env.pair.dst / name, data)


# ------------------------------------------------------------------- --max-delete --

def test_max_delete_deletes_that_many_deepest_first_and_lists_the_rest(env, caplog):
    keep(env, *(f"keep{i}" for i in range(6)))
    extras(env, "e1", "e2", "e3", "e4", "e5", "reborn")
    env.scanned()
    write(env.pair.src / "reborn", b"appeared in SRC after the scan")  # kept, not skipped
    with caplog.at_level(logging.WARNING, logger="fastsync.mirror"):
        result = env.mirror(max_delete=2)
    assert (result.deleted, result.kept, result.failed, result.refused) == (2, 1, 0, None)
    # Deepest (last in path order) first: e5 and e4 go, the rest is left.
    kept = [f"keep{i}" for i in range(6)]
    assert env.left() == sorted(["e1", "e2", "e3", "reborn"] + kept)
    assert [env.rel(p) for p in result.skipped] == ["e3", "e2", "e1"]
    assert result.skipped_count == 3
    over = "over --max-delete 2"
    assert env.audit_lines() == [
        ("ok", "e5", "file", None), ("ok", "e4", "file", None),
        ("skipped", "e3", "file", over), ("skipped", "e2", "file", over),
        ("skipped", "e1", "file", over)]
    assert env.dest_paths() == {"e1", "e2", "e3", "reborn", *kept}
    assert env.cat.run_counts(env.run)["files_deleted"] == 2
    assert "--max-delete 2: 2 deleted, 3 more not deleted (listed in the audit log)" \
        in caplog.messages


def test_directories_count_like_files(env):
    keep(env, "keep0", "keep1", "keep2", "keep3")
    extras(env, "x/a", "x/b", "y")
    env.scanned()
    result = env.mirror(max_delete=3)
    # y, x/b, x/a are deleted (3); x, now empty, would be the fourth.
    assert (result.deleted, result.skipped_count) == (3, 1)
    assert env.left() == ["keep0", "keep1", "keep2", "keep3", "x"]
    assert env.audit_lines()[-1] == ("skipped", "x", "dir", "over --max-delete 3")


def test_max_delete_0_deletes_nothing(env):
    keep(env, "keep")
    extras(env, "e1", "e2", "e3", "e4", "e5")
    env.scanned()
    before, rows = tree_state(env.pair.dst), env.dest_rows()
    result = env.mirror(max_delete=0)
    assert (result.deleted, result.skipped_count, result.refused) == (0, 5, None)
    assert tree_state(env.pair.dst) == before and env.dest_rows() == rows
    assert [s for s, *_ in env.audit_lines()] == ["skipped"] * 5


def test_skipped_lists_the_first_paths_and_counts_all(env):
    keep(env, "keep")
    names = [f"e{i:04d}" for i in range(SKIPPED_LISTED + 5)]
    extras(env, *names)
    env.scanned()
    result = env.mirror(max_delete=0)
    assert result.skipped_count == SKIPPED_LISTED + 5
    first = sorted(names, reverse=True)[:SKIPPED_LISTED]     # deepest first
    assert [env.rel(p) for p in result.skipped] == first
    assert len(env.audit_lines()) == SKIPPED_LISTED + 5   # every one is in the audit log
    assert len(env.left()) == SKIPPED_LISTED + 6


def test_a_negative_max_delete_is_refused(env):
    with pytest.raises(ValueError):
        env.mirror(max_delete=-1)


# -------------------------------------------------------------- the default guard --

def test_guard_more_than_half_of_the_entries(env):
    keep(env, "keep1", "keep2", data=b"k" * 1000)
    extras(env, "e1", "e2", "e3")           # 3 of 5 entries, 3 B of 2,003
    env.scanned()
    before, rows = tree_state(env.pair.dst), env.dest_rows()
    result = env.mirror()
    assert result.refused == (
        "--delete-extras would delete 3 of 5 entries (3 B of 2.0 KiB) at DST, more than "
        "half; nothing deleted. Give --max-delete N to allow it (e.g. --max-delete 3)")
    assert result.planned == (3, 3, 5, 2003)
    assert result.deleted == 0 and result.skipped_count == 0
    assert tree_state(env.pair.dst) == before and env.dest_rows() == rows
    assert env.audit_lines() == []


def test_guard_more_than_half_of_the_bytes_with_few_extras(env):
    keep(env, "keep1", "keep2", "keep3", "keep4")
    huge = env.pair.dst / "huge"
    with open(huge, "wb") as f:
        f.truncate(10 << 20)                # sparse: 10 MiB of size, no disk used
    env.scanned()
    result = env.mirror()
    assert result.planned == (1, 10 << 20, 5, (10 << 20) + 4)
    assert "1 of 5 entries (10.0 MiB of 10.0 MiB)" in result.refused
    assert "--max-delete 1)" in result.refused
    assert huge.exists() and result.deleted == 0


def test_guard_counts_directories_and_allows_exactly_half(env):
    keep(env, "keep1", "keep2")              # 2 extras of 4 entries, 2 B of 4
    extras(env, "e1", "e2")
    env.scanned()
    result = env.mirror()
    assert result.planned == (2, 2, 4, 4)
    assert (result.refused, result.deleted) == (None, 2)
    assert env.left() == ["keep1", "keep2"]


def test_guard_counts_a_directory_like_a_file(env):
    keep(env, "keep1", "keep2", data=b"k" * 1000)
    extras(env, "d/e1", "d/e2")              # d, d/e1, d/e2: 3 of 5 entries
    env.scanned()
    result = env.mirror()
    assert result.planned == (3, 2, 5, 2002)
    assert "3 of 5 entries" in result.refused
    assert env.left() == ["d", "d/e1", "d/e2", "keep1", "keep2"]


def test_an_explicit_max_delete_replaces_the_guard(env):
    keep(env, "keep1", "keep2")
    extras(env, "e1", "e2", "e3")
    env.scanned()
    result = env.mirror(max_delete=1000)
    assert (result.refused, result.deleted, result.skipped_count) == (None, 3, 0)
    assert result.planned == (3, 3, 5, 5)
    assert env.left() == ["keep1", "keep2"]


def test_an_empty_src_is_told_before_the_guard(env):
    extras(env, "precious")
    env.scanned()
    result = env.mirror()
    assert "SRC is empty" in result.refused and env.left() == ["precious"]


# ------------------------------------------------------------------------- dry --

def build(env: Env) -> None:
    """A tree with every kind of decision: extras (files, a symlink, a directory with
    content), kept entries, one that reappears on SRC after the scan, one that DST holds
    under a name that folds like SRC's."""
    keep(env, *(f"keep/k{i}" for i in range(8)), "keep/sub/k", "NOTES", data=b"k" * 100)
    extras(env, "extra1", "keep/extra2", "old/a", "old/deeper/b", "reborn", data=b"x" * 10)
    os.symlink("extra1", env.pair.dst / "link")
    os.rename(env.pair.dst / "NOTES", env.pair.dst / "notes")
    env.scanned()
    write(env.pair.src / "reborn", b"r")


@pytest.mark.parametrize("limit", [None, 0, 3, 1000])
def test_dry_run_decides_exactly_as_the_real_pass(tmp_path, limit):
    dry, real = make_env(tmp_path / "dry"), make_env(tmp_path / "real")
    try:
        build(dry)
        build(real)
        state, rows = tree_state(dry.pair.dst), dry.dest_rows()
        log_before = dry.pair.log.read_bytes()
        told = []

        def would_delete(path, kind):
            told.append((dry.rel(path), kind))
        result = dry.mirror(traits=Traits(folds_case=True), max_delete=limit, dry=True,
                            would_delete=would_delete)
        done = real.mirror(traits=Traits(folds_case=True), max_delete=limit)

        assert told == [(path, kind) for status, path, kind, _ in real.audit_lines()
                        if status == "ok"]
        assert len(told) == (7 if limit is None else min(7, limit))
        for field in ("deleted", "kept", "failed", "refused", "skipped_count", "planned"):
            assert getattr(result, field) == getattr(done, field), field
        assert [dry.rel(p) for p in result.skipped] == [real.rel(p) for p in done.skipped]
        # The real pass did delete; the dry one left everything as it was.
        assert real.left() != dry.left() or limit == 0
        assert tree_state(dry.pair.dst) == state
        assert dry.dest_rows() == rows
        assert dry.pair.log.read_bytes() == log_before
        assert dry.cat.run_counts(dry.run)["files_deleted"] == 0
    finally:
        dry.close()
        real.close()


def test_dry_run_tells_what_it_would_delete(env):
    build(env)
    told = []
    result = env.mirror(traits=Traits(folds_case=True), dry=True,
                        would_delete=lambda path, kind: told.append((env.rel(path), kind)))
    # Deepest first; "notes" is SRC's NOTES on a DST that folds case, "reborn" is back.
    assert told == [("old/deeper/b", "file"), ("old/deeper", "dir"), ("old/a", "file"),
                    ("old", "dir"), ("link", "symlink"), ("keep/extra2", "file"),
                    ("extra1", "file")]
    assert result.deleted == 7 and result.kept == 2


def test_dry_run_with_the_guard_refusing(env):
    keep(env, "keep")
    extras(env, "e1", "e2")
    env.scanned()
    state, rows = tree_state(env.pair.dst), env.dest_rows()
    told = []
    result = env.mirror(dry=True, would_delete=lambda *a: told.append(a))
    assert result.refused.startswith("--delete-extras would delete 2 of 3 entries")
    assert told == [] and result.deleted == 0
    assert tree_state(env.pair.dst) == state and env.dest_rows() == rows


def test_dry_run_with_a_limit_skips_without_audit(env, caplog):
    keep(env, "keep")
    extras(env, "e1", "e2", "e3")
    env.scanned()
    told = []
    with caplog.at_level(logging.WARNING, logger="fastsync.mirror"):
        result = env.mirror(dry=True, max_delete=1,
                            would_delete=lambda path, kind: told.append(env.rel(path)))
    assert told == ["e3"] and result.deleted == 1
    assert [env.rel(p) for p in result.skipped] == ["e2", "e1"]
    assert env.left() == ["e1", "e2", "e3", "keep"] and env.audit_lines() == []
    told_once = "--max-delete 1: 1 would be deleted, 2 more would not (dry run)"
    assert told_once in caplog.messages


def test_dry_run_counts_a_directory_the_real_pass_may_keep(tmp_path):
    """A directory cannot be tried without deleting it: one that still holds an entry
    that is not an extra (here: written after the scan) is counted by the dry run and
    kept by the real pass. The module's doc says so."""
    dry, real = make_env(tmp_path / "dry"), make_env(tmp_path / "real")
    try:
        for env in (dry, real):
            keep(env, "keep1", "keep2", "keep3")
            extras(env, "old/a")
            env.scanned()
            write(env.pair.dst / "old" / "new-since-scan", b"n")
        told = []
        result = dry.mirror(dry=True,
                            would_delete=lambda path, kind: told.append(dry.rel(path)))
        done = real.mirror()
        assert told == ["old/a", "old"] and result.deleted == 2
        assert done.deleted == 1 and done.kept == 1
        assert real.left() == ["keep1", "keep2", "keep3", "old", "old/new-since-scan"]
    finally:
        dry.close()
        real.close()
