# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The hot path of fastsync: bytes and time, no decisions.

- BlockPool: every data block the pipeline will ever use, allocated once, page-aligned.
- read_block / write_block: fill or drain one block with the GIL released, paced by an
  optional TokenBucket in slices much smaller than a block.
- TokenBucket: a nanosecond-exact rate limiter that starts empty.
- lstat / fstat: one statx(2) call giving what the catalog records, birth time included.
- syncfs, flush_behind, set_parent_death_signal: the few syscalls Python's os lacks.

Cost model: one Python call per block (5 MiB by default), one C loop iteration per slice
(~256 KiB when paced), never per byte. Python decides what to copy, retry and log.
"""

from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.errno cimport errno, EINTR, EINVAL, EIO, ENOSYS, EOPNOTSUPP, ESPIPE
from libc.stdlib cimport free
from libc.string cimport strerror
from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_FillInfo
from posix.types cimport off_t
from posix.unistd cimport pread, pwrite

import os as _os

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX

cdef extern from "<stdlib.h>" nogil:
    int posix_memalign(void **memptr, size_t alignment, size_t size)

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    cdef struct timespec:
        time_t tv_sec
        long tv_nsec
    int CLOCK_MONOTONIC
    int TIMER_ABSTIME
    int clock_gettime(int clk, timespec *ts)
    int clock_nanosleep(int clk, int flags, const timespec *req, timespec *rem)

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    int pthread_mutex_init(pthread_mutex_t *m, const void *attr)
    int pthread_mutex_destroy(pthread_mutex_t *m)
    int pthread_mutex_lock(pthread_mutex_t *m)
    int pthread_mutex_unlock(pthread_mutex_t *m)

cdef extern from "<fcntl.h>" nogil:
    int AT_FDCWD
    int AT_SYMLINK_NOFOLLOW
    int AT_EMPTY_PATH
    int SYNC_FILE_RANGE_WAIT_BEFORE
    int SYNC_FILE_RANGE_WRITE
    int SYNC_FILE_RANGE_WAIT_AFTER
    int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags)

cdef extern from "<sys/stat.h>" nogil:
    cdef struct statx_timestamp:
        int64_t tv_sec
        uint32_t tv_nsec
    cdef struct statx:
        uint32_t stx_mask
        uint32_t stx_mode       # declared wider than the kernel's u16; Cython only reads it
        uint32_t stx_uid
        uint32_t stx_gid
        uint64_t stx_ino
        uint64_t stx_size
        statx_timestamp stx_atime
        statx_timestamp stx_btime
        statx_timestamp stx_ctime
        statx_timestamp stx_mtime
        uint32_t stx_dev_major
        uint32_t stx_dev_minor
    int statx_fn "statx" (int dirfd, const char *path, int flags, unsigned int mask, statx *buf)
    unsigned int STATX_BASIC_STATS
    unsigned int STATX_BTIME

cdef extern from "<unistd.h>" nogil:
    int syncfs(int fd)

cdef extern from "<sys/prctl.h>" nogil:
    int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4,
              unsigned long arg5)
    int PR_SET_PDEATHSIG

cdef extern from "<sys/vfs.h>" nogil:
    cdef struct statfs:
        long f_type
    int fstatfs(int fd, statfs *buf)

cdef extern from "<sys/sysmacros.h>" nogil:
    uint64_t makedev(unsigned int major, unsigned int minor)


cdef inline int64_t _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


def monotonic_ns():
    """The clock the token bucket runs on (CLOCK_MONOTONIC), in nanoseconds."""
    return _now()


cdef object _oserror(int err, object filename=None):
    if filename is None:
        return OSError(err, strerror(err).decode("utf-8", "replace"))
    return OSError(err, strerror(err).decode("utf-8", "replace"), filename)


# ----------------------------------------------------------------------------- pool --

cdef class BlockPool:
    """`count` blocks of `block_size` bytes, allocated once, each 4096-byte aligned.

    The pool owns memory only. Which block is free is the pipeline's business; a block is
    named by its index, and `view(i)` is a writable memoryview that keeps the pool alive.
    """
    cdef char *_mem
    cdef readonly Py_ssize_t count
    cdef readonly Py_ssize_t block_size
    cdef Py_ssize_t _stride
    cdef object __weakref__

    def __cinit__(self, Py_ssize_t count, Py_ssize_t block_size):
        if count < 1 or block_size < 1:
            raise ValueError("a pool needs at least one block of at least one byte")
        self._stride = (block_size + 4095) // 4096 * 4096
        cdef void *mem = NULL
        if posix_memalign(&mem, 4096, <size_t>(self._stride * count)) != 0:
            raise MemoryError(f"cannot allocate {count} blocks of {block_size} bytes")
        self._mem = <char *>mem
        self.count = count
        self.block_size = block_size

    def __dealloc__(self):
        free(self._mem)

    cdef inline char *_slot(self, Py_ssize_t index) except NULL:
        if index < 0 or index >= self.count:
            raise IndexError(f"block {index} is not in a pool of {self.count}")
        return self._mem + index * self._stride

    def view(self, Py_ssize_t index):
        """Writable memoryview of the whole block `index`."""
        self._slot(index)
        # Made per call, never kept: a view references the pool, so a pool holding its
        # views would be a cycle, and its memory would wait for the cyclic GC.
        return memoryview(_Slot(self, index))


cdef class _Slot:
    """Buffer-protocol window on one block; holds a reference so the pool outlives it."""
    cdef BlockPool _pool
    cdef Py_ssize_t _index

    def __cinit__(self, BlockPool pool, Py_ssize_t index):
        self._pool = pool
        self._index = index

    def __getbuffer__(self, Py_buffer *buf, int flags):
        PyBuffer_FillInfo(buf, self, self._pool._slot(self._index), self._pool.block_size,
                          0, flags)

    def __releasebuffer__(self, Py_buffer *buf):
        pass


# --------------------------------------------------------------------- token bucket --

cdef inline Py_ssize_t _slice_for(int64_t rate) noexcept nogil:
    # ~12.5 ms of traffic per slice: 100 ms windows stay within a few percent of the
    # rate while sleeps stay long enough (>= 1 ms) to cost little. A multiple of 4096, so
    # that paced slices of an O_DIRECT file stay aligned when a cap comes on mid-run.
    # Unlimited: no slicing at all, the copy loops take whole blocks.
    if rate == 0:
        return PY_SSIZE_T_MAX
    return min(max(rate // 80, 16384), 1 << 20) // 4096 * 4096


cdef class TokenBucket:
    """Paces a byte stream at `rate` bytes per second, exact to the nanosecond.

    Kept in virtual-time form: `_tat` is the instant by which every byte granted so far is
    paid for. Granting n bytes moves it n * 1e9 / rate ns later (the remainder is carried,
    so rounding never drifts) and the caller waits until then. Idle time earns credit for
    at most `burst` bytes, so a pause never becomes a burst bigger than that. The bucket
    starts empty: the first bytes wait like all others.

    `set_rate(rate)` changes the rate live (0: unlimited). What is owed is repaid at the
    new rate from that instant on, sleepers included (they look again at least every
    20 ms); credit earned at the old rate is dropped, so a change never lets a burst
    through, and a cap that comes back after "unlimited" starts empty like a new bucket.

    `reserve(n, now_ns)` is the whole arithmetic with the clock passed in (tests drive it
    with a fake clock); `consume(n)` reads CLOCK_MONOTONIC and sleeps without the GIL.
    Thread-safe: several streams may share one bucket.
    """
    cdef readonly int64_t rate          # bytes/s; 0 = unlimited (only through set_rate)
    cdef readonly int64_t burst
    cdef readonly Py_ssize_t slice
    cdef bint _auto_slice               # slice and burst follow the rate (not given)
    cdef bint _auto_burst
    cdef int64_t _burst_ns
    cdef int64_t _tat
    cdef int64_t _carry
    cdef int64_t _waited
    cdef int64_t _granted
    cdef int64_t _changes               # rate changes so far: sleepers compare it
    cdef bint _cancelled
    cdef pthread_mutex_t _lock

    def __cinit__(self, int64_t rate, int64_t burst=-1, Py_ssize_t slice=0, start_ns=None):
        if rate <= 0:
            raise ValueError("rate must be positive (bytes per second)")
        self._auto_slice = slice <= 0
        self._auto_burst = burst < 0
        self.slice = _slice_for(rate) if self._auto_slice else slice
        self.burst = self.slice if self._auto_burst else burst
        self.rate = rate
        self._burst_ns = self.burst * 1000000000 // rate
        self._tat = _now() if start_ns is None else <int64_t>start_ns
        self._carry = 0
        self._waited = 0
        self._granted = 0
        self._changes = 0
        self._cancelled = False
        pthread_mutex_init(&self._lock, NULL)

    def __dealloc__(self):
        pthread_mutex_destroy(&self._lock)

    cdef inline int64_t _locked_read(self, int64_t *field) noexcept nogil:
        # Writers run without the GIL on other threads: only the mutex orders them.
        cdef int64_t value
        pthread_mutex_lock(&self._lock)
        value = field[0]
        pthread_mutex_unlock(&self._lock)
        return value

    cdef int64_t _grant(self, int64_t n, int64_t now, int64_t *mark) noexcept nogil:
        """Grant n bytes at `now`; return the instant the caller may go on. `mark`, if
        given, gets the bytes granted up to these and the rate changes so far: what a
        sleeper needs to find its deadline again after a change (_deadline)."""
        cdef int64_t num, deadline = now
        pthread_mutex_lock(&self._lock)
        self._granted += n
        if mark != NULL:
            mark[0] = self._granted
            mark[1] = self._changes
        if self.rate != 0:
            if self._tat < now - self._burst_ns:
                self._tat = now - self._burst_ns
                self._carry = 0
            num = n * 1000000000 + self._carry
            self._tat += num // self.rate
            self._carry = num % self.rate
            deadline = self._tat
        pthread_mutex_unlock(&self._lock)
        return deadline

    cdef int64_t _deadline(self, int64_t position) noexcept nogil:
        """When the byte `position` (counted in _granted) is paid for, at today's rate:
        the bytes granted after it are paid for between then and _tat. Called holding
        the lock, only after a rate change. Unlimited: at once."""
        cdef double after
        if self.rate == 0:
            return 0
        after = <double>(self._granted - position) * 1e9 / <double>self.rate
        # terabytes granted after it (while unlimited, say): paid for long ago, and no
        # int64 to overflow
        return self._tat - <int64_t>after if after < <double>self._tat else 0

    cdef bint _keep_waiting(self, int64_t *mark, int64_t *deadline) noexcept nogil:
        """Between two sleeps: False if cancelled; after a rate change, move `deadline`
        to where the new rate puts it."""
        cdef bint going
        pthread_mutex_lock(&self._lock)
        going = not self._cancelled
        if going and mark[1] != self._changes:
            mark[1] = self._changes
            deadline[0] = self._deadline(mark[0])
        pthread_mutex_unlock(&self._lock)
        return going

    cdef int64_t _consume(self, int64_t n) noexcept nogil:
        """Grant n bytes and sleep until they are paid for; return ns slept.

        Sleeps toward an absolute deadline in steps of at most 20 ms so that cancel()
        and set_rate() take effect promptly; oversleeping one step is repaid by the next
        deadline.
        """
        cdef int64_t mark[2]
        cdef int64_t start = _now()
        cdef int64_t deadline = self._grant(n, start, mark)
        cdef int64_t now = start, step_end
        cdef timespec ts
        while now < deadline:
            if not self._keep_waiting(mark, &deadline) or now >= deadline:
                break       # cancelled, or a higher rate (or none) paid for it already
            step_end = deadline if deadline - now <= 20000000 else now + 20000000
            ts.tv_sec = step_end // 1000000000
            ts.tv_nsec = step_end % 1000000000
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)
            now = _now()
        # Several streams may finish sleeping at once: an unlocked += would lose some.
        pthread_mutex_lock(&self._lock)
        self._waited += now - start
        pthread_mutex_unlock(&self._lock)
        return now - start

    cdef void _retime(self, int64_t rate, int64_t now) noexcept nogil:
        """set_rate under the lock: what is owed at `now` is rescaled to the new rate;
        credit is dropped (it was earned at the old rate, and would be a burst now)."""
        cdef double owed
        if self.rate == 0 or rate == 0 or self._tat <= now:
            self._tat = now
        else:
            owed = <double>(self._tat - now) * <double>self.rate / <double>rate
            # 1 TiB/s -> 1 KiB/s turns 1 ms owed into 12 days: clamped, never wrapped
            self._tat = now + (<int64_t>owed if owed < 4e18 - now else <int64_t>4e18 - now)
        self._carry = 0
        self.rate = rate
        if self._auto_slice:
            self.slice = _slice_for(rate)
        if self._auto_burst:
            self.burst = self.slice if rate else 0
        self._burst_ns = self.burst * 1000000000 // rate if rate else 0
        self._changes += 1

    def set_rate(self, int64_t rate, now_ns=None):
        """Change the rate now (or at `now_ns` on the bucket's clock, for tests); 0 means
        unlimited. Takes effect for sleepers within 20 ms; the same rate changes nothing."""
        if rate < 0:
            raise ValueError("rate must be 0 (unlimited) or positive (bytes per second)")
        cdef int64_t now = _now() if now_ns is None else <int64_t>now_ns
        pthread_mutex_lock(&self._lock)
        if rate != self.rate:
            self._retime(rate, now)
        pthread_mutex_unlock(&self._lock)

    cdef bint _is_cancelled(self) noexcept nogil:
        cdef bint cancelled
        pthread_mutex_lock(&self._lock)
        cancelled = self._cancelled
        pthread_mutex_unlock(&self._lock)
        return cancelled

    def reserve(self, int64_t n, int64_t now_ns):
        """Grant n bytes at time now_ns; return ns to wait (0 if none). No sleeping."""
        if n < 0:
            raise ValueError("cannot grant a negative number of bytes")
        cdef int64_t wait = self._grant(n, now_ns, NULL) - now_ns
        return wait if wait > 0 else 0

    def consume(self, int64_t n):
        """Grant n bytes and sleep (GIL released) until paid for; return ns slept."""
        if n < 0:
            raise ValueError("cannot grant a negative number of bytes")
        cdef int64_t slept
        with nogil:
            slept = self._consume(n)
        return slept

    def cancel(self):
        """Stop all current and future sleeps at once (shutdown)."""
        pthread_mutex_lock(&self._lock)
        self._cancelled = True
        pthread_mutex_unlock(&self._lock)

    @property
    def cancelled(self):
        return self._is_cancelled()

    @property
    def waited_ns(self):
        """Total time callers spent sleeping in consume() and the copy loops."""
        return self._locked_read(&self._waited)

    @property
    def granted(self):
        """Total bytes granted so far, by reserve(), consume() and the copy loops."""
        return self._locked_read(&self._granted)


# ----------------------------------------------------------------- copy loops --------

ctypedef ssize_t (*pwrite_fn)(int fd, const void *buf, size_t count, off_t offset) noexcept nogil

# write_block calls pwrite through this pointer so that tests can stand in for a
# misbehaving destination (a FUSE server that takes fewer bytes than asked, or none);
# only _set_write_cap_for_tests changes it.
cdef pwrite_fn _pwrite = pwrite
cdef Py_ssize_t _write_cap = 0


cdef ssize_t _capped_pwrite(int fd, const void *buf, size_t count, off_t offset) noexcept nogil:
    if count > <size_t>_write_cap:
        count = <size_t>_write_cap
    return pwrite(fd, buf, count, offset)


def _set_write_cap_for_tests(cap):
    """TESTS ONLY: from now on every pwrite in write_block takes at most `cap` bytes
    (0: the destination accepts none and pwrite returns 0). None restores plain pwrite.
    Process-wide and unsynchronised: never call it while a copy is running."""
    global _pwrite, _write_cap
    if cap is None:
        _pwrite = pwrite
        return
    if cap < 0:
        raise ValueError("the cap is a number of bytes")
    _write_cap = cap
    _pwrite = _capped_pwrite


def read_block(int fd, BlockPool pool not None, Py_ssize_t index, int64_t offset,
               TokenBucket bucket=None, int fault=0, Py_ssize_t limit=-1):
    """Fill block `index` from fd at file offset `offset` until full (or `limit` bytes,
    if given and smaller) or end of file. A caller that knows the file's size passes
    what is left of it as `limit`: no further read (a round trip on a share) is spent
    on finding the end.

    Returns the number of bytes read; 0 means end of file. Reads are positional (pread),
    so a retry, or a read from a reopened fd, repeats exactly. Short reads (common on
    network filesystems) are continued; EINTR is retried. When paced, each slice is paid
    for after it is read, so a file's last, short slice costs only what it carried.
    `fault` (tests only, see faults.py): fail the first system call with this errno.
    """
    cdef char *buf = pool._slot(index)
    cdef Py_ssize_t want = limit if 0 <= limit < pool.block_size else pool.block_size
    cdef Py_ssize_t got = 0, step
    cdef Py_ssize_t piece = bucket.slice if bucket is not None else want
    cdef ssize_t n
    cdef int err = 0, e
    with nogil:
        while got < want:
            step = want - got
            if step > piece:
                step = piece
            if fault:
                n, e, fault = -1, fault, 0
            else:
                n = pread(fd, buf + got, <size_t>step, <off_t>(offset + got))
                e = errno if n < 0 else 0
            if n < 0:
                if e == EINTR:
                    continue
                err = e
                break
            if n == 0:
                break
            got += n
            if bucket is not None:
                bucket._consume(n)
    if err:
        raise _oserror(err)
    return got


def write_block(int fd, BlockPool pool not None, Py_ssize_t index, Py_ssize_t length,
                int64_t offset, TokenBucket bucket=None, int fault=0):
    """Write the first `length` bytes of block `index` at file offset `offset`.

    Loops over partial writes and EINTR; when paced, each slice is paid for before it is
    written, once however many calls it takes, so the bytes leave no faster than the
    bucket allows. Positional (pwrite): a retry rewrites the same bytes in the same place.
    A pwrite that takes no bytes raises OSError(EIO) rather than being asked again.
    `fault` (tests only, see faults.py): fail the first system call with this errno.
    """
    cdef char *buf = pool._slot(index)
    cdef Py_ssize_t done = 0, step, paid = 0
    cdef Py_ssize_t piece = bucket.slice if bucket is not None else length
    cdef ssize_t n
    cdef int err = 0, e
    cdef bint stalled = False
    if length < 0 or length > pool.block_size:
        raise ValueError(f"length {length} does not fit a block of {pool.block_size}")
    if length == 0 and fault:
        raise _oserror(fault)
    with nogil:
        while done < length:
            step = length - done
            if step > piece:
                step = piece
            # `paid` is what was paid for but not yet written: after EINTR or a short
            # write those bytes go again and must not be charged again.
            if bucket is not None and paid < step:
                bucket._consume(step - paid)
                paid = step
            if fault:
                n, e, fault = -1, fault, 0
            else:
                n = _pwrite(fd, buf + done, <size_t>step, <off_t>(offset + done))
                e = errno if n < 0 else 0
            if n < 0:
                if e == EINTR:
                    continue
                err = e
                break
            if n == 0:
                # Only a broken server takes none of a non-empty write. Asking again at
                # once would spin here, without the GIL and out of stop()'s reach, for
                # as long as it stays broken; the caller's retrier asks again after a
                # pause instead.
                stalled = True
                break
            done += n
            paid -= n
    if err:
        raise _oserror(err)
    if stalled:
        raise OSError(EIO, "the destination accepted no bytes (write returned 0)")


def flush_behind(int fd, int64_t offset, int64_t length, int64_t prev_offset=-1,
                 int64_t prev_length=0):
    """Start writeback of [offset, offset+length) and wait for the previous range.

    Keeps at most about two blocks of a file dirty in the page cache, so a kernel-buffered
    mount sends data at the pace it was written instead of in bursts at close or sync.
    Returns False where the filesystem does not support sync_file_range. Real writeback
    errors are raised: the kernel reports them once, and fsync would not see them again.
    """
    cdef int rc = 0, err = 0
    with nogil:
        if prev_offset >= 0 and prev_length > 0:
            rc = sync_file_range(fd, prev_offset, prev_length,
                                 SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE
                                 | SYNC_FILE_RANGE_WAIT_AFTER)
        if rc == 0 and length > 0:
            rc = sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)
        if rc != 0:
            err = errno
    if rc == 0:
        return True
    if err in (EINVAL, ENOSYS, EOPNOTSUPP, ESPIPE):
        return False
    raise _oserror(err)


def syncfs_fd(int fd):
    """syncfs(2): make everything written to fd's filesystem durable; raise on error."""
    cdef int rc, err = 0
    with nogil:
        rc = syncfs(fd)
        if rc != 0:
            err = errno
    if rc != 0:
        raise _oserror(err)


# ----------------------------------------------------------------------- metadata --

# Seconds whose nanoseconds fit in int64 whatever tv_nsec is (about 1677..2262).
cdef int64_t _SAFE_SEC = 9223372035


cdef inline object _ns(statx_timestamp ts):
    """A timestamp in ns since the epoch, exact for any time the filesystem holds.

    tv_sec * 10**9 overflows int64 outside 1677..2262, and filesystems hold more (ext4
    1901..2446, btrfs any int64 seconds): such a time is computed in Python ints, not
    wrapped into a wrong date. Deciding what to do with it is the scan's business."""
    if -_SAFE_SEC <= ts.tv_sec <= _SAFE_SEC:
        return ts.tv_sec * 1000000000 + ts.tv_nsec     # C arithmetic: almost every time
    return (<object>ts.tv_sec) * 1000000000 + ts.tv_nsec


cdef tuple _stat_tuple(statx *st):
    btime = _ns(st.stx_btime) if st.stx_mask & STATX_BTIME else None
    return (st.stx_mode & 0xFFFF, st.stx_size, _ns(st.stx_atime), _ns(st.stx_mtime),
            _ns(st.stx_ctime), btime, st.stx_uid, st.stx_gid,
            makedev(st.stx_dev_major, st.stx_dev_minor), st.stx_ino)


def lstat(bytes path not None):
    """statx(2) without following a final symlink.

    Returns (mode, size, atime_ns, mtime_ns, ctime_ns, btime_ns or None, uid, gid, dev,
    ino); btime is None where the filesystem does not report a birth time.
    """
    cdef statx st
    cdef const char *p = path
    cdef int rc, err = 0
    with nogil:
        rc = statx_fn(AT_FDCWD, p, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &st)
        if rc != 0:
            err = errno
    if rc != 0:
        raise _oserror(err, _os.fsdecode(path))
    return _stat_tuple(&st)


def fstat(int fd):
    """statx(2) of an open file; same tuple as lstat()."""
    cdef statx st
    cdef int rc, err = 0
    with nogil:
        rc = statx_fn(fd, b"", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME, &st)
        if rc != 0:
            err = errno
    if rc != 0:
        raise _oserror(err)
    return _stat_tuple(&st)


def filesystem_type(int fd):
    """fstatfs(2) f_type of the filesystem holding fd (e.g. 0xEF53 for ext4)."""
    cdef statfs st
    cdef int rc, err = 0
    with nogil:
        rc = fstatfs(fd, &st)
        if rc != 0:
            err = errno
    if rc != 0:
        raise _oserror(err)
    return st.f_type & 0xFFFFFFFF


def set_parent_death_signal(int signum):
    """Ask the kernel to send `signum` to this process when its parent dies.

    The one-file binary runs as a child of a small unpacking parent; this makes a
    `kill -9` of the parent stop the copy too instead of leaving an orphan running.
    """
    if prctl(PR_SET_PDEATHSIG, <unsigned long>signum, 0, 0, 0) != 0:
        raise _oserror(errno)
