"""The transfer phase: readers -> FIFO -> writers -> finisher. Orchestration only: threads,
queues, pool indices, buckets and stopping. One file's work is in transfer.py, DST's in
destination.py, batches and recording in finisher.py.

  readers   (streams of them) take pending rows from the catalog in path order, each
            reads its file into blocks from the preallocated pool (GIL released, paced),
            hashes them as they are read and puts them on the FIFO; the last block of a
            file carries its hash.
  FIFO      bounded (--queue-capacity blocks, fifo.py): the readers run at most that far
            ahead. Each file's blocks go to one writer, in order.
  writers   (streams of them) write each block at its offset into the file's temporary
            name (GIL released, paced), starting writeback as it goes so the page cache
            never holds more than about two blocks of a file. After the last block the
            writer finishes the file itself: times, close, and where a batch syncfs is
            no real flush (NFS, SMB, FUSE) fsync and rename too. Those are round trips
            on a share (~20 ms each): with many writers they overlap across files.
  finisher  commits finished files in batches (finisher.py) and records them.

Streams: --streams, or by DST's filesystem (destination.py: 2 on a local disk, where
threads cost CPU; 16 on a share, where files in flight hide per-file latency).

Errors (retry.py): every filesystem operation runs under the Retrier, which retries
transient errors, waits out an unreachable share, and lets permanent ones fail the file.
A fatal one (disk full, a share gone for good) stops the run; the file stays pending.

Stopping: stop() makes the readers quit at the next block, the writers drop what is
queued and remove the temporaries of the files they were writing, and the finisher
complete only the files already fully written. Every file the pipeline takes on reaches
the finisher once, as copied, failed or interrupted.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from . import _core
from .backlog import Striped
from .catalog import Catalog, PendingFile
from .destination import LocalDestination
from .errors import FatalError, Interrupted, SourceChanged, is_fatal
from .fifo import POLL, BlockFifo    # POLL: how often a blocked thread looks around
from .finisher import Again, Finished, Finisher
from .probe import Traits
from .pacing import Pacing
from .retry import Policy, Retrier, Root
from .times import time_problem
from .transfer import DIRECT_ALIGN, SourceFile, TempFile, changed, temp_path
from .writer import FileWriter

log = logging.getLogger(__name__)

BATCH_FILES = 256        # most files recorded per catalog transaction
BATCH_SECONDS = 0.5      # longest a finished file waits for its batch
FINISHING_THREADS = 32   # files closed, fsynced and renamed at once on a share

_ERRORS = (OSError, Interrupted, FatalError)


@dataclass(eq=False, slots=True)
class FileJob:
    """One file on its way through the pipeline (shared by its blocks)."""
    entry: PendingFile
    tmp: bytes
    retries: int = 0                   # times this run has taken this file up again
    stat: tuple | None = None          # the source as opened (fresh metadata)
    hash: str | None = None
    temp: TempFile | None = None       # destination temporary, owned by the writer
    written: int = 0
    cancelled: bool = False            # set by the writer: stop reading this file
    writer: int | None = None          # the writer that holds it (fifo.py)
    touched: list = field(default_factory=list)   # dst dirs whose content changed
    own_fsync: bool = False            # not covered by the batch syncfs: the writer
                                       # fsyncs and renames it itself

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
    files_recovered: int = 0        # of those, copied on a later try
    bytes_read: int = 0
    bytes_written: int = 0
    current: tuple | None = None    # (name, size, bytes written) of a writer's file
    streams_busy: int = 0           # readers working on a file now
    in_flight: dict = field(default_factory=dict)  # id(job) -> (name, size, written)
    waiting: dict = field(default_factory=dict)   # side -> what the run waits for there
    started: float = field(default_factory=time.monotonic)

    def files_in_flight(self) -> list[dict]:
        """Every file being copied, as --http and --progress json show them."""
        files = list(self.in_flight.values()) or ([] if self.current is None else
                                                  [self.current])
        return [{"name": name, "size": size, "done": done} for name, size, done in files]


class Pipeline:
    def __init__(self, catalog: Catalog, audit, dest: LocalDestination, *, src: bytes,
                 algo: str, block_size: int, queue_capacity: int, bwlimit: int, run_id: int,
                 stats: TransferStats, policy: Policy, roots: dict[str, Root],
                 streams: int | None = None, verbose: bool = False, traits=Traits(),
                 backlog=None):
        self.catalog, self.audit = catalog, audit
        self.traits = traits            # what DST can hold (probe.py)
        self.backlog = backlog          # () -> the pending files, in order (backlog.py)
        self.src, self.algo = src, algo
        self.stats = stats
        self._stop = threading.Event()
        self.retrier = Retrier(policy, roots, self._stop, status=self._waiting, audit=audit)
        self.dest = dest
        self.streams = streams or self.dest.default_streams
        self._make_pool(queue_capacity, block_size)
        self._counts = threading.Lock()     # stats.bytes_read/written: several threads
        self.done = Finished(BATCH_FILES, 4 * BATCH_FILES)
        self.pacing = Pacing(bwlimit, self._stop.is_set, POLL)
        self.fatal: BaseException | None = None       # stops the run (e.g. disk full)
        self.crash: BaseException | None = None       # a bug: re-raised by run()
        self.again = Again(policy.delay)
        self.finisher = Finisher(self.dest, catalog, audit, self.retrier, self.again, stats,
                                 algo=algo, run_id=run_id, settle=self._settle,
                                 stopping=self._stop.is_set, verbose=verbose)
        self.writing = self._file_writer(src, block_size)
        # Where files are fsynced and renamed one by one (a share), finishing threads do
        # that, so many more files wait for their round trips at once than there are
        # streams, without more readers or pool blocks.
        self._finishing = (None if self.dest.batch_durable else
                           ThreadPoolExecutor(FINISHING_THREADS, thread_name_prefix="finish"))
        self._finish_slots = threading.BoundedSemaphore(2 * FINISHING_THREADS)
        # On a local disk a file of one block is written by its reader (_write_here).
        # Elsewhere every file goes through the FIFO: on a share, reading one file while
        # another is written is what keeps both directions of the link busy.
        self._write_small = self.dest.batch_durable
        self._small_lock = threading.Lock()
        self._draining = threading.Event()   # the backlog is all taken: commit now
        self._backlog = None                 # the catalog's pending rows, shared by readers
        self._backlog_lock = threading.Lock()
        self._readers = [self._thread(f"reader-{i}", self._reader)
                         for i in range(self.streams)]
        self._writers = [self._thread(f"writer-{i}", self._writer, i)
                         for i in range(self.streams)]
        self._finisher_t = self._thread("finisher", self._finisher)
        self._threads = [*self._readers, *self._writers, self._finisher_t]

    def _make_pool(self, queue_capacity: int, block_size: int) -> None:
        # Beyond the queue: one block being filled by each reader, one written by each
        # writer. A file may fill a 1/streams share of the queue.
        self.pool = _core.BlockPool(queue_capacity + 2 * self.streams, block_size)
        self.free: queue.SimpleQueue = queue.SimpleQueue()
        for i in range(self.pool.count):
            self.free.put(i)
        self.fifo = BlockFifo(queue_capacity, -(-queue_capacity // self.streams),
                              self.streams)

    def pause(self) -> None:
        """Hold every reader and writer before its next block (the API's pause): no
        file data moves until resume(); what was written is still finished and recorded."""
        self.pacing.pause()

    def resume(self) -> None:
        self.pacing.resume()

    def _file_writer(self, src: bytes, block_size: int) -> FileWriter:
        # O_DIRECT for large files on a local disk, unpaced (paced slices are not
        # aligned; network filesystems turn O_DIRECT into one round trip per write)
        direct = (self.dest.direct_ok and self.pacing.write_bucket is None
                  and block_size % DIRECT_ALIGN == 0)
        return FileWriter(self.dest, self.retrier, self.pool, self.pacing.write_bucket,
                          self.stats, self._count, src, self.finisher.rename, direct=direct)

    def set_rate(self, rate: int) -> None:
        """Change the cap now (a --bwlimit timetable, the API), from any thread; 0 lifts
        it. A block that was being read or written unpaced when a cap comes on finishes
        unpaced (at most one block per stream and direction); O_DIRECT stays as the run
        began."""
        self.pacing.set(rate)
        self.writing.bucket = self.pacing.write_bucket

    def _thread(self, name: str, fn, *args) -> threading.Thread:
        return threading.Thread(target=self._guard, args=(fn, *args), name=name, daemon=True)

    # ------------------------------------------------------------- lifecycle --

    def start(self) -> None:
        # Consumers first: a thread that is not started yet is not alive, and "my
        # consumer is not alive" is how the others tell that it has ended.
        for t in reversed(self._threads):
            t.start()

    def stop(self) -> None:
        self._stop.set()
        self.pacing.cancel()
        self.again.wake()

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

    def _waiting(self, side: str, text: str | None) -> None:
        if text is None:
            self.stats.waiting.pop(side, None)
        else:
            self.stats.waiting[side] = text

    def _settle(self, error: BaseException) -> BaseException:
        """Sort an error met while handling a file: a fatal one (disk full, a share gone
        for good) stops the run and leaves the file pending, like a stop request; it is
        not the file's fault, so it does not count as a failed attempt."""
        if is_fatal(error):
            if self.fatal is None:
                self.fatal = error
            self.stop()
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
        self.done.put(item, self._finisher_t.is_alive)

    def _count(self, name: str, n: int) -> None:
        with self._counts:
            setattr(self.stats, name, getattr(self.stats, name) + n)

    def _acquire(self) -> int:
        self.pacing.hold()
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
            self._draining.set()
            self.done.wake()
            while (again := self.again.next(self._going)) is not None:
                self._take(*again)
        finally:
            self.fifo.producer_done()

    def _going(self) -> bool:
        return not self._stop.is_set() and self._finisher_t.is_alive()

    def _next_entry(self) -> PendingFile | None:
        with self._backlog_lock:
            if self._backlog is None:
                self._backlog = (self.backlog() if self.backlog is not None
                                 else Striped(self.catalog.iter_backlog()))
            return next(self._backlog, None)

    def _take(self, entry: PendingFile, retries: int) -> None:
        self._count("streams_busy", 1)
        try:
            self._take_one(entry, retries)
        finally:
            self._count("streams_busy", -1)

    def _take_one(self, entry: PendingFile, retries: int) -> None:
        job = FileJob(entry, temp_path(entry.dst), retries=retries)
        self.again.taken()
        if entry.kind == "symlink":
            self._read_link(job)
        elif self._write_small and entry.size < self.pool.block_size:
            # Files read and written by one thread go one at a time: two such threads
            # spend more on handing the GIL to each other at every system call than
            # they gain from the second core (measured: 20,000 small files 4.5 s with
            # one, 5.5 s with two), while larger files still stream side by side.
            with self._small_lock:
                self._read_file(job)
        else:
            self._read_file(job)

    def _read_link(self, job: FileJob) -> None:
        path = job.entry.src
        if self.traits.links is not None:
            # DST holds none: failed at once, not retried as if its EIO were an outage
            error = OSError(errno.EOPNOTSUPP, self.traits.links)
            self._put_block(Block(job, -1, 0, 0, True, error=error))
            return
        try:
            job.stat = self.retrier.call("src", "stat", lambda: _core.lstat(path))
            job.entry.link_target = self.retrier.call("src", "readlink",
                                                      lambda: os.readlink(path))
            error = self._untimely(job.stat)
        except _ERRORS as e:
            error = self._settle(e)
        self._put_block(Block(job, -1, 0, 0, True, error=error))

    def _untimely(self, st: tuple) -> OSError | None:
        """A source whose times changed since the scan to one the catalog cannot record
        or DST cannot hold (times.py) fails now, for good, before any byte is copied."""
        problem = time_problem(st, self.traits.times)
        return None if problem is None else OSError(errno.EOVERFLOW, problem + "; not copied")

    def _read_file(self, job: FileJob) -> None:
        path, retrier = job.entry.src, self.retrier
        offset, index = 0, -1
        try:
            src = retrier.call("src", "open", lambda: SourceFile(path))
            job.stat = src.stat
        except _ERRORS as e:
            self._put_block(Block(job, -1, 0, 0, True, error=self._settle(e)))
            return
        if (error := self._untimely(job.stat)) is not None:
            src.close()
            self._put_block(Block(job, -1, 0, 0, True, error=error))
            return
        try:
            digest = hashlib.new(self.algo)
            while True:
                if job.cancelled:
                    return          # the writer failed this file and reported it
                index = self._acquire()
                n, last = retrier.call("src", "read", lambda: src.read(
                    self.pool, index, offset, self.pacing.read_bucket), stale=src.reopen)
                if n:
                    digest.update(self.pool.view(index)[:n])
                self._count("bytes_read", n)
                if last:
                    end = retrier.call("src", "stat", src.fstat, stale=src.reopen)
                    if changed(job.stat, end, offset + n):
                        raise SourceChanged(0, "source changed while it was being copied")
                block = Block(job, index, n, offset, last,
                              hash=digest.hexdigest() if last else None)
                index = -1
                if last and offset == 0 and self._write_small:
                    self._write_here(block)
                    return
                self._put_block(block)
                offset += n
                if last:
                    return
        except _ERRORS as e:
            self._release(index)
            self._put_block(Block(job, -1, 0, offset, True, error=self._settle(e)))
        finally:
            src.close()

    # ----------------------------------------------------------------- writer --

    def _writer(self, worker: int) -> None:
        handed: list[Future] = []       # files this writer gave to the finishing threads
        try:
            while (block := self.fifo.get(worker, self._readers_alive)) is not None:
                try:
                    self.pacing.hold()
                    written = self._write(block)
                finally:
                    self._release(block.index)
                if written is not None:
                    self._hand_over(written, handed)
        finally:
            wait(handed)                # their outcomes reach the finisher before our end
            self._put_done(None)

    def _write(self, block: Block) -> FileJob | None:
        """Write one block; the file's job once its last block is written."""
        job = block.job
        if job.cancelled:
            return None
        if block.error is not None or self._stop.is_set():
            self._give_up(job, block.error if block.error is not None else Interrupted())
            return None
        try:
            if block.offset == 0 and job.temp is None:
                self.writing.open(job)
            if block.length:
                self.writing.write(job, block)
        except _ERRORS as e:
            self._give_up(job, self._settle(e))
            return None
        if block.last:
            job.hash = block.hash
            return job
        return None

    def _write_here(self, block: Block) -> None:
        """A file of one block on a local disk, written by the reader that read it:
        handing it to a writer thread costs more CPU (thread switches) than the write."""
        try:
            written = self._write(block)
        finally:
            self._release(block.index)
        if written is not None:
            self._finish(written)

    def _hand_over(self, job: FileJob, handed: list) -> None:
        """Finish a written file: here, or where each file waits for its own round trips
        (own_fsync: close ~20 ms, rename ~15 ms on a share), on a finishing thread, so
        that the writer goes on with the next file meanwhile."""
        if self._finishing is None or not job.own_fsync:
            self._finish(job)
            return
        self._finish_slots.acquire()    # bounds the open temporaries waiting there
        handed[:] = [f for f in handed if not f.done()]
        handed.append(self._finishing.submit(self._guard, self._finish, job))

    def _finish(self, job: FileJob) -> None:
        try:
            self.writing.finish(job)
        except _ERRORS as e:
            self._give_up(job, self._settle(e))
        else:
            self._put_done((job, None))
        finally:
            if self._finishing is not None and job.own_fsync:
                self._finish_slots.release()

    def _give_up(self, job: FileJob, error: BaseException) -> None:
        """Abandon a file: remove its temporary, stop the reader on it, report it once."""
        job.cancelled = True
        self.dest.discard(job.temp.fd if job.temp is not None else -1, job.tmp)
        if job.temp is not None:
            job.temp.fd = -1
        self._put_done((job, error))

    # --------------------------------------------------------------- finisher --

    def _finisher(self) -> None:
        batch: list[tuple[FileJob, BaseException | None]] = []
        first = 0.0
        ended = 0               # writers that have said they are done
        while True:
            items = self.done.take(POLL)
            for item in items:
                if item is None:
                    ended += 1
                else:
                    if not batch:
                        first = time.monotonic()
                    batch.append(item)
            # Every writer's end, or (a writer died without one) no writer left and
            # nothing queued: the others' files may still be queued behind an end.
            last = ended >= len(self._writers) or (not self._writers_alive()
                                                   and self.done.empty())
            while len(batch) >= BATCH_FILES:
                self.finisher.commit(batch[:BATCH_FILES])
                batch = batch[BATCH_FILES:]
            if batch and (last or time.monotonic() - first >= BATCH_SECONDS
                          or (self._draining.is_set() and self.done.empty())):
                self.finisher.commit(batch)
                batch = []
            if last:
                return

    # --------------------------------------------------------------------- run --

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        if self._finishing is not None:
            self._finishing.shutdown()
        if self._backlog is not None and not any(t.is_alive() for t in self._readers):
            self._backlog.close()       # its private catalog connection
