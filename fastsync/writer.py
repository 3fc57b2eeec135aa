"""What a writer does with one file at DST: create its temporary, write its blocks at
their offsets (paced, with write-back as it goes), finish it. Raises, never catches:
the pipeline decides what a failure means.

O_DIRECT: large files on a local disk, unpaced, are written around the page cache
(filling new page cache is most of a buffered writer's CPU time, and the data is synced
right after anyway). A filesystem that wants more alignment answers EINVAL: that block
is written again buffered, and so is everything after it.
"""

from __future__ import annotations

import errno
import os

from .kinds import KindClash
from .transfer import DIRECT_ALIGN, TempFile

DIRECT_MIN_BLOCKS = 2    # files of at least this many blocks are written with O_DIRECT


class FileWriter:
    """Shared by the writer threads; one call per block or file, no state per file but
    the job's own."""

    def __init__(self, dest, retrier, pool, bucket, stats, count, src: bytes,
                 rename, direct: bool):
        self.dest, self.retrier, self.pool, self.bucket = dest, retrier, pool, bucket
        self.stats, self.count, self.src, self.rename = stats, count, src, rename
        self.direct = direct

    def open(self, job) -> None:
        """Make the parent directory exist, then create the temporary (files)."""
        dest, retrier = self.dest, self.retrier
        parent = os.path.dirname(job.entry.dst)
        dest.refuse_blocked(parent)     # in the way, as found before: no round trip
        job.touched = retrier.call("dst", "mkdir", lambda: self._make_parent(parent))
        job.own_fsync = dest.own_fsync(parent)
        if job.entry.kind == "symlink":
            return
        job.temp = TempFile(job.tmp, job.entry.dst, retrier.call(
            "dst", "create", lambda: dest.create_temp(job.tmp, job.entry.dst)))
        if (self.direct and not job.own_fsync
                and job.stat[1] >= DIRECT_MIN_BLOCKS * self.pool.block_size):
            job.temp.set_direct(True)

    def _make_parent(self, parent: bytes) -> list[bytes]:
        """ensure_dir; where DST has a non-directory in the way, make_room (which fails
        the file without --delete-extras). This file was just read from below that name
        in SRC, so SRC has a directory there and what DST has is extra."""
        try:
            return self.dest.ensure_dir(parent)
        except KindClash as clash:
            return self.dest.make_room(clash) + self.dest.ensure_dir(parent)

    def write(self, job, block) -> None:
        temp = job.temp
        if temp.direct and block.length % DIRECT_ALIGN:
            temp.set_direct(False)          # the short last block
        name = os.fsdecode(job.entry.src[len(self.src) + 1:])
        self.stats.current = (name, job.stat[1], job.written)
        try:
            self._write_block(temp, block)
        except OSError as e:
            if not (temp.direct and e.errno == errno.EINVAL):
                raise
            self.direct = False
            temp.set_direct(False)
            self._write_block(temp, block)
        # Write-back as it goes, so a cap holds on the wire and the page cache holds
        # little of a large file; O_DIRECT leaves nothing dirty, and an unpaced file of
        # one block is flushed with its batch anyway (a syscall per small file saved).
        if not (temp.direct or (block.offset == 0 and block.last and self.bucket is None)):
            temp.flush_behind(block.offset, block.length, self.pool.block_size)
        job.written += block.length
        self.count("bytes_written", block.length)
        self.stats.current = (name, job.stat[1], job.written)
        # Every file in flight, for --http and --progress json (one per stream); the
        # finisher takes it out once the file is recorded, copied or failed.
        self.stats.in_flight[id(job)] = self.stats.current

    def _write_block(self, temp: TempFile, block) -> None:
        self.retrier.call("dst", "write", lambda: temp.write(
            self.pool, block.index, block.length, block.offset, self.bucket),
            stale=temp.reopen)

    def finish(self, job) -> None:
        """Times, close (with fsync where the batch does not flush), and where the batch
        does not flush, the rename too: on a share these round trips overlap across
        files. Local files are renamed by the finisher after one syncfs per batch."""
        retrier, dest = self.retrier, self.dest
        if job.entry.kind == "symlink":
            retrier.call("dst", "symlink", lambda: dest.make_symlink(
                job.entry.link_target, job.tmp, job.entry.dst, job.times))
        else:
            temp = job.temp
            retrier.call("dst", "utime", lambda: temp.set_times(job.times),
                         stale=temp.reopen)
            temp.close(fsync=job.own_fsync)
        if job.own_fsync:
            self.rename(job)
