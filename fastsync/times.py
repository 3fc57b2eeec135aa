"""Which times fastsync can record and DST can hold.

Times are INTEGER ns since the epoch, and SQLite integers are int64: the catalog holds
1677-09-21T00:12:43.145224192Z .. 2262-04-11T23:47:16.854775806Z. A source entry
with a time outside is a scan error, never a row (scan.py). The last nanosecond of
int64 is kept back as DST_TIME_UNKNOWN: the mtime recorded for a DST entry whose time
the catalog cannot hold, which MATCH never takes for any source time.

DST may hold less: FAT keeps 1980..2107, ext4 with small inodes 1901..2038, and the
kernel silently clamps a time beyond them. probe.py measures DST's span at startup; a
source entry whose mtime or atime lies outside it would get another time at DST (and be
copied again on every run), so it fails like one the catalog cannot hold.
"""

from __future__ import annotations

from datetime import datetime, timedelta

TIME_MIN_NS = -2**63
TIME_MAX_NS = 2**63 - 2
DST_TIME_UNKNOWN = 2**63 - 1

# The times of a _core stat tuple that a source row needs, by index, as messages name
# them. Birth time is not one: it is recorded only, and one the catalog cannot hold is
# recorded as unknown (NULL), as where the filesystem reports none (recorded_btime).
TIMES = ((3, "modification time"), (2, "access time"), (4, "change time"))
EPOCH = datetime(1970, 1, 1)


def time_problem(st: tuple, dst_span: tuple[int, int] | None = None) -> str | None:
    """Why the times of an entry with _core stat tuple `st` cannot be recorded (one
    outside TIME_MIN_NS .. TIME_MAX_NS) or applied (its mtime or atime outside DST's
    span, as probed), or None."""
    for index, name in TIMES:
        if not TIME_MIN_NS <= st[index] <= TIME_MAX_NS:
            return (f"{name} {iso_time(st[index])} is outside what the catalog records "
                    f"(1677-09-21 .. 2262-04-11)")
    if dst_span is not None:
        low, high = dst_span
        for index, name in TIMES[:2]:       # the two that are applied at DST
            if not low <= st[index] <= high:
                return (f"{name} {iso_time(st[index])} is outside what DST can hold "
                        f"({iso_time(low)} .. {iso_time(high)})")
    return None


def recorded_btime(btime: int | None) -> int | None:
    return btime if btime is None or TIME_MIN_NS <= btime <= TIME_MAX_NS else None


def iso_time(ns: int) -> str:
    """ns since the epoch as a UTC date to the nanosecond, trailing zeros dropped:
    2300-01-01T00:00:00Z, 1969-12-31T23:59:58.5Z."""
    seconds, fraction = divmod(ns, 10**9)
    try:
        text = (EPOCH + timedelta(seconds=seconds)).isoformat()
    except OverflowError:       # beyond year 9999: btrfs holds any 64-bit seconds
        return f"{ns} ns from 1970-01-01T00:00:00Z"
    return text + (f".{fraction:09d}".rstrip("0") if fraction else "") + "Z"
