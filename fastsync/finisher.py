"""Finishing: files the writers are done with become `synced` in batches, once durable.

A writer hands over each file it took on, written or failed. Where one syncfs per batch
is a real flush (a local disk), the writer has closed the temporary, and a batch then
goes: DST's identity checked -> syncfs (the data) -> renames into place -> syncfs (the
renames). Where it is not (NFS, SMB, FUSE), the writer has already fsynced, closed and
renamed the file itself, so those round trips overlap across files; the batch then
makes each directory's renames durable, once per directory. Either way DST's identity is
checked again before recording: a batch that met an unmount is copied again, never
recorded as synced. Then audit lines, then one catalog transaction, then the counters.

A failure that may pass (the source changed while read, a transient error outlasted its
retries, a flush failed) is copied again later in the same run, up to FILE_RETRIES
times: `Again` holds those until they are due and tells the readers when none can come.

What DST removed to make room for an entry of another kind (--delete-extras, see
destination.py) is recorded with the batch: a `delete` audit line each, as mirror.py
writes them, and the run's deletion count in the catalog (record_removals).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from typing import Callable

from .catalog import Catalog, Outcome, PendingFile
from .kinds import KindClash
from .errors import FatalError, Interrupted, Restart, describe, may_pass
from .fifo import POLL

log = logging.getLogger(__name__)

FILE_RETRIES = 3         # copies of one file again in the same run after a passing failure
AGAIN_AFTER = (5, 15, 45)   # ... after this many times --retry-delay seconds

_ERRORS = (OSError, Interrupted, FatalError)


def record_removals(removed: list, audit, catalog: Catalog, run_id: int) -> None:
    """Tell and record entries DST removed to make room for SRC's (path, kind): an audit
    line each first (never a recorded deletion without its line), then the catalog
    forgets them, marks their directories changed and counts them as this run's."""
    if not removed:
        return
    for path, kind in removed:
        audit.event("delete", "ok", dst=path, kind=kind)
    audit.flush()
    catalog.forget_dest([path for path, _ in removed],
                        sorted({os.path.dirname(path) for path, _ in removed}),
                        run_id, len(removed))


class Again:
    """Files to copy again later in this run, and how many taken-on files are not yet
    settled (so a reader knows whether one may still come back)."""

    def __init__(self, delay: float):
        self.delay = delay
        self._heap: list = []           # (due, seq, entry, retries)
        self._order = itertools.count()
        self._sent = 0                  # files taken on by the readers
        self._settled = 0               # files the finisher is done with
        self._cond = threading.Condition()

    def taken(self) -> None:
        with self._cond:
            self._sent += 1

    def settled(self, n: int) -> None:
        with self._cond:
            self._settled += n
            self._cond.notify_all()

    def later(self, entry: PendingFile, retries: int) -> None:
        due = time.monotonic() + AGAIN_AFTER[retries] * self.delay
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._order), entry, retries + 1))
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def next(self, going: Callable[[], bool]) -> tuple[PendingFile, int] | None:
        """The next file to copy again once it is due; None when none can come any more
        (every file taken on is settled) or `going()` turns false."""
        with self._cond:
            while going():
                if self._heap:
                    due, _, entry, retries = self._heap[0]
                    if due <= time.monotonic():
                        heapq.heappop(self._heap)
                        return entry, retries
                    self._cond.wait(min(due - time.monotonic(), POLL))
                elif self._settled >= self._sent:
                    return None
                else:
                    self._cond.wait(POLL)
        return None


class Finished:
    """Files on their way to the finisher: (job, error) pairs, and one None per writer
    that has ended. The finisher wakes when a batch is full, when told to hurry (the
    backlog is all taken, or a writer ended), or every `POLL`; not once per file, which
    costs a thread switch each on a copy of many small files."""

    def __init__(self, batch: int, limit: int):
        self._items: list = []
        self._batch, self._limit = batch, limit
        self._cond = threading.Condition()
        self.hurry = False

    def put(self, item, consumer_alive: Callable[[], bool]) -> None:
        """Raises Interrupted if the finisher is gone while this waits for room."""
        with self._cond:
            while len(self._items) >= self._limit:
                if not self._cond.wait(POLL) and not consumer_alive():
                    raise Interrupted()
            self._items.append(item)
            if item is None or self.hurry or len(self._items) >= self._batch:
                self._cond.notify_all()

    def take(self, timeout: float) -> list:
        """Everything waiting (perhaps nothing, after `timeout`)."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            items, self._items = self._items, []
            self._cond.notify_all()       # room for writers waiting on the limit
            return items

    def empty(self) -> bool:
        return not self._items

    def wake(self) -> None:
        with self._cond:
            self.hurry = True
            self._cond.notify_all()


class Finisher:
    def __init__(self, dest, catalog: Catalog, audit, retrier, again: Again, stats, *,
                 algo: str, run_id: int, settle: Callable[[BaseException], BaseException],
                 stopping: Callable[[], bool], verbose: bool = False):
        self.dest, self.catalog, self.audit = dest, catalog, audit
        self.retrier, self.again, self.stats = retrier, again, stats
        self.algo, self.run_id, self.verbose = algo, run_id, verbose
        self.settle, self.stopping = settle, stopping
        # A destination that never makes room for another kind need not say so.
        self._take_removed = getattr(dest, "take_removed", lambda: [])
        self._told: set[bytes] = set()   # names in the way whose entries below failed

    def commit(self, batch: list) -> None:
        """batch: (job, error or None) pairs; a job without error is fully written,
        and renamed already if it is one the batch syncfs does not cover (own_fsync)."""
        errors = {id(job): error for job, error in batch if error is not None}
        ready = [job for job, error in batch if error is None]

        def fail(jobs, error, discard=True):
            for job in jobs:
                if discard:
                    self.dest.discard(-1, job.tmp)
                errors[id(job)] = self.settle(error)
            gone = {id(job) for job in jobs}
            return [job for job in ready if id(job) not in gone]

        batched = [job for job in ready if not job.own_fsync]
        if batched:
            try:
                self.retrier.call("dst", "check", self.dest.check)
            except _ERRORS as e:
                ready = fail(batched, e if isinstance(e, (Interrupted, FatalError, Restart))
                             else Restart(e.errno, e.strerror))
                batched = []
        if batched:
            try:
                self.dest.syncfs()
            except OSError as e:   # which file failed is unknown: none it covers is done
                ready = fail(batched, OSError(
                    e.errno, f"destination write-back failed: {e.strerror}"))
                batched = []
        renamed = []
        for job in batched:
            try:
                self.rename(job)
                renamed.append(job)
            except _ERRORS as e:
                ready = fail([job], e)
        if renamed:
            try:
                self.dest.syncfs()
            except OSError as e:   # data is complete, but the renames may not survive
                ready = fail(renamed, OSError(
                    e.errno, f"destination sync failed: {e.strerror}"), discard=False)
        ready = self._sync_directories(ready, fail)
        if ready:
            try:
                self.dest.check()
            except OSError as e:   # the renames may have gone to an unmount's mount point
                ready = fail(ready, Restart(e.errno, e.strerror),
                             discard=False)
        self._record(batch, errors)

    def _sync_directories(self, ready: list, fail) -> list:
        """Make renames the writers did durable: one fsync per directory."""
        by_dir: dict[bytes, list] = {}
        for job in ready:
            if job.own_fsync:
                by_dir.setdefault(os.path.dirname(job.entry.dst), []).append(job)
        for directory, jobs in by_dir.items():
            try:
                self.dest.sync_dir(directory)
            except OSError as e:
                ready = fail(jobs, e, discard=False)
        return ready

    def rename(self, job) -> None:
        """Rename a written temporary into place (under the retrier)."""
        attempts = []

        def rename():
            attempts.append(1)
            self.dest.rename(job.tmp, job.entry.dst, retrying=len(attempts) > 1)
        self.retrier.call("dst", "rename", rename)

    def _record(self, batch: list, errors: dict) -> None:
        record_removals(self._take_removed(), self.audit, self.catalog, self.run_id)
        outcomes, touched = [], set()
        recovered = 0       # copied now, after failing earlier in this run
        for job, _ in batch:
            self.stats.in_flight.pop(id(job), None)     # ended, well or not
            touched.update(job.touched)         # mkdir changed them
            error = errors.get(id(job))
            if isinstance(error, Interrupted):
                continue            # not an outcome: the file simply stays pending
            if error is None or (isinstance(error, KindClash) and not error.below):
                # renamed in; or its temporary came and went there (the rename met a
                # directory): either way that directory's times are to be set again
                touched.add(os.path.dirname(job.entry.dst))
            outcomes.append(self._outcome(job, error))
            recovered += error is None and job.retries > 0
        # Audit first: a crash in between leaves an audit line for a file still pending
        # (copied again later), never a synced file without its audit line.
        self.audit.flush()
        self.catalog.record(self.run_id, outcomes, self.algo, sorted(touched))
        stats = self.stats
        for outcome in outcomes:        # counted once recorded, not before
            if outcome.ok:
                stats.files_done += 1
                stats.bytes_done += outcome.size if outcome.hash is not None else 0
            elif outcome.final:
                stats.files_failed += 1
            else:
                stats.files_retried += 1
        stats.files_recovered += recovered
        self.again.settled(len(batch))

    def _outcome(self, job, error: BaseException | None) -> Outcome:
        entry = job.entry
        op = "link" if entry.kind == "symlink" else "copy"
        if error is None:
            size = len(entry.link_target) if entry.kind == "symlink" else job.stat[1]
            self.audit.event(op, "ok", src=entry.src, dst=entry.dst, size=size,
                             hash=f"{self.algo}:{job.hash}" if job.hash else None)
            if self.verbose:
                log.info("%s %s", "linked" if op == "link" else "copied",
                         os.fsdecode(entry.src))
            return Outcome(entry.key, True, size=size, hash=job.hash, stat=job.stat)
        message = describe(error)
        again = may_pass(error) and job.retries < FILE_RETRIES and not self.stopping()
        self.audit.event(op, "failed", src=entry.src, dst=entry.dst, size=entry.size,
                         error=message, retry="later in this run" if again else None)
        level, note = self._loudness(error)
        log.log(level, "failed: %s: %s%s", os.fsdecode(entry.src), message,
                "; will copy it again later in this run" if again else note)
        if again:
            self.again.later(entry, job.retries)
        return Outcome(entry.key, False, error=message, final=not again)

    def _loudness(self, error: BaseException) -> tuple[int, str]:
        """Every file below a name in DST's way fails for that one reason: the console
        warns once per such name (the audit log has every file, -v shows them)."""
        if not (isinstance(error, KindClash) and error.below):
            return logging.WARNING, ""
        if error.path in self._told:
            return logging.INFO, ""
        self._told.add(error.path)
        return logging.WARNING, ("; the other files below it fail the same way (see the "
                                 "audit log)")
