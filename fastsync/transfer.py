"""What happens to one entry at the destination: temp name, open, finish, times, links.

The order that protects data: bytes go to a temporary name in the target directory
(`.fastsync-<16 hex>.tmp`, fixed per target so a killed run's leftover is reused, never
multiplied); times are applied to the open file; the data is made durable; only then is
the temporary renamed over the final name, and only after the rename is durable does
the catalog say `synced`. A reader of DST therefore sees either the old file or the
complete new one, never a partial file under the final name.

Times: atime and mtime are applied with nanosecond precision (utimensat). ctime and
birth time are recorded in the catalog but cannot be applied on Linux: no system call
sets a file's ctime (the kernel stamps it on every change), and none sets a birth time on
the filesystems fastsync supports (ext4, xfs, btrfs, NFS, CIFS, FUSE).
Permissions and ownership are recorded, never applied: new files get the usual
0666 & ~umask, which is what a share's own permission model expects.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import stat

from . import _core, faults
from .errors import SourceChanged

TEMP_RE = re.compile(rb"\.fastsync-(?:[0-9a-f]{16}|probe-\d+(?:-\d+)?)\.tmp\Z")

O_NOATIME = getattr(os, "O_NOATIME", 0)

def temp_path(dst: bytes) -> bytes:
    head, name = os.path.split(dst)
    digest = hashlib.blake2b(name, digest_size=8).hexdigest().encode()
    return os.path.join(head, b".fastsync-" + digest + b".tmp")


def is_temp_name(name: bytes) -> bool:
    return TEMP_RE.match(name) is not None


# ----------------------------------------------------------------------- source --

def open_source(path: bytes) -> tuple[int, tuple]:
    """Open a source file for reading without following a symlink, without blocking on
    a fifo that replaced it, and (where permitted) without updating its atime.
    Returns the descriptor and its _core stat tuple (one statx serves the type check
    and the metadata the copy records)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    faults.fail("open", path)
    try:
        try:
            fd = os.open(path, flags | O_NOATIME)
        except PermissionError:
            fd = os.open(path, flags)   # O_NOATIME needs ownership; EACCES re-raises here
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        # O_NOFOLLOW met a symlink: not a loop, a file replaced since the scan
        raise OSError(errno.ELOOP, "is now a symbolic link (it was a file when scanned); "
                      "the next scan takes it as a link", path) from None
    try:
        st = _core.fstat(fd)
        if not stat.S_ISREG(st[0]):
            raise SourceChanged(errno.EINVAL, "no longer a regular file", path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def changed(before: tuple, after: tuple, bytes_read: int) -> bool:
    """Did the source change between open and end of read: size, mtime, the length
    read, or the inode (a file replaced by another one of the same size and mtime,
    met after reopening it by path)?"""
    return (before[1] != after[1] or before[3] != after[3] or bytes_read != before[1]
            or before[9] != after[9])


class SourceFile:
    """A source file open for reading; reopened by path if its handle goes stale."""

    def __init__(self, path: bytes):
        self.path = path
        self.fd, self.stat = open_source(path)

    def read(self, pool: _core.BlockPool, index: int, offset: int, bucket) -> tuple[int, bool]:
        """Fill pool block `index` from `offset`: (bytes read, whether that was the end).
        Reads stop at the size the file had when opened, so finding the end costs no
        extra read (a round trip on a share); a file that grew since is caught by the
        check of its metadata after the last block (changed())."""
        size = self.stat[1]
        want = max(size - offset, 0)
        n = _core.read_block(self.fd, pool, index, offset, bucket,
                             faults.check("read", self.path), want)
        return n, n < min(want, pool.block_size) or offset + n >= size

    def fstat(self) -> tuple:
        faults.fail("stat", self.path)
        return _core.fstat(self.fd)

    def reopen(self) -> None:
        # The old descriptor is closed only once the new one is open: if opening fails,
        # self.fd stays a valid (stale) descriptor, not a number another thread may reuse.
        new, _ = open_source(self.path)
        old, self.fd = self.fd, new
        try:
            os.close(old)
        except OSError:
            pass

    def close(self) -> None:
        os.close(self.fd)


# ------------------------------------------------------------------ destination --

class DirMaker:
    """Creates destination directories on demand and remembers which exist.

    Never goes through a symlink: an existing non-directory where a directory belongs is
    an error for the files below it, not a path to follow elsewhere.
    """

    def __init__(self, root: bytes):
        self.root = root
        self._dev: dict[bytes, int] = {root: os.stat(root).st_dev}

    def device(self, directory: bytes) -> int:
        return self._dev[directory]

    def known(self, directory: bytes) -> bool:
        return directory in self._dev

    def ensure(self, directory: bytes) -> list[bytes]:
        """Make `directory` exist; return the directories whose content this changed."""
        if directory in self._dev:
            return []
        parent = os.path.dirname(directory)
        touched = self.ensure(parent)
        try:
            faults.fail("mkdir", directory)
            os.mkdir(directory)
            touched.append(parent)
        except FileExistsError:
            pass
        st = os.lstat(directory)
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "exists at the destination and is not "
                                     "a directory", directory)
        self._dev[directory] = st.st_dev
        return touched


def open_temp(tmp: bytes, final: bytes) -> int:
    """Create (or truncate) the temporary for `final`."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
    faults.fail("create", final)
    try:
        return os.open(tmp, flags, 0o666)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
    os.unlink(tmp)   # something put a symlink at our temporary name: never write through it
    return os.open(tmp, flags, 0o666)


DIRECT_ALIGN = 4096     # offsets and lengths of O_DIRECT writes are multiples of this


def set_direct(fd: int, on: bool) -> bool:
    """Turn O_DIRECT on or off for an open temporary; False if the filesystem refuses.

    Large files on local disks are written around the page cache: filling new page
    cache is most of a buffered writer's CPU time, and the data is synced right after
    anyway. A write must then start and end on DIRECT_ALIGN boundaries: whole blocks
    do, a file's short last block is written with O_DIRECT off again."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT if on else flags & ~os.O_DIRECT)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        return False
    return True


def reopen_temp(tmp: bytes, fd: int) -> int:
    """A fresh descriptor for a temporary whose handle went stale (ESTALE). The old one
    is closed only once the new one is open: if opening fails, the caller still owns
    a valid (stale) descriptor, never a number that another thread may reuse."""
    new = os.open(tmp, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.close(fd)
    except OSError:
        pass
    return new


class TempFile:
    """The temporary a file is written to, beside its final name: written front to
    back, given its times, flushed where the batch does not flush it, closed."""

    def __init__(self, tmp: bytes, final: bytes, fd: int):
        self.tmp, self.final, self.fd = tmp, final, fd
        self.direct = False                 # written with O_DIRECT (set_direct)

    def write(self, pool: _core.BlockPool, index: int, length: int, offset: int,
              bucket) -> None:
        _core.write_block(self.fd, pool, index, length, offset, bucket,
                          faults.check("write", self.final))

    def set_direct(self, on: bool) -> bool:
        """Turn O_DIRECT on or off; False (and `direct` unchanged) if refused."""
        if not set_direct(self.fd, on):
            return False
        self.direct = on
        return True

    def flush_behind(self, offset: int, length: int, block_size: int) -> None:
        """Start writeback of this block and wait for the previous one, so the page
        cache holds at most about two blocks of the file. A write-back error here means
        bytes already given to the kernel are lost: never retried in place."""
        _core.flush_behind(self.fd, offset, length, offset - block_size, block_size)

    def reopen(self) -> None:
        self.fd = reopen_temp(self.tmp, self.fd)

    def set_times(self, times: tuple[int, int]) -> None:
        set_times(self.fd, self.final, times)

    def close(self, fsync: bool) -> None:
        fd, self.fd = self.fd, -1
        close_temp(fd, self.final, fsync)


def set_times(fd: int, final: bytes, times: tuple[int, int]) -> None:
    """Apply (atime_ns, mtime_ns) to the written temporary of `final`, after its last
    write (a later write would move mtime again)."""
    faults.fail("utime", final)
    os.utime(fd, ns=times)


def close_temp(fd: int, final: bytes, fsync: bool) -> None:
    """Close the written temporary of `final`; `fsync` first where the batch syncfs
    does not cover it (see BATCH_DURABLE). The descriptor is closed whatever happens."""
    try:
        if fsync:
            faults.fail("flush", final)
            os.fsync(fd)
        faults.fail("flush", final)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)   # on NFS and FUSE a delayed write error surfaces here


def make_symlink(target: bytes, tmp: bytes, final: bytes, times: tuple[int, int]) -> None:
    """Create the link at the temporary name (renamed into place with the batch)."""
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    faults.fail("create", final)
    try:
        faults.fail("symlink", final)
        os.symlink(target, tmp)
    except OSError as e:
        if e.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS):
            raise OSError(e.errno, "the destination does not support symbolic links",
                          tmp) from None
        raise
    try:
        os.utime(tmp, ns=times, follow_symlinks=False)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS):
            raise   # link times are best effort: links are matched by target, not mtime


def sync_directory(path: bytes) -> None:
    """Make a rename in `path` durable; filesystems that cannot fsync a directory (some
    FUSE servers) make renames durable by themselves."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        faults.fail("flush", path)
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)
