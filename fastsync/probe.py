"""What DST can hold, found by trying it at startup, before anything is scanned.

  mtime granularity  a time set and read back: the skip rule compares mtimes at DST's
                     precision (1 ns on ext4, 100 ns on SMB, 2 s on FAT), so a share that
                     rounds times does not make every file look changed on the next scan
  case folding       a name created in lower case and looked up in upper case: on a DST
                     that folds case, `readme` and `README` would be one file
  names DST changes  names with the characters Windows forbids, a control character and
                     a decomposed accent, created and listed back: a share that maps them
                     to look-alikes (or normalises Unicode) stores such a name under
                     another name, which the next scan would not find
  symbolic links     one created: some SMB servers answer symlink() with EIO, which would
                     otherwise be retried as transient for every link
  span of times      the earliest and latest mtime it keeps (FAT: 1980..2107), set and
                     read back: a time beyond would be clamped and copied on every run

Every probe entry lives in one directory named like a temporary (`.fastsync-probe-<pid>
.tmp`), removed at the end; a killed run's leftover is removed by the next scan.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from dataclasses import dataclass

from . import faults
from .errors import FatalError, UsageError, describe, is_fatal
from .times import TIME_MAX_NS, TIME_MIN_NS

PROBE_PREFIX = b".fastsync-probe-"
PROBE_TIME = 1_700_000_001_123_456_789
NOT_UTF8 = "\udcff"      # the byte 0xFF, as os.fsdecode() shows a byte that is not UTF-8
# Characters some shares cannot keep as they are (SMB maps them to Unicode look-alikes
# or refuses them); a control character; "é" decomposed, which a normalising server
# stores composed; and a byte that is not UTF-8 (the CIFS client makes it '?').
RISKY = ['\\', ':', '*', '?', '"', '<', '>', '|', '\x01', 'e\u0301', NOT_UTF8]


@dataclass(frozen=True)
class Traits:
    window: int = 1                # mtime granularity, ns
    folds_case: bool = False
    changed: tuple = ()            # name pieces DST does not keep as they are
    links: str | None = None       # None if DST holds symlinks, else why it does not
    times: tuple | None = None     # (earliest, latest) time DST holds, ns; None: all

    @property
    def limits_names(self) -> bool:
        return self.folds_case or bool(self.changed)

    def fold(self, name: bytes) -> bytes:
        """The key under which DST stores `name`: two names with one key are one entry."""
        if not self.folds_case:
            return name
        return os.fsdecode(name).casefold().encode("utf-8", "surrogateescape")

    def name_problem(self, name: bytes) -> str | None:
        """Why DST would store `name` under another name, or None."""
        text = os.fsdecode(name)
        for piece in self.changed:
            if piece == "e\u0301":
                if unicodedata.normalize("NFC", text) != text:
                    return "DST normalises Unicode names (this one is not in NFC form)"
            elif piece == NOT_UTF8:
                if any("\udc80" <= c <= "\udcff" for c in text):
                    return "DST does not keep names that are not valid UTF-8"
            elif piece in text:
                return f"DST does not keep the character {piece!r} in names"
        return None


def probe(dst: bytes) -> Traits:
    """Find out what DST holds; a DST that takes no file is refused here (status 2, or
    3 if it is full or read-only)."""
    home = os.path.join(dst, PROBE_PREFIX + b"%d.tmp" % os.getpid())
    try:
        try:
            os.mkdir(home, 0o700)
        except FileExistsError:     # a leftover of a killed run with this pid
            remove_probe(home)
            os.mkdir(home, 0o700)
    except OSError as e:
        if is_fatal(e):
            raise FatalError(f"stopped: DST {os.fsdecode(dst)!r}: {describe(e)}") from None
        raise UsageError(f"DST {os.fsdecode(dst)!r} is not writable: {e.strerror}") from None
    try:
        window = _granularity_probe(dst, home)
        return Traits(window=window, folds_case=_folds_case(home),
                      changed=_changed_names(home), links=_no_links(home),
                      times=_time_span(home))
    except OSError as e:            # DST failing in the middle: nothing to go on with
        raise FatalError(f"stopped: DST {os.fsdecode(dst)!r} could not be probed: "
                         f"{describe(e)}") from None
    finally:
        remove_probe(home)


def _granularity_probe(dst: bytes, home: bytes) -> int:
    path = os.path.join(home, b"t")
    try:
        # One byte: an rclone mount uploads an empty file after close, and so
        # resurrects it after our unlink.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, b"\n")
            os.utime(fd, ns=(PROBE_TIME, PROBE_TIME))
        finally:
            os.close(fd)
        got = os.stat(path).st_mtime_ns
    except OSError as e:
        if is_fatal(e):     # full or read-only: the run cannot go on (status 3, not 2)
            raise FatalError(f"stopped: DST {os.fsdecode(dst)!r}: {describe(e)}") from None
        raise UsageError(f"DST {os.fsdecode(dst)!r} does not accept file times: "
                         f"{e.strerror}") from None
    window = granularity(PROBE_TIME, got)
    if window is None:
        raise UsageError(f"DST {os.fsdecode(dst)!r} does not keep modification times "
                         f"(set {PROBE_TIME} ns, read back {got} ns)")
    return window


def granularity(wrote: int, read: int) -> int | None:
    """The coarsest mtime precision consistent with writing `wrote` and reading back
    `read` (ns): 1 if exact, 100 for SMB's 100 ns ticks, 2*10**9 for FAT; None if the
    filesystem clearly does not keep the time at all."""
    diff = abs(read - wrote)
    for window in (1, 10, 100, 1000, 10**4, 10**5, 10**6, 10**7, 10**8, 10**9, 2 * 10**9):
        if diff < window:
            return window
    return None


def _time_span(home: bytes) -> tuple[int, int] | None:
    """The earliest and latest mtime DST holds: each end of the catalog's span is set
    and read back (the kernel clamps a time to what the filesystem holds). None where
    DST holds both ends, or where it refuses or ignores them (nothing learnt)."""
    path = os.path.join(home, b"t")
    span = []
    try:
        before = os.stat(path).st_mtime_ns
        for end in (TIME_MIN_NS, TIME_MAX_NS):
            os.utime(path, ns=(PROBE_TIME, end))
            span.append(os.stat(path).st_mtime_ns)
    except (OSError, OverflowError):
        return None
    if before in span:
        return None             # ignored rather than clamped: nothing learnt
    low, high = span
    if low <= TIME_MIN_NS + 10**9 and high >= TIME_MAX_NS - 10**9:
        return None
    return (max(low, TIME_MIN_NS), min(high, TIME_MAX_NS))


def _folds_case(home: bytes) -> bool:
    """Asked of the server, not of the client's cache: an rclone mount over a case-
    insensitive SMB share answers a lookup of `CASE` from its own listing (not there),
    and lets `CASE` be created, while the server writes it into `case`. So both are
    written, with contents of one length, and `case` is read back."""
    lower, upper = os.path.join(home, b"case"), os.path.join(home, b"CASE")
    _write(lower, b"lower")
    if os.path.lexists(upper):
        return True                 # a local filesystem that folds (vfat, casefold)
    try:
        _write(upper, b"UPPER", exclusive=True)
    except FileExistsError:
        return True                 # the server said so (a kernel SMB client)
    try:
        with open(lower, "rb") as f:
            return f.read() != b"lower"
    except OSError:
        return True                 # the client's idea of it no longer matches the server


def _changed_names(home: bytes) -> tuple:
    changed = []
    for piece in RISKY:
        name = ("n" + piece + "n").encode("utf-8", "surrogateescape")
        try:
            _write(os.path.join(home, name))
            kept = name in os.listdir(home)
        except OSError:
            kept = False            # refused outright: as bad for such a name
        if not kept:
            changed.append(piece)
        for entry in os.listdir(home):
            if entry.startswith(b"n"):
                os.unlink(os.path.join(home, entry))
    return tuple(changed)


def _no_links(home: bytes) -> str | None:
    try:
        faults.fail("symlink", home)
        os.symlink(b"target", os.path.join(home, b"link"))
    except OSError as e:
        return f"DST cannot hold symbolic links (symlink() at startup: {describe(e)})"
    return None


def _write(path: bytes, data: bytes = b"\n", exclusive: bool = False) -> None:
    """Never empty: an rclone mount uploads an empty file after close, and so would
    resurrect it after our unlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_EXCL if exclusive else 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def remove_probe(home: bytes) -> None:
    """Remove a probe directory and what is in it; best effort (a leftover is removed
    by a later scan). Never through a symlink: a link (or file) under the name is
    removed itself, and the directory is emptied through a descriptor opened with
    O_NOFOLLOW, so nothing outside it is touched."""
    try:
        if not stat.S_ISDIR(os.lstat(home).st_mode):
            os.unlink(home)
            return
        fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            for name in os.listdir(fd):
                try:
                    os.unlink(name, dir_fd=fd)
                except OSError:
                    pass
        finally:
            os.close(fd)
        os.rmdir(home)
    except OSError:
        pass


def is_probe_name(name: bytes) -> bool:
    return name.startswith(PROBE_PREFIX) and name.endswith(b".tmp")
