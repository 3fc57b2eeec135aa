"""fastsync verify: read the synced files back at DST and compare them with their hashes.

Usage:
  fastsync verify [options]

Options:
  --db PATH        Catalog of the sync to check; it must exist [default: fastsync.db]
  --log PATH       Audit log, one JSON line per file checked, appended
                   [default: fastsync-audit.log]
  --again          Start a new full pass: check the files verified before too
  --sample N       Check a random sample only: N files, or N% of them (e.g. 1%),
                   drawn from every synced file, verified before or not
  --bwlimit RATE   Cap on reads from DST, e.g. 20M; 0 means no cap [default: 0]
  -q, --quiet      No progress, notes or summary; problems only
  -v, --verbose    Also print a line per file found intact
  -h, --help       Show this help

Every file fastsync copied (it has a hash in the catalog) is read back at DST around the
page cache and hashed again with the catalog's algorithm; a symbolic link's target is
compared. Directories are not checked (the files in them are). A file that differs or
is missing goes back to pending, so the next run copies it again; a file that cannot be
read (EIO, EACCES) is reported and left as it is. The catalog records when each file
was found intact: an interrupted verify goes on where it stopped, and a later one checks
only what was synced since; --again starts over. The catalog is locked meanwhile: a run
cannot start, and verify cannot start while a run holds it.

Exit status: 0 every file checked is intact; 1 some differ, are missing or cannot be
read; 2 bad usage or catalog; 3 stopped (DST went away, the catalog failed); 4 a run
holds the catalog; 130/143 interrupted by SIGINT/SIGTERM (run again to go on).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import math
import os
import random
import re
import signal
import stat
import time
from dataclasses import dataclass
from fractions import Fraction

from . import _core, faults, paths
from .audit import AuditLog
from .verify_catalog import Checkable, VerifyCatalog
from .config import check_rate, format_size
from .destination import BATCH_DURABLE, fs_type
from .errors import (EXIT_OK, EXIT_PARTIAL, FastsyncError, FatalError, Interrupted,
                     UsageError, describe)
from .progress import Console, RateMeter, format_duration, format_rate
from .run import StopRequest, install_signals, open_audit

MiB = 1 << 20
ALIGN = 4096            # O_DIRECT: offsets and lengths are multiples of this
BLOCK = 4 * MiB         # one read when unpaced; a multiple of ALIGN
BATCH_FILES = 256       # files found intact, recorded in one transaction
BATCH_SECONDS = 1.0     # longest a file found intact waits to be recorded
PASS_KEY = "verify_pass_started"    # meta: when the current full pass began (ns)

MISSING = "verify: missing at DST"
MISMATCH = "verify: hash mismatch at DST"


class Mismatch(Exception):
    """DST does not hold what the row says; `found` is what it holds instead."""

    def __init__(self, message: str, found=None):
        super().__init__(message)
        self.message, self.found = message, found


@dataclass(frozen=True)
class Options:
    db: str
    log: str
    rate: int                       # bytes/s; 0: no cap
    sample: tuple | None            # ("files", n) or ("percent", Fraction)
    again: bool
    verbose: bool


def parse_options(args: dict) -> Options:
    for option in ("--db", "--log"):
        if not args[option].strip():
            raise UsageError(f"{option} is an empty string")
    text = args["--bwlimit"]
    rate = 0 if text.strip().lower() == "off" else check_rate(text)   # as the copy's
    sample = None if args["--sample"] is None else parse_sample(args["--sample"])
    if sample and args["--again"]:
        raise UsageError("--sample draws from every synced file, verified or not; "
                         "--again is for a full pass")
    return Options(args["--db"], args["--log"], rate, sample, args["--again"],
                   bool(args["--verbose"]))


def parse_sample(text: str) -> tuple:
    """'25' -> ('files', 25); '1.5%' -> ('percent', Fraction(3, 2))."""
    if re.fullmatch(r"\s*[0-9]{1,15}\s*", text) and int(text) > 0:
        return "files", int(text)
    match = re.fullmatch(r"\s*([0-9]{1,3}(?:\.[0-9]{1,6})?)\s*%\s*", text)
    if match and 0 < Fraction(match[1]) <= 100:
        return "percent", Fraction(match[1])
    raise UsageError(f"--sample {text!r} is not a number of files (1 or more) or a "
                     f"percentage (above 0% up to 100%, e.g. 1% or 0.5%)")


def sample_size(sample: tuple, total: int) -> int:
    kind, value = sample
    if kind == "files":
        return min(value, total)
    return math.ceil(total * value / 100)     # 1% of 50 files is one file, not none


class Sampler:
    """Selection sampling (Knuth's Algorithm S): exactly `want` of `total` rows, each
    row equally likely, chosen in one pass in path order with no memory per row."""

    def __init__(self, want: int, total: int):
        self.want, self.total = want, total
        self.seen = self.chosen = 0

    def take(self) -> bool:
        left = self.total - self.seen
        self.seen += 1
        if left <= 0 or random.random() * left >= self.want - self.chosen:
            return False
        self.chosen += 1
        return True


def paced(rate: int) -> _core.TokenBucket | None:
    """The read cap. Its slice (what one read takes when paced) is a multiple of ALIGN,
    as O_DIRECT needs; about 12.5 ms of traffic, as the copy's buckets."""
    if not rate:
        return None
    piece = min(max(rate // 80, 16384), MiB) // ALIGN * ALIGN
    return _core.TokenBucket(rate, slice=piece)


def _drop(fd: int, offset: int) -> None:
    """Drop the file's clean cached pages from `offset` on: the next read of them comes
    from the disk or the server, not from what was cached when the file was written."""
    try:
        os.posix_fadvise(fd, offset, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass        # advice only: a filesystem without it is read as it is


def _set_flags(fd: int, direct: bool) -> bool:
    """Clear O_NONBLOCK (set for the open: a fifo must not hang it) and set O_DIRECT as
    asked; False if the filesystem refuses O_DIRECT (then it is left off)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK
    if direct:
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT)
            return True
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
    return False


class Reader:
    """Reads one DST file around the page cache and hashes it.

    On a local disk (destination.BATCH_DURABLE: ext4, xfs, btrfs, ...) with O_DIRECT:
    the bytes come from the device, never from pages cached when the file was written.
    Reads are whole ALIGN multiples into the pool's page-aligned block; the last piece,
    shorter than ALIGN, is read with O_DIRECT off after dropping its cached page.
    Elsewhere (NFS, SMB, FUSE), and where O_DIRECT is refused, buffered, with
    posix_fadvise(DONTNEED) before the read (clean cached pages are dropped, so the data
    is fetched from the server again) and after it (nothing is left cached). O_DIRECT on
    a share would make each read a synchronous round trip without read-ahead, and SMB
    and FUSE mounts often refuse or ignore it. DONTNEED cannot drop pages another process
    holds mapped or dirty; fastsync's copies are durable, so theirs are clean.
    """

    def __init__(self, bucket: _core.TokenBucket | None, direct: bool, stopped):
        self.pool = _core.BlockPool(1, BLOCK)
        self.view = self.pool.view(0)
        self.bucket, self.direct, self.stopped = bucket, direct, stopped
        # Paced, one slice per call: the read loop runs in C, and a signal is handled
        # only between two calls, so a slow cap must not mean a slow Ctrl-C.
        self.chunk = BLOCK if bucket is None else bucket.slice

    def digest(self, fd: int, path: bytes, size: int, algo: str, progress) -> str:
        h = hashlib.new(algo)
        direct = _set_flags(fd, self.direct)
        if not direct:
            _drop(fd, 0)
        offset = 0
        while offset < size:
            want = min(self.chunk, size - offset)
            if direct and want % ALIGN:
                if want > ALIGN:
                    want -= want % ALIGN
                else:
                    direct = self._buffered(fd, offset)
            try:
                n = _core.read_block(fd, self.pool, 0, offset, self.bucket,
                                     faults.check("read", path), want)
            except OSError as e:
                if not (direct and e.errno == errno.EINVAL):
                    raise
                direct = self._buffered(fd, offset)     # alignment refused: buffered on
                continue
            if n == 0:
                break       # shorter than at fstat: the digest tells
            h.update(self.view[:n])
            offset += n
            progress(n)
            if self.stopped():
                raise Interrupted()
        _drop(fd, 0)
        return h.hexdigest()

    @staticmethod
    def _buffered(fd: int, offset: int) -> bool:
        _set_flags(fd, False)
        _drop(fd, offset)
        return False


def open_at_dst(path: bytes) -> int:
    """Open a DST file for reading, never through a symlink or into a fifo."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            raise Mismatch(MISSING) from None
        if e.errno == errno.ELOOP:
            raise Mismatch("verify: a symbolic link at DST, not the file") from None
        raise


@dataclass
class Stats:
    files_total: int = 0
    bytes_total: int | None = 0     # None: not known ahead (a sample)
    files: int = 0                  # checked, whatever came of it
    bytes: int = 0                  # read
    ok: int = 0
    bad: int = 0                    # mismatched or missing: pending again
    unreadable: int = 0
    current: list | None = None     # [name, size, bytes read]


def main(args: dict, console: Console) -> int:
    opts = parse_options(args)
    catalog = VerifyCatalog.open_existing(opts.db)
    try:
        _src, dst = catalog.roots()
        root = destination(dst)
        paths._check_file("log", opts.log, (("DST", os.fsdecode(dst), root),))
        paths._apart(opts.db, opts.log)
        audit = open_audit(opts.log)
        try:
            return Verify(opts, console, catalog, audit, dst, root).execute()
        finally:
            audit.close()
    finally:
        catalog.close()


def destination(dst: bytes) -> tuple[int, int]:
    """DST's identity (device, inode), checked again whenever a file is missing or
    unreadable: an unmounted share must not turn every file into a missing one."""
    try:
        st = os.stat(dst)
    except OSError as e:
        raise UsageError(f"DST {os.fsdecode(dst)!r} (recorded in the catalog) cannot be "
                         f"reached: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"DST {os.fsdecode(dst)!r} (recorded in the catalog) is not a "
                         f"directory")
    return st.st_dev, st.st_ino


class Verify:
    """One verify: the rows to check, each one checked, recorded, shown."""

    def __init__(self, opts: Options, console: Console, catalog: VerifyCatalog,
                 audit: AuditLog, dst: bytes, root: tuple[int, int]):
        self.opts, self.console, self.catalog, self.audit = opts, console, catalog, audit
        self.dst, self.root = dst, root
        self.stop = StopRequest()
        self.reader = Reader(paced(opts.rate), fs_type(dst) in BATCH_DURABLE,
                             self.stop.event.is_set)
        self.stats = Stats()
        self.batch: list = []
        self.batch_started = time.monotonic()
        self.started = time.monotonic()
        self.meters = (RateMeter(3.0), RateMeter(30.0))
        self.next_show = 0.0

    def execute(self) -> int:
        previous = install_signals(self.stop)      # as a run: the first one stops
        if faults.active():
            self.console.error(f"fastsync: test-only fault injection is on: "
                               f"{faults.active()}")
        try:
            since, sampler = self.begin()
            self.audit.event("run", "started", dst=self.dst, mode="verify",
                             files=self.stats.files_total, bytes=self.stats.bytes_total)
            try:
                self.check_all(since, sampler)
            except Interrupted:
                self.console.clear()
                self.console.note("fastsync: verify: stopping; what was checked is recorded")
            except FastsyncError as e:
                self.ended("failed", error=str(e))
                raise
            return self.ended("interrupted" if self.stop.event.is_set() else
                              "partial" if self.stats.bad + self.stats.unreadable else "ok")
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def begin(self) -> tuple[int | None, Sampler | None]:
        """What this verify checks: (the pass's start for UNVERIFIED, or None for all
        rows; the sampler, if a sample)."""
        opts, catalog, stats = self.opts, self.catalog, self.stats
        everything, _ = catalog.verify_counts(None)
        if everything and _empty(self.dst):
            raise UsageError(f"DST {os.fsdecode(self.dst)!r} is empty, but the catalog "
                             f"records {everything:,} files there: is the share mounted?")
        if opts.sample is not None:
            want = sample_size(opts.sample, everything)
            stats.files_total, stats.bytes_total = want, None
            self.console.note(f"fastsync: verify: a random sample of {want:,} of the "
                              f"{everything:,} synced files")
            self.unhashed()
            return None, Sampler(want, everything)
        if opts.again:
            catalog.set_meta(PASS_KEY, time.time_ns())
        since = int(catalog.get_meta(PASS_KEY, 0) or 0)
        stats.files_total, stats.bytes_total = catalog.verify_counts(since)
        done = everything - stats.files_total
        self.console.note(
            f"fastsync: verify: {stats.files_total:,} files ({format_size(stats.bytes_total)})"
            f" to check" + (" (a new full pass: --again)" if opts.again else "")
            + (f"; {done:,} found intact since they were synced (--again checks them too)"
               if done else ""))
        self.unhashed()
        return since, None

    def unhashed(self) -> None:
        count = self.catalog.unhashed()
        if count:
            self.console.note(f"fastsync: verify: {count:,} synced files have no hash "
                              f"(DST held them before fastsync copied them): not checked")

    def check_all(self, since: int | None, sampler: Sampler | None) -> None:
        after = None
        while True:
            rows = self.catalog.verify_page(after, since)
            if not rows:
                break
            for row in rows:
                if self.stop.event.is_set():
                    raise Interrupted()
                if sampler is None or sampler.take():
                    self.check(row)
            after = rows[-1].key
        self.console.clear()

    # ------------------------------------------------------------ one row --

    def check(self, row: Checkable) -> None:
        name = os.fsdecode(row.dst[len(self.dst) + 1:])
        self.stats.current = [name, row.size, 0]
        try:
            if row.kind == "symlink":
                self.check_link(row)
            else:
                self.check_file(row)
        except Mismatch as m:
            self.bad(row, m)
        except OSError as e:
            self.unreadable(row, e)
        else:
            self.good(row)
        self.stats.files += 1
        self.stats.current = None
        self.show()

    def check_file(self, row: Checkable) -> None:
        fd = open_at_dst(row.dst)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise Mismatch("verify: not a regular file at DST")
            if st.st_size != row.size:
                raise Mismatch(f"verify: size differs at DST ({st.st_size:,} bytes, "
                               f"{row.size:,} copied)")
            found = self.reader.digest(fd, row.dst, row.size, row.algo, self.progress)
        finally:
            os.close(fd)
        if found != row.hash.lower():
            raise Mismatch(MISMATCH, f"{row.algo}:{found}")

    def check_link(self, row: Checkable) -> None:
        try:
            target = os.readlink(row.dst)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                raise Mismatch(MISSING) from None
            if e.errno == errno.EINVAL:
                raise Mismatch("verify: not a symbolic link at DST") from None
            raise
        if target != row.link_target:
            raise Mismatch("verify: link target differs at DST", target)

    def progress(self, n: int) -> None:
        self.stats.bytes += n
        self.stats.current[2] += n
        self.show()

    # ------------------------------------------------------------ outcomes --

    def good(self, row: Checkable) -> None:
        self.stats.ok += 1
        self.audit.event("verify", "ok", src=row.src, dst=row.dst, size=row.size,
                         hash=_hash(row))
        if self.opts.verbose:
            self.console.note(f"fastsync: intact: {os.fsdecode(row.dst)}")
        self.batch.append(row.key)
        if (len(self.batch) >= BATCH_FILES
                or time.monotonic() - self.batch_started >= BATCH_SECONDS):
            self.flush()

    def bad(self, row: Checkable, m: Mismatch) -> None:
        if m.message == MISSING:
            self.still_there()
        self.stats.bad += 1
        self.audit.event("verify", "failed", src=row.src, dst=row.dst, size=row.size,
                         hash=_hash(row), found=m.found, error=m.message)
        self.audit.flush()      # the log first: the catalog never says more than it
        self.catalog.mark_bad(row.key, m.message)
        self.console.error(f"fastsync: {m.message}: {os.fsdecode(row.dst)!r} (pending "
                           f"again: the next run copies it)")

    def unreadable(self, row: Checkable, error: OSError) -> None:
        """Not a verdict on the copy: an error may be the share's, not the file's. The
        row stays as it is (synced, not verified): the next verify tries it again."""
        self.still_there()
        self.stats.unreadable += 1
        self.audit.event("verify", "failed", src=row.src, dst=row.dst, size=row.size,
                         hash=_hash(row), error=describe(error))
        self.console.error(f"fastsync: verify: cannot read {os.fsdecode(row.dst)!r} at "
                           f"DST: {describe(error)} (left as it is; verify again)")

    def still_there(self) -> None:
        """Stop (status 3) if DST is no longer the directory verify started with."""
        try:
            st = os.stat(self.dst)
            same = (st.st_dev, st.st_ino) == self.root
        except OSError:
            same = False
        if not same:
            raise FatalError(f"stopped: DST {os.fsdecode(self.dst)!r} is gone or is another "
                             f"directory now (unmounted?); what was checked is recorded")

    def flush(self) -> None:
        if self.batch:
            self.audit.flush()
            self.catalog.mark_verified(self.batch, time.time_ns())
            self.batch = []
        self.batch_started = time.monotonic()

    # -------------------------------------------------------------- the end --

    def ended(self, status: str, error: str | None = None) -> int:
        stats = self.stats
        try:
            self.flush()
        finally:
            self.audit.event("run", status, mode="verify", error=error, verified=stats.ok,
                             bytes=stats.bytes, mismatched=stats.bad,
                             failed=stats.unreadable)
            self.audit.flush()
        if error is None:
            self.summary(status)
        if status == "interrupted":
            return self.stop.exit_code
        return EXIT_PARTIAL if status == "partial" else EXIT_OK

    def summary(self, status: str) -> None:
        stats = self.stats
        took = time.monotonic() - self.started
        rate = format_rate(stats.bytes / took if took > 0 else None)
        parts = [f"{stats.ok:,} files intact ({format_size(stats.bytes)} read in "
                 f"{format_duration(took)}, {rate})"]
        if stats.bad:
            parts.append(f"{stats.bad:,} differ or are missing (pending again: the next "
                         f"run copies them)")
        if stats.unreadable:
            parts.append(f"{stats.unreadable:,} could not be read (left as they are: "
                         f"verify again)")
        head = ("interrupted; what was checked is recorded, verify again to go on"
                if status == "interrupted" else "done")
        self.console.note(f"fastsync: verify {head}: " + "; ".join(parts))

    def show(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now < self.next_show:        # called per read and per file: sample 4 times a second
            return
        self.next_show = now + 0.25
        stats = self.stats
        for meter in self.meters:
            meter.add(now, stats.bytes)
        rate, average = (m.rate() for m in self.meters)
        if stats.bytes_total is None:       # a sample: its bytes are not known ahead
            head, eta = f"{format_size(stats.bytes)}", None
        else:
            left = max(stats.bytes_total - stats.bytes, 0)
            eta = left / average if average else None
            pct = 100.0 * stats.bytes / stats.bytes_total if stats.bytes_total else 100.0
            head = (f"{format_size(stats.bytes)} of {format_size(stats.bytes_total)} "
                    f"({pct:.1f}%)")
        lines = [f"verify  {head}, {stats.files:,} of {stats.files_total:,} files, "
                 f"{format_rate(rate)}, ETA {format_duration(eta)}"]
        if stats.current is not None:
            name, size, done = stats.current
            share = f"{100.0 * done / size:.0f}% of {format_size(size)}" if size else "empty"
            lines.append(f"      now: {name}: {share}")
        if stats.bad or stats.unreadable:
            lines.append(f"      differ or missing {stats.bad:,}, unreadable "
                         f"{stats.unreadable:,}")
        # Console draws a status block only for its own phases; the drawing itself
        # (a terminal's refresh, a plain line every 10 s otherwise) is what is reused.
        self.console._status(lines, now)


def _empty(directory: bytes) -> bool:
    with os.scandir(directory) as entries:
        return next(entries, None) is None


def _hash(row: Checkable) -> str | None:
    return f"{row.algo}:{row.hash}" if row.hash else None
