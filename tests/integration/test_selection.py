"""What to copy and in what order, end to end through the command line: filters,
--files-from, priorities, --order-by, --max-delete and the mirror's guard."""

import os
import sqlite3

import pytest

from fastsync.catalog import from_db
from fastsync.cli import main
from fastsync.errors import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE

from ..conftest import snapshot, write


def copied(pair, run=None) -> list[str]:
    """Relative source paths copied, in the order the audit log has them."""
    src = os.fsencode(pair.src)
    runs = [e["run"] for e in pair.audit() if e["op"] == "run" and e["status"] == "started"]
    want = runs[-1] if run == "last" else run
    return [os.fsdecode(os.fsencode(e["src"])[len(src) + 1:]) for e in pair.audit()
            if e["op"] in ("copy", "link") and e["status"] == "ok"
            and (want is None or e["run"] == want)]


def rels(pair, sql="SELECT src_path FROM files") -> set[str]:
    src = os.fsencode(pair.src)
    return {os.fsdecode(from_db(r[0])[len(src) + 1:]) for r in pair.rows(sql)} - {""}


def pend(pair, where="kind = 'file'") -> None:
    """Make rows pending again, never attempted: the backlog an interrupted run leaves."""
    conn = sqlite3.connect(pair.db)
    conn.execute(f"UPDATE files SET status = 'pending', attempts = 0 WHERE {where}")
    conn.commit()
    conn.close()


# -------------------------------------------------------------------- filters --

def test_an_excluded_directory_is_neither_copied_nor_scanned(pair):
    write(pair.src / "live/a", b"a")
    write(pair.src / "live/.snapshot/hourly.0/a", b"old a")
    write(pair.src / "~snapshot/x", b"x")
    os.mkfifo(pair.src / "live/.snapshot/hourly.0/fifo")    # reported if walked
    assert main(pair.args("--exclude", ".snapshot/", "--exclude", "~snapshot/")) == EXIT_OK
    assert sorted(snapshot(pair.dst)) == [b"live", b"live/a"]
    assert rels(pair) == {"live", "live/a"}
    assert not [e for e in pair.audit() if e["op"] == "special"]   # the fifo: never seen


def test_first_matching_rule_wins_in_command_line_order(pair):
    for name in ("keep.tmp", "drop.tmp", "a.txt"):
        write(pair.src / name, b"x")
    assert main(pair.args("--include", "keep.tmp", "--exclude", "*.tmp")) == EXIT_OK
    assert sorted(snapshot(pair.dst)) == [b"a.txt", b"keep.tmp"]


def test_exclude_from_and_include_from_files(pair, tmp_path):
    for name in ("a.log", "b.log", "important.log", "c.txt"):
        write(pair.src / name, b"x")
    (tmp_path / "inc").write_text("# kept whatever the excludes say\nimportant.log\n")
    (tmp_path / "exc").write_text("; rsync's other comment\n\n*.log\n")
    assert main(pair.args("--include-from", str(tmp_path / "inc"),
                          "--exclude-from", str(tmp_path / "exc"))) == EXIT_OK
    assert sorted(snapshot(pair.dst)) == [b"c.txt", b"important.log"]


def test_excluded_entries_at_dst_are_never_deleted_as_extras(pair):
    write(pair.src / "a", b"a")
    for name in ("cache/blob", ".snapshot/old", "extra1", "extra2"):
        write(pair.dst / name, b"dst only")
    assert main(pair.args("--exclude", "cache/", "--exclude", ".snapshot/",
                          "--delete-extras", "--max-delete", "10")) == EXIT_OK
    assert sorted(snapshot(pair.dst)) == [b".snapshot", b".snapshot/old", b"a", b"cache",
                                          b"cache/blob"]
    assert sorted(os.path.basename(e["dst"]) for e in pair.audit()
                  if e["op"] == "delete") == ["extra1", "extra2"]


def test_changed_filters_rescan_instead_of_resuming_and_say_what_changed(pair, capsys):
    for name in ("a.txt", "b.log", "c.txt"):
        write(pair.src / name, name.encode())
    assert main(pair.args()) == EXIT_OK
    pend(pair)                       # a resumable backlog: without a change, no scan
    capsys.readouterr()
    assert main(pair.args("--exclude", "*.log")) == EXIT_OK
    err = capsys.readouterr().err
    assert "what to copy changed since the last scan: filters added - *.log" in err
    assert rels(pair) == {"a.txt", "c.txt"}          # b.log left the catalog ...
    assert (pair.dst / "b.log").read_bytes() == b"b.log"   # ... and stays at DST
    # the same filters again: nothing changed, an interrupted backlog resumes
    pend(pair)
    assert main(pair.args("--exclude", "*.log")) == EXIT_OK
    assert "resuming the backlog" in capsys.readouterr().err
    # dropping the filter: the next run's scan finds b.log again
    assert main(pair.args()) == EXIT_OK
    assert "filters dropped - *.log" in capsys.readouterr().err
    assert "b.log" in rels(pair)


@pytest.mark.parametrize("args, message", [
    (["--exclude-from", "/nonexistent/rules"], "--exclude-from"),
    (["--from0"], "--from0"),
    (["--order-by", "colour"], "--order-by 'colour'"),
    (["--order-by", "name,desc"], "name,desc is not supported"),
    (["--max-delete", "-1"], "--max-delete"),
    (["--max-delete", "ten"], "--max-delete 'ten'"),
])
def test_bad_selection_options_are_one_line_usage_errors(pair, capsys, args, message):
    write(pair.src / "a", b"a")
    assert main(pair.args(*args)) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("fastsync: error: ") and message in err
    assert not pair.db.exists() and os.listdir(pair.dst) == []


# ----------------------------------------------------------------- files-from --

def waves(pair):
    for rel in ("projA/x/1", "projA/2", "projB/1", "projB/sub/2", "top1", "top2"):
        write(pair.src / rel, rel.encode())


def test_files_from_copies_only_the_listed_entries_and_the_way_to_them(pair, tmp_path):
    waves(pair)
    (tmp_path / "wave1").write_text("projA\n# a comment\n\ntop1\n./projB/sub/2\n")
    assert main(pair.args("--files-from", str(tmp_path / "wave1"))) == EXIT_OK
    assert sorted(snapshot(pair.dst)) == [b"projA", b"projA/2", b"projA/x", b"projA/x/1",
                                          b"projB", b"projB/sub", b"projB/sub/2", b"top1"]
    assert rels(pair) == {"projA", "projA/2", "projA/x", "projA/x/1", "projB", "projB/sub",
                          "projB/sub/2", "top1"}


def test_waves_keep_what_earlier_waves_recorded(pair, tmp_path):
    waves(pair)
    (tmp_path / "w1").write_text("projA\n")
    (tmp_path / "w2").write_bytes(b"projB\0top1\0")
    assert main(pair.args("--files-from", str(tmp_path / "w1"))) == EXIT_OK
    assert main(pair.args("--files-from", str(tmp_path / "w2"), "--from0")) == EXIT_OK
    synced = rels(pair, "SELECT src_path FROM files WHERE status = 'synced'")
    assert {"projA/x/1", "projA/2", "projB/1", "projB/sub/2", "top1"} <= synced
    assert sorted(copied(pair, "last")) == ["projB/1", "projB/sub/2", "top1"]
    # the last, full run copies only what no wave did
    assert main(pair.args()) == EXIT_OK
    assert copied(pair, "last") == ["top2"]
    assert snapshot(pair.dst) == snapshot(pair.src)


def test_a_wave_does_not_copy_pending_files_outside_it(pair, tmp_path):
    waves(pair)
    assert main(pair.args()) == EXIT_OK
    pend(pair)                                   # everything pending again
    (tmp_path / "w").write_text("projB\n")
    os.unlink(pair.dst / "projB/1")
    os.unlink(pair.dst / "top2")
    assert main(pair.args("--files-from", str(tmp_path / "w"))) == EXIT_OK
    # the wave's scan finds projB/sub/2 in sync at DST, and projB/1 missing
    assert copied(pair, "last") == ["projB/1"]
    assert "projB/sub/2" in rels(pair, "SELECT src_path FROM files WHERE status = 'synced'")
    assert not (pair.dst / "top2").exists()
    assert "top2" in rels(pair, "SELECT src_path FROM files WHERE status = 'pending'")


def test_a_file_deleted_from_src_inside_the_wave_leaves_the_catalog(pair, tmp_path):
    waves(pair)
    assert main(pair.args()) == EXIT_OK
    os.unlink(pair.src / "projA/2")
    os.unlink(pair.src / "top2")
    (tmp_path / "w").write_text("projA\n")
    assert main(pair.args("--files-from", str(tmp_path / "w"))) == EXIT_OK
    assert "projA/2" not in rels(pair)
    assert "top2" in rels(pair)          # outside the wave: not looked at, kept


def test_a_listed_path_missing_from_src_is_a_scan_error(pair, tmp_path, capsys):
    waves(pair)
    (tmp_path / "w").write_text("top1\nno/such/file\n")
    assert main(pair.args("--files-from", str(tmp_path / "w"))) == EXIT_PARTIAL
    assert "no/such/file: listed in --files-from, not found in SRC" in \
        capsys.readouterr().err
    assert (pair.dst / "top1").exists()


@pytest.mark.parametrize("line", ["../outside", "projA/../../etc/passwd", "/etc/passwd"])
def test_files_from_paths_that_escape_src_are_refused_before_anything_runs(
        pair, tmp_path, capsys, line):
    waves(pair)
    (tmp_path / "w").write_text(f"top1\n{line}\n")
    assert main(pair.args("--files-from", str(tmp_path / "w"))) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("fastsync: error: --files-from") and "line 2" in err
    assert not pair.db.exists() and os.listdir(pair.dst) == []


def test_an_absolute_path_inside_src_is_taken(pair, tmp_path):
    waves(pair)
    (tmp_path / "w").write_text(f"{pair.src}/top2\n")
    assert main(pair.args("--files-from", str(tmp_path / "w"))) == EXIT_OK
    assert sorted(snapshot(pair.dst)) == [b"top2"]


# ------------------------------------------------------------ priorities, order --

def tree_for_order(pair):
    sizes = {"a/big": 5000, "a/small": 10, "b/urgent/mid": 300, "b/urgent/tiny": 1,
             "c/other": 20, "zz": 4000}
    for i, (rel, size) in enumerate(sorted(sizes.items())):
        write(pair.src / rel, b"x" * size, mtime_ns=(1_600_000_000 + 10 * (7 - i)) * 10**9)
    return sizes


def test_priorities_copy_the_urgent_files_first(pair):
    tree_for_order(pair)
    assert main(pair.args("--streams", "1", "--priority", "urgent/",
                          "--priority", "zz")) == EXIT_OK
    order = copied(pair)
    # by class; inside one, path order taken round-robin across directories (backlog.py)
    assert order[:3] == ["b/urgent/mid", "b/urgent/tiny", "zz"]
    assert order[3:] == ["a/big", "c/other", "a/small"]


@pytest.mark.parametrize("order, expected", [
    ("size,asc", ["b/urgent/tiny", "a/small", "c/other", "b/urgent/mid", "zz", "a/big"]),
    ("size,desc", ["a/big", "zz", "b/urgent/mid", "c/other", "a/small", "b/urgent/tiny"]),
    ("mtime,desc", ["a/big", "a/small", "b/urgent/mid", "b/urgent/tiny", "c/other", "zz"]),
    ("mtime", ["zz", "c/other", "b/urgent/tiny", "b/urgent/mid", "a/small", "a/big"]),
])
def test_order_by_inside_a_class(pair, order, expected):
    tree_for_order(pair)
    assert main(pair.args("--streams", "1", "--order-by", order)) == EXIT_OK
    assert copied(pair) == expected


def test_order_by_size_keeps_priorities_first(pair):
    tree_for_order(pair)
    assert main(pair.args("--streams", "1", "--priority", "/a/",
                          "--order-by", "size,asc")) == EXIT_OK
    assert copied(pair) == ["a/small", "a/big", "b/urgent/tiny", "c/other",
                            "b/urgent/mid", "zz"]


def test_a_resumed_backlog_takes_new_priorities(pair, capsys):
    tree_for_order(pair)
    assert main(pair.args()) == EXIT_OK
    pend(pair)
    capsys.readouterr()
    assert main(pair.args("--streams", "1", "--priority", "c/",
                          "--order-by", "size,desc")) == EXIT_OK
    assert "resuming the backlog" in capsys.readouterr().err
    assert copied(pair, "last") == ["c/other", "a/big", "zz", "b/urgent/mid", "a/small",
                                    "b/urgent/tiny"]
    rows = pair.rows("SELECT priority, order_key FROM files WHERE src_path LIKE '%c/other'")
    assert (rows[0]["priority"], rows[0]["order_key"]) == (0, -20)
    # the rest is in the last class, where everything is without --priority
    assert {r[0] for r in pair.rows("SELECT priority FROM files WHERE src_path NOT LIKE"
                                    " '%/c' AND src_path NOT LIKE '%c/other'")} == {1 << 30}


# ----------------------------------------------------------- deletion limits --

def test_max_delete_deletes_that_many_and_lists_the_rest(pair, capsys):
    write(pair.src / "keep", b"k")
    for i in range(5):
        write(pair.dst / f"extra{i}", b"e")
    assert main(pair.args("--delete-extras", "--max-delete", "2")) == EXIT_PARTIAL
    left = sorted(n for n in os.listdir(pair.dst) if n.startswith("extra"))
    assert len(left) == 3
    err = capsys.readouterr().err
    assert "--max-delete 2" in err and "3 more" in err
    skipped = [e for e in pair.audit() if e["op"] == "delete" and e["status"] == "skipped"]
    assert sorted(os.path.basename(e["dst"]) for e in skipped) == left


def test_a_mirror_that_would_delete_most_of_dst_refuses(pair, capsys):
    write(pair.src / "keep", b"k")
    assert main(pair.args()) == EXIT_OK
    for i in range(3):
        write(pair.dst / f"extra{i}", b"e")
    assert main(pair.args("--delete-extras")) == EXIT_PARTIAL
    err = capsys.readouterr().err
    assert "would delete 3 of 4 entries" in err and "--max-delete" in err
    assert len(os.listdir(pair.dst)) == 4
    # asked for explicitly, it goes ahead
    assert main(pair.args("--delete-extras", "--max-delete", "3")) == EXIT_OK
    assert sorted(os.listdir(pair.dst)) == ["keep"]


def kind_change(pair):
    """DST has a directory foo (with a.keep and b) where SRC now has a file foo."""
    write(pair.src / "foo/a.keep", b"k")
    write(pair.src / "foo/b", b"b")
    for i in range(5):
        write(pair.src / f"other/{i}", b"o")
    assert main(pair.args()) == EXIT_OK
    for name in ("a.keep", "b"):
        os.unlink(pair.src / "foo" / name)
    os.rmdir(pair.src / "foo")
    write(pair.src / "foo", b"now a file")


def test_a_directory_holding_excluded_entries_is_not_replaced(pair, capsys):
    kind_change(pair)
    capsys.readouterr()
    assert main(pair.args("--exclude", "*.keep", "--delete-extras")) == EXIT_PARTIAL
    assert (pair.dst / "foo/a.keep").read_bytes() == b"k"
    assert "it holds 'foo/a.keep', which the filters exclude" in capsys.readouterr().err
    # foo/b is an extra the mirror deletes; the excluded foo/a.keep never is
    assert [e["dst"] for e in pair.audit() if e["op"] == "delete"] == [
        str(pair.dst / "foo/b")]
    # the dry run says the same
    assert main(pair.args("-n", "--exclude", "*.keep", "--delete-extras")) == EXIT_OK
    assert "which the filters exclude (move it away by hand): foo" in capsys.readouterr().err


@pytest.mark.parametrize("limit, replaced", [("0", False), ("2", False), ("3", True)])
def test_replacing_a_directory_counts_against_max_delete(pair, capsys, limit, replaced):
    kind_change(pair)
    code = main(pair.args("--delete-extras", "--max-delete", limit))
    assert (pair.dst / "foo").is_file() == replaced
    if replaced:
        assert code == EXIT_OK and (pair.dst / "foo").read_bytes() == b"now a file"
        assert len([e for e in pair.audit() if e["op"] == "delete"]) == 3
    else:
        assert code == EXIT_PARTIAL and (pair.dst / "foo").is_dir()
        assert f"that would delete 3 entries, over --max-delete {limit}" in \
            capsys.readouterr().err
        # the mirror then deletes the extras inside, within what the limit leaves
        assert sorted(os.listdir(pair.dst / "foo")) == ([] if limit == "2" else
                                                        ["a.keep", "b"])


def test_a_wave_creates_no_directory_outside_it(pair, tmp_path):
    waves(pair)
    assert main(pair.args()) == EXIT_OK
    pend(pair, "1")                              # files and directories pending again
    for rel in ("projB/sub/2", "projB/1"):
        os.unlink(pair.dst / rel)
    os.rmdir(pair.dst / "projB/sub")
    os.rmdir(pair.dst / "projB")
    (tmp_path / "w").write_text("projA\n")
    assert main(pair.args("--files-from", str(tmp_path / "w"))) == EXIT_OK
    assert not (pair.dst / "projB").exists()
    assert "projB" in rels(pair, "SELECT src_path FROM files WHERE status = 'pending'")
