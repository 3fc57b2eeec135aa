"""The readers' order: every pending file once, alternating between directories."""

from fastsync.backlog import Striped
from fastsync.catalog import PendingFile


def rows(paths):
    return [PendingFile(b"/s" + p, b"/d" + p, "file", 1, None, p.decode()) for p in paths]


def test_files_in_flight_come_from_different_directories():
    backlog = rows([b"/a/%d" % i for i in range(4)] + [b"/b/%d" % i for i in range(4)]
                   + [b"/c/%d" % i for i in range(2)])
    got = [r.dst for r in Striped(iter(backlog))]
    assert got[:3] == [b"/d/a/0", b"/d/b/0", b"/d/c/0"]
    assert sorted(got) == sorted(r.dst for r in backlog)        # each exactly once
    assert [p for p in got if p.startswith(b"/d/a/")] == [b"/d/a/%d" % i for i in range(4)]


def test_the_window_bounds_how_far_ahead_it_reads():
    consumed = []

    def source():
        for r in rows([b"/a/%d" % i for i in range(100)] + [b"/b/0"]):
            consumed.append(r)
            yield r
    striped = Striped(source(), window=10)
    first = [next(striped) for _ in range(5)]
    assert len(consumed) <= 10
    assert all(r.dst.startswith(b"/d/a/") for r in first)       # /b/ lies beyond the window
    assert len(list(striped)) == 96


def test_an_empty_backlog_ends_at_once():
    assert list(Striped(iter([]))) == []
