"""The transfer phase: readers -> FIFO -> writers -> finisher.

  readers   (--streams of them) take pending rows from the catalog in path order, each
            reads its file into blocks from the preallocated pool (GIL released, paced),
            hashes them as they are read and puts them on the FIFO; the last block of a
            file carries its hash.
  FIFO      bounded (--queue-capacity blocks, fifo.py): the readers run at most that far
            ahead. Each file's blocks go to one writer, in order.
  writers   (--streams of them) write each block at its offset into the file's temporary
            name (GIL released, paced), starting writeback as it goes so the page cache
            never holds more than about two blocks of a file; hand finished files to the
            finisher.
  finisher  applies times, closes, and in batches: makes the data durable (one syncfs),
            renames the temporaries into place, makes the renames durable (syncfs again),
            records the batch in the catalog in one transaction and writes audit lines.
            (On network and FUSE filesystems, and on filesystems mounted inside DST,
            each file is fsynced before its rename instead; see BATCH_DURABLE.)

Reading and writing overlap (full duplex on a share), and with several streams several
files are in flight each way: a share's client carries only so many requests per open
file, so one file at a time cannot fill a link. Durability costs one syncfs per batch,
not one fsync per file; the catalog never runs ahead of the disk.

Errors (retry.py): every filesystem operation runs under the Retrier, which retries
transient errors, waits out an unreachable share, and lets permanent ones fail the file.
A file that fails in a way that may pass (it changed while being read; a transient error
outlasted its retries; a flush or close failed, which is never retried in place) is
recorded as failed and then copied again later in the same run, up to FILE_RETRIES
times: the reader takes it up again once the backlog is done.

Stopping: stop() makes the readers quit at the next block, the writers drop what is
queued and remove the temporaries of the files they were writing, and the finisher
complete only the files already fully written. Every file the pipeline takes on reaches the finisher once,
as copied, failed or interrupted.
"""

from __future__ import annotations

import errno
import hashlib
import heapq
import itertools
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field

from . import _core, faults
from .catalog import Catalog, Outcome, PendingFile
from .errors import FatalError, Interrupted, Restart, SourceChanged, classify, describe, may_pass
from .fifo import POLL, BlockFifo    # POLL: how often a blocked thread looks around
from .retry import Policy, Retrier, Root
from .transfer import (BATCH_DURABLE, DirMaker, changed, close_temp,
                       DIRECT_ALIGN, discard_temp, make_symlink, open_source, open_temp,
                       rename_into_place, reopen_temp, set_direct, set_times, sync_directory,
                       temp_path)

log = logging.getLogger(__name__)

DIRECT_MIN_BLOCKS = 2    # files of at least this many blocks are written with O_DIRECT
BATCH_FILES = 256        # most files recorded per catalog transaction
BATCH_SECONDS = 0.5      # longest a finished file waits for its batch
FILE_RETRIES = 3         # copies of one file again in the same run after a passing failure
AGAIN_AFTER = (5, 15, 45)   # ... after this many times --retry-delay seconds


@dataclass(eq=False, slots=True)
class FileJob:
    """One file on its way through the pipeline (shared by its blocks)."""
    entry: PendingFile
    tmp: bytes
    retries: int = 0                   # times this run has taken this file up again
    stat: tuple | None = None          # the source as opened (fresh metadata)
    hash: str | None = None
    fd: int = -1                       # destination temporary, owned by the writer
    written: int = 0
    cancelled: bool = False            # set by the writer: stop reading this file
    writer: int | None = None          # the writer that holds it (fifo.py)
    touched: list = field(default_factory=list)   # dst dirs whose content changed
    own_fsync: bool = False            # not covered by the batch syncfs: fsync it
    direct: bool = False               # written with O_DIRECT (set_direct)

    @property
    def times(self) -> tuple[int, int]:
        return self.stat[2], self.stat[3]


@dataclass(slots=True)
class Block:
    """One FIFO entry, the spec's block (2.3): Data = pool block `index` (`length` bytes,
    -1 = no data); Offset; DestinationPath, Timestamps and Permissions via `job`;
    IsLastBlock = `last`; FileHash = `hash` on the last block. `error` ends the file."""
    job: FileJob
    index: int
    length: int
    offset: int
    last: bool
    hash: str | None = None
    error: BaseException | None = None


@dataclass
class TransferStats:
    files_total: int = 0
    bytes_total: int = 0
    bytes_before: int = 0           # copied by earlier runs (for "overall")
    files_done: int = 0             # recorded as synced
    bytes_done: int = 0
    files_failed: int = 0           # failed, not to be tried again in this run
    files_retried: int = 0          # failed, then taken up again later in this run
    bytes_read: int = 0
    bytes_written: int = 0
    current: tuple | None = None    # (name, size, bytes written) of the writer's file
    waiting: dict = field(default_factory=dict)   # side -> what the run waits for there
    started: float = field(default_factory=time.monotonic)


class _Done:
    """A job the writer hands on: `error` None means fully written."""
    __slots__ = ("job", "error")

    def __init__(self, job: FileJob, error: BaseException | None):
        self.job, self.error = job, error


class _Source:
    """The open source file of the reader; reopened by path if its handle goes stale."""

    def __init__(self, path: bytes, fd: int):
        self.path, self.fd = path, fd

    def reopen(self) -> None:
        # The old descriptor is closed only once the new one is open: if opening fails,
        # self.fd stays a valid (stale) descriptor, not a number another thread may reuse.
        new, _ = open_source(self.path)
        old, self.fd = self.fd, new
        try:
            os.close(old)
        except OSError:
            pass

    def stat(self) -> tuple:
        faults.fail("stat", self.path)
        return _core.fstat(self.fd)


class Pipeline:
    def __init__(self, catalog: Catalog, audit, *, src: bytes, dst: bytes, algo: str,
                 block_size: int, queue_capacity: int, bwlimit: int, run_id: int,
                 stats: TransferStats, policy: Policy, roots: dict[str, Root],
                 streams: int = 1, verbose: bool = False):
        self.catalog, self.audit = catalog, audit
        self.src, self.dst, self.algo = src, dst, algo
        self.run_id = run_id
        self.stats = stats
        self.verbose = verbose
        self.policy = policy
        # Beyond the queue: one block being filled by each reader, one written by each
        # writer. A file may fill a 1/streams share of the queue.
        self.pool = _core.BlockPool(queue_capacity + 2 * streams, block_size)
        self.free: queue.Queue = queue.Queue()
        for i in range(self.pool.count):
            self.free.put(i)
        self.fifo = BlockFifo(queue_capacity, -(-queue_capacity // streams), streams)
        self._counts = threading.Lock()     # stats.bytes_read/written: several threads
        self.done: queue.Queue = queue.Queue(maxsize=4 * BATCH_FILES)
        # One bucket per direction: --bwlimit caps reads from SRC and writes to DST each.
        self.read_bucket = _core.TokenBucket(bwlimit) if bwlimit else None
        self.write_bucket = _core.TokenBucket(bwlimit) if bwlimit else None
        self.dirs = DirMaker(dst)
        self.root_dev = self.dirs.device(dst)
        self._stop = threading.Event()
        self.retrier = Retrier(policy, roots, self._stop, status=self._waiting, audit=audit)
        self._root_lock = threading.Lock()
        self.fatal: BaseException | None = None       # stops the run (e.g. disk full)
        self.crash: BaseException | None = None       # a bug: re-raised by run()
        # Files to copy again later in this run: a heap of (due, seq, entry, retries).
        self._again: list = []
        self._order = itertools.count()
        self._sent = 0          # jobs the reader started
        self._settled = 0       # jobs the finisher is done with
        self._draining = threading.Event()   # the backlog is all taken: commit now
        self._progress = threading.Condition()
        self._backlog = None                 # the catalog's pending rows, shared by readers
        self._backlog_lock = threading.Lock()

        def thread(name, fn, *args):
            return threading.Thread(target=self._guard, args=(fn, *args), name=name,
                                    daemon=True)
        self._readers = [thread(f"reader-{i}", self._reader) for i in range(streams)]
        self._writers = [thread(f"writer-{i}", self._writer, i) for i in range(streams)]
        self._finisher_t = thread("finisher", self._finisher)
        self._threads = [*self._readers, *self._writers, self._finisher_t]

    # ------------------------------------------------------------- lifecycle --

    def start(self) -> None:
        # Consumers first: a thread that is not started yet is not alive, and "my
        # consumer is not alive" is how the others tell that it has ended.
        for t in reversed(self._threads):
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for bucket in (self.read_bucket, self.write_bucket):
            if bucket is not None:
                bucket.cancel()
        with self._progress:
            self._progress.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not self.alive()

    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except Interrupted:
            pass                    # gave up waiting on a thread that crashed
        except BaseException as e:  # a bug or a catalog failure: stop everything, report
            if self.crash is None:
                self.crash = e
            self.stop()

    def _fail_run(self, error: BaseException) -> None:
        if self.fatal is None:
            self.fatal = error
        self.stop()

    def _waiting(self, side: str, text: str | None) -> None:
        if text is None:
            self.stats.waiting.pop(side, None)
        else:
            self.stats.waiting[side] = text

    def _settle(self, error: BaseException) -> BaseException:
        """Sort an error met while handling a file: a fatal one (disk full, a share gone
        for good) stops the run and leaves the file pending, like a stop request; it is
        not the file's fault, so it does not count as a failed attempt."""
        if isinstance(error, FatalError) or classify(error) == "fatal":
            self._fail_run(error)
            return Interrupted()
        return error

    # Termination never rests on a sentinel alone: a put gives up when its consumers
    # have died, and a get ends when its producers have died and the queue is drained.
    # So a crash anywhere (a bug, a catalog or audit-log failure) ends every thread.

    def _readers_alive(self) -> bool:
        return any(t.is_alive() for t in self._readers)

    def _writers_alive(self) -> bool:
        return any(t.is_alive() for t in self._writers)

    def _put_block(self, block) -> None:
        self.fifo.put(block, self._writers_alive)

    def _put_done(self, item) -> None:
        while True:
            try:
                self.done.put(item, timeout=POLL)
                return
            except queue.Full:
                if not self._finisher_t.is_alive():
                    raise Interrupted() from None

    def _count(self, name: str, n: int) -> None:
        with self._counts:
            setattr(self.stats, name, getattr(self.stats, name) + n)

    def _acquire(self) -> int:
        while True:
            if self._stop.is_set():
                raise Interrupted()
            try:
                return self.free.get(timeout=POLL)
            except queue.Empty:
                continue

    def _release(self, index: int) -> None:
        if index >= 0:
            self.free.put(index)

    # ----------------------------------------------------------------- reader --

    def _reader(self) -> None:
        try:
            while not self._stop.is_set() and (entry := self._next_entry()) is not None:
                self._take(entry, 0)
            while (again := self._next_again()) is not None:
                self._take(*again)
        finally:
            self.fifo.producer_done()

    def _next_entry(self) -> PendingFile | None:
        with self._backlog_lock:
            if self._backlog is None:
                self._backlog = self.catalog.iter_backlog()
            return next(self._backlog, None)

    def _take(self, entry: PendingFile, retries: int) -> None:
        job = FileJob(entry, temp_path(entry.dst), retries=retries)
        with self._progress:
            self._sent += 1
        if entry.kind == "symlink":
            self._read_link(job)
        else:
            self._read_file(job)

    def _next_again(self) -> tuple[PendingFile, int] | None:
        """The next file to copy again once it is due; None when none can come any more
        (every file taken on is settled) or the run is stopping."""
        self._draining.set()
        with self._progress:
            while not self._stop.is_set() and self._finisher_t.is_alive():
                if self._again:
                    due, _, entry, retries = self._again[0]
                    if due <= time.monotonic():
                        heapq.heappop(self._again)
                        return entry, retries
                    self._progress.wait(min(due - time.monotonic(), POLL))
                elif self._settled >= self._sent:
                    return None
                else:
                    self._progress.wait(POLL)
        return None

    def _read_link(self, job: FileJob) -> None:
        path = job.entry.src
        try:
            job.stat = self.retrier.call("src", "stat", lambda: _core.lstat(path))
            job.entry.link_target = self.retrier.call("src", "readlink",
                                                      lambda: os.readlink(path))
            error = None
        except (OSError, Interrupted, FatalError) as e:
            error = self._settle(e)
        self._put_block(Block(job, -1, 0, 0, True, error=error))

    def _read_file(self, job: FileJob) -> None:
        path, retrier = job.entry.src, self.retrier
        offset, index = 0, -1
        try:
            fd, job.stat = retrier.call("src", "open", lambda: open_source(path))
            src = _Source(path, fd)
        except (OSError, Interrupted, FatalError) as e:
            self._put_block(Block(job, -1, 0, 0, True, error=self._settle(e)))
            return
        try:
            digest = hashlib.new(self.algo)
            while True:
                if job.cancelled:
                    return          # the writer failed this file and reported it
                index = self._acquire()
                n = retrier.call("src", "read", lambda: _core.read_block(
                    src.fd, self.pool, index, offset, self.read_bucket,
                    faults.check("read", path)), stale=src.reopen)
                if n:
                    digest.update(self.pool.view(index)[:n])
                self._count("bytes_read", n)
                last = n < self.pool.block_size
                if last:
                    end = retrier.call("src", "stat", src.stat, stale=src.reopen)
                    if changed(job.stat, end, offset + n):
                        raise SourceChanged(0, "source changed while it was being copied")
                block = Block(job, index, n, offset, last,
                              hash=digest.hexdigest() if last else None)
                index = -1
                self._put_block(block)
                offset += n
                if last:
                    return
        except (OSError, Interrupted, FatalError) as e:
            self._release(index)
            self._put_block(Block(job, -1, 0, offset, True, error=self._settle(e)))
        finally:
            os.close(src.fd)

    # ----------------------------------------------------------------- writer --

    def _writer(self, worker: int) -> None:
        try:
            while (block := self.fifo.get(worker, self._readers_alive)) is not None:
                try:
                    self._write(block)
                finally:
                    self._release(block.index)
        finally:
            self._put_done(None)

    def _write(self, block: Block) -> None:
        job, retrier = block.job, self.retrier
        if job.cancelled:
            return
        if block.error is not None or self._stop.is_set():
            error = block.error if block.error is not None else Interrupted()
            self._give_up(job, error)
            return
        try:
            parent = os.path.dirname(job.entry.dst)
            if job.entry.kind == "symlink":
                job.touched = retrier.call("dst", "mkdir", lambda: self.dirs.ensure(parent))
                self._put_done(_Done(job, None))
                return
            if job.fd < 0:
                job.touched = retrier.call("dst", "mkdir", lambda: self.dirs.ensure(parent))
                job.own_fsync = not (self.batch_durable
                                     and self.dirs.device(parent) == self.root_dev)
                job.fd = retrier.call("dst", "create", lambda: self._create(job))
                job.direct = (self.direct and not job.own_fsync
                              and job.stat[1] >= DIRECT_MIN_BLOCKS * self.pool.block_size
                              and set_direct(job.fd, True))
            if job.direct and block.length % DIRECT_ALIGN:
                job.direct = not set_direct(job.fd, False)     # the short last block
            if block.length:
                self.stats.current = (os.fsdecode(job.entry.src[len(self.src) + 1:]),
                                      job.stat[1], job.written)
                try:
                    self._write_block(job, block)
                except OSError as e:
                    if not (job.direct and e.errno == errno.EINVAL):
                        raise
                    # this filesystem wants more alignment than DIRECT_ALIGN: buffered
                    self.direct = job.direct = False
                    set_direct(job.fd, False)
                    self._write_block(job, block)
                if not job.direct:      # O_DIRECT leaves nothing dirty to write back
                    # A write-back error here means bytes already given to the kernel
                    # are lost: not retried in place, the file is copied again (may_pass).
                    _core.flush_behind(job.fd, block.offset, block.length,
                                       block.offset - self.pool.block_size,
                                       self.pool.block_size)
                job.written += block.length
                self._count("bytes_written", block.length)
                self.stats.current = (self.stats.current[0], job.stat[1], job.written)
            if block.last:
                job.hash = block.hash
                self._put_done(_Done(job, None))
        except (OSError, Interrupted, FatalError) as e:
            self._give_up(job, self._settle(e))

    def _write_block(self, job: FileJob, block: Block) -> None:
        self.retrier.call("dst", "write", lambda: _core.write_block(
            job.fd, self.pool, block.index, block.length, block.offset, self.write_bucket,
            faults.check("write", job.entry.dst)), stale=lambda: self._reopen(job))

    def _create(self, job: FileJob) -> int:
        self._check_root()      # never create into an unmounted share's mount point
        return open_temp(job.tmp, job.entry.dst)

    def _reopen(self, job: FileJob) -> None:
        job.fd = reopen_temp(job.tmp, job.fd)

    def _check_root(self) -> None:
        """Does DST's path still lead to the directory held open since the start? After
        an unmount it leads to the empty mount point on the local disk below, where a
        rename would put files that only look copied. A share mounted again (same
        kind of filesystem, new device) is taken up: its directory is held from now on."""
        with self._root_lock:
            try:
                now = os.stat(self.dst)
            except OSError as e:
                raise OSError(errno.ENOTCONN, f"DST cannot be reached ({e.strerror})",
                              self.dst) from None
            try:
                held = os.fstat(self.root_fd)
                if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
                    return
            except OSError:
                pass            # the directory held open is on a mount that died
            if self.retrier.roots["dst"].problem() is None:
                fd = os.open(self.dst, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                os.close(self.root_fd)
                self.root_fd = fd
                raise Restart(errno.ENOTCONN, "DST was mounted again while the file was "
                                              "being copied")
        raise OSError(errno.ENOTCONN, "DST is no longer the directory the run started "
                                      "with (unmounted?)", self.dst)

    def _give_up(self, job: FileJob, error: BaseException) -> None:
        """Abandon a file: remove its temporary, stop the reader on it, report it once."""
        job.cancelled = True
        if job.fd >= 0:
            discard_temp(job.fd, job.tmp)
            job.fd = -1
        self._put_done(_Done(job, error))

    # --------------------------------------------------------------- finisher --

    def _finisher(self) -> None:
        batch: list[tuple[FileJob, BaseException | None]] = []
        first = 0.0
        ended = 0               # writers that have said they are done
        while True:
            try:
                item = self.done.get(timeout=POLL)
            except queue.Empty:
                item = False if self._writers_alive() or not self.done.empty() else None
            if item is None:
                # Every writer's sentinel, or (a writer died without one) no writer
                # left and nothing queued: the other writers' files may still be
                # queued behind the first sentinel.
                ended += 1
                if ended >= len(self._writers) or (not self._writers_alive()
                                                   and self.done.empty()):
                    break
                item = False
            if item:
                if not batch:
                    first = time.monotonic()
                batch.append((item.job, self._close(item.job, item.error)))
            if batch and (len(batch) >= BATCH_FILES or time.monotonic() - first >= BATCH_SECONDS
                          or (self._draining.is_set() and self.done.empty())):
                self._commit(batch)
                batch = []
        if batch:
            self._commit(batch)

    def _close(self, job: FileJob, error: BaseException | None) -> BaseException | None:
        """Finish writing one file (times, close) or create one link; None if it worked."""
        if error is not None:
            return error
        try:
            if job.entry.kind == "symlink":
                self.retrier.call("dst", "symlink", lambda: make_symlink(
                    job.entry.link_target, job.tmp, job.entry.dst, job.times))
            else:
                self.retrier.call("dst", "utime", lambda: set_times(job.fd, job.entry.dst, job.times),
                                  stale=lambda: self._reopen(job))
                fd, job.fd = job.fd, -1
                close_temp(fd, job.entry.dst, fsync=job.own_fsync)
            return None
        except (OSError, Interrupted, FatalError) as e:
            discard_temp(job.fd, job.tmp)
            job.fd = -1
            return self._settle(e)

    def _commit(self, batch: list[tuple[FileJob, BaseException | None]]) -> None:
        """Durable data -> rename into place -> durable renames -> catalog + audit.
        DST's identity is checked before the renames and again before recording: a
        batch that met an unmount is copied again, never recorded as synced."""
        ready = [job for job, error in batch if error is None]
        errors = {id(job): error for job, error in batch if error is not None}
        if ready:
            try:
                self.retrier.call("dst", "check", self._check_root)
            except (OSError, Interrupted, FatalError) as e:
                for job in ready:
                    discard_temp(-1, job.tmp)
                    errors[id(job)] = self._settle(
                        e if isinstance(e, (Interrupted, FatalError, Restart))
                        else Restart(e.errno, e.strerror))
                ready = []
        if any(not job.own_fsync for job in ready):
            try:
                self._syncfs()
            except OSError as e:   # which file failed is unknown: none it covers is done
                for job in ready:
                    if not job.own_fsync:
                        discard_temp(-1, job.tmp)
                        errors[id(job)] = self._settle(OSError(
                            e.errno, f"destination write-back failed: {e.strerror}"))
                ready = [job for job in ready if job.own_fsync]
        renamed = []
        touched = {d for job, _ in batch for d in job.touched}   # mkdir changed them
        for job in ready:
            try:
                self._rename(job)
                if job.own_fsync:
                    sync_directory(os.path.dirname(job.entry.dst))
                renamed.append(job)
                touched.add(os.path.dirname(job.entry.dst))
            except (OSError, Interrupted, FatalError) as e:
                discard_temp(-1, job.tmp)
                errors[id(job)] = self._settle(e)
        if any(not job.own_fsync for job in renamed):
            try:
                self._syncfs()
            except OSError as e:   # data is complete, but the rename may not survive a crash
                for job in renamed:
                    if not job.own_fsync:
                        errors[id(job)] = self._settle(OSError(
                            e.errno, f"destination sync failed: {e.strerror}"))
        if renamed:
            try:
                self._check_root()
            except OSError as e:   # the renames may have gone to an unmount's mount point
                for job in renamed:
                    errors[id(job)] = Restart(e.errno, e.strerror)
        outcomes = []
        for job, _ in batch:
            error = errors.get(id(job))
            if isinstance(error, Interrupted):
                continue            # not an outcome: the file simply stays pending
            outcomes.append(self._outcome(job, error))
        # Audit first: a crash in between leaves an audit line for a file still pending
        # (copied again later), never a synced file without its audit line.
        self.audit.flush()
        self.catalog.record(self.run_id, outcomes, self.algo, sorted(touched))
        with self._progress:
            self._settled += len(batch)
            self._progress.notify_all()

    def _syncfs(self) -> None:
        faults.fail("syncfs", self.dst)
        with self._root_lock:
            _core.syncfs_fd(self.root_fd)

    def _rename(self, job: FileJob) -> None:
        attempts = []

        def rename():
            attempts.append(1)
            rename_into_place(job.tmp, job.entry.dst, retrying=len(attempts) > 1)
        self.retrier.call("dst", "rename", rename)

    def _outcome(self, job: FileJob, error: BaseException | None) -> Outcome:
        entry = job.entry
        op = "link" if entry.kind == "symlink" else "copy"
        if error is None:
            size = len(entry.link_target) if entry.kind == "symlink" else job.stat[1]
            self.stats.files_done += 1
            self.stats.bytes_done += size if entry.kind == "file" else 0
            self.audit.event(op, "ok", src=entry.src, dst=entry.dst, size=size,
                             hash=f"{self.algo}:{job.hash}" if job.hash else None)
            if self.verbose:
                log.info("%s %s", "linked" if op == "link" else "copied",
                         os.fsdecode(entry.src))
            return Outcome(entry.key, True, size=size, hash=job.hash, stat=job.stat)
        message = describe(error)
        again = may_pass(error) and job.retries < FILE_RETRIES and not self._stop.is_set()
        if again:
            self.stats.files_retried += 1
        else:
            self.stats.files_failed += 1
        self.audit.event(op, "failed", src=entry.src, dst=entry.dst, size=entry.size,
                         error=message, retry="later in this run" if again else None)
        log.warning("failed: %s: %s%s", os.fsdecode(entry.src), message,
                    "; will copy it again later in this run" if again else "")
        if again:
            due = time.monotonic() + AGAIN_AFTER[job.retries] * self.policy.delay
            with self._progress:
                heapq.heappush(self._again, (due, next(self._order), entry, job.retries + 1))
        return Outcome(entry.key, False, error=message, final=not again)

    # --------------------------------------------------------------------- run --

    def __enter__(self) -> "Pipeline":
        self.root_fd = os.open(self.dst, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.batch_durable = _core.filesystem_type(self.root_fd) in BATCH_DURABLE
        # O_DIRECT for large files on a local disk, unpaced (paced slices are not
        # aligned; network filesystems turn O_DIRECT into one round trip per write)
        self.direct = (self.batch_durable and self.write_bucket is None
                       and self.pool.block_size % DIRECT_ALIGN == 0)
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.root_fd)
        if self._backlog is not None and not any(t.is_alive() for t in self._readers):
            self._backlog.close()       # its private catalog connection
