"""The two locks that keep runs from destroying each other's work.

catalog lock  One run per catalog. Taken on the catalog file's identity, not on how its
              path is spelled: `<real path>.lock` (symlinks and `..` resolved) holds the
              holder's pid for the message, and the catalog file itself is locked too,
              so a second name for it (a hard link, a bind mount) is caught as well.
DST lock      One run per destination, whatever its catalog: `DST/.fastsync.lock`. Two
              runs with different catalogs on one DST would delete each other's
              temporaries as stale leftovers. The lock lives on DST itself, so it also
              works between two hosts where the share passes flock on to the server
              (NFSv4, SMB); a FUSE mount keeps flock on one host only. It is removed when
              the copy and the deletions are done; a killed run leaves it behind, unlocked,
              and the next run simply takes it.

Both are flock(2) locks, which the kernel drops when the process dies, however it dies.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import stat
import time

from . import _core
from .destination import BATCH_DURABLE
from .errors import CatalogError, CatalogLocked, UsageError, describe

log = logging.getLogger(__name__)

WAIT = 2.0                      # seconds to wait for a lock held by a process that is exiting
DST_LOCK = b".fastsync.lock"    # reserved at the root of DST (and so of SRC)
# flock errors that mean "no locks on this filesystem", not "held by another run"
UNLOCKABLE = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def _holder() -> bytes:
    return f"{os.getpid()}@{socket.gethostname()}\n".encode()


def _take(fd: int) -> bool:
    """flock fd exclusively, waiting up to WAIT for a holder that is just exiting.
    A held lock reads EAGAIN, or EACCES from an SMB server; ENOLCK (NFSv3 without a
    lock daemon) and the like are raised: the caller decides."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def _who(fd: int) -> str:
    """' (pid N@host)' as the holder wrote it; '' where it cannot be read yet (a share
    that uploads the file only when the holder closes it)."""
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return f" (pid {text})" if text else ""


def catalog_in_use(path: str) -> bool:
    """Does a live fastsync hold the catalog at `path`? Asked without writing anything
    (fastsync -n): its `.lock` is opened read-only and flock'ed shared for a moment."""
    try:
        fd = os.open(os.path.realpath(path) + ".lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError as e:
        return e.errno in (errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)


class CatalogLock:
    """Held for the life of the run; close() releases it (the files stay)."""

    def __init__(self, path: str):
        self.path = path
        self.fds: list[int] = []
        try:
            self._lock_file(path, os.path.realpath(path) + ".lock")
        except BaseException:
            self.close()
            raise

    def _lock_file(self, path: str, lock_path: str) -> None:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise CatalogError(f"cannot create the catalog lock {lock_path!r}: "
                               f"{e.strerror}") from None
        self.fds.append(fd)
        try:
            taken = _take(fd)
        except OSError as e:
            raise CatalogError(f"cannot lock the catalog {path!r}: {describe(e)}; keep "
                               f"--db on a local disk") from None
        if not taken:
            raise CatalogLocked(f"catalog {path!r} is in use by another fastsync"
                                f"{_who(fd)}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder(), 0)

    def hold_catalog(self) -> None:
        """Lock the catalog file itself, once SQLite has opened (or created) it: a second
        name for the same file (a hard link) meets this lock. SQLite's own locks are
        fcntl locks, which do not interact with flock on a local filesystem; over NFS
        flock is an fcntl lock and would lock SQLite out, so there only the `.lock`
        (by real path) applies."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise CatalogError(f"cannot open catalog {self.path!r}: {e.strerror}") from None
        if _core.filesystem_type(fd) not in BATCH_DURABLE:
            os.close(fd)
            return
        self.fds.append(fd)
        if not _take(fd):
            raise CatalogLocked(f"catalog {self.path!r} is in use by another fastsync "
                                f"(under another name)")

    def close(self) -> None:
        fds, self.fds = self.fds, []
        for fd in fds:
            os.close(fd)


class DestinationLock:
    """`DST/.fastsync.lock`, held from before the scan until release()."""

    def __init__(self, dst: bytes):
        self.path = os.path.join(dst, DST_LOCK)
        self.fd = -1
        self.holder = _holder()
        for _ in range(10):     # the holder removed the file between our open and flock
            fd = self._open()
            try:
                taken = _take(fd)
            except OSError as e:
                if e.errno not in UNLOCKABLE:
                    os.close(fd)
                    raise
                log.warning("DST %s cannot be locked (%s): nothing keeps a second run "
                            "off it; start one at a time", os.fsdecode(dst), describe(e))
                taken = True
            if not taken:
                who = _who(fd)
                os.close(fd)
                raise CatalogLocked(f"DST {os.fsdecode(dst)!r} is in use by another "
                                    f"fastsync run{who}")
            if _same_file(fd, self.path):
                self.fd = fd
                break
            os.close(fd)
        else:
            raise CatalogLocked(f"cannot lock DST: {os.fsdecode(self.path)!r} keeps "
                                f"being replaced")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, self.holder, 0)

    def _open(self) -> int:
        """The lock file, never through a symlink (one planted there would have the lock
        written into whatever it points at), and only a regular file."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                         | os.O_NONBLOCK, 0o644)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            fd = -1
        if fd < 0 or not stat.S_ISREG(os.fstat(fd).st_mode):
            if fd >= 0:
                os.close(fd)
            raise UsageError(f"{os.fsdecode(self.path)!r} is not a regular file: fastsync "
                             f"keeps its lock there; remove it")
        return fd

    def release(self) -> None:
        """Remove the lock file while still holding it, then let go: a run that opened
        the old file finds it gone (_same_file) and takes a new one. DST's own times,
        which the removal moves, are put back as the run left them. Safe to call twice;
        a failure here only leaves an unlocked file for the next run to take."""
        if self.fd < 0:
            return
        root = os.path.dirname(self.path)
        try:
            st = os.stat(root)
            os.unlink(self.path)
        except OSError:
            st = None
        try:
            os.close(self.fd)
        except OSError:
            pass        # opened on a mount that died since (DST was mounted again)
        self.fd = -1
        try:
            # A mount that uploads a file when it is closed (rclone without a cache)
            # brings it back: removed again if it is still ours.
            if _read(self.path) == self.holder:
                os.unlink(self.path)
            if st is not None:
                os.utime(root, ns=(st.st_atime_ns, st.st_mtime_ns))
        except OSError:
            pass


def _read(path: bytes) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(200)
    except OSError:
        return None


def _same_file(fd: int, path: bytes) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)
