"""The destination seam: everything the pipeline does at DST goes through one object.

A LocalDestination is DST as a path on this machine (a local disk or a mounted share).
It owns DST's identity and every check of it, the flush policy (one syncfs per batch
where that is a real flush, an fsync per file elsewhere), creating directories and
temporaries, setting times, renaming into place and removing what was abandoned.
Another destination (a `fastsync serve` receiver over HTTP) implements the same
methods. Decisions (what to copy, retry, record) stay out of it: every method raises
OSError and catches nothing it cannot fully handle.

Identity: an unmounted share leaves its mount point, an empty directory on the local
disk below, where files would only look copied. So DST's directory is held open from
the start, and before anything is created (a temporary, a directory) or removed, and
before a batch is recorded, DST's path must still lead to it. A share mounted again (a
new device, the same kind of filesystem) is taken up: what was in flight is copied
again (Restart).

Kind changes: where DST has a directory and SRC a file or a link (rename cannot replace
a directory), or DST a non-directory and SRC a directory, the entry fails with a
KindClash that says so. With --delete-extras (`replace`), what DST has in the way is
extra, as `rsync --delete` treats it: make_room() removes it, a whole tree if need be,
by descriptors opened with O_NOFOLLOW, so that nothing is followed out of DST. What it
removed is told by take_removed(), for the caller to audit and record.
"""

from __future__ import annotations

import errno
import itertools
import os
import threading

from . import _core, faults
from .errors import Restart, is_fatal
from .kinds import KIND_NAMES, KindClash, clash_at, link_or_file, remove_tree, tree_entries
from .transfer import DirMaker, make_symlink, open_temp, sync_directory

# Local filesystems on which one syncfs(2) makes everything written through this
# machine durable: data, inodes and directory entries, so one call per batch can stand
# in for an fsync per file. On network and FUSE filesystems that is not a promise the
# server keeps (the SMB client sends no FLUSH for it), so there each file is fsynced
# before its rename.
BATCH_DURABLE = {0xEF53: "ext2/3/4", 0x58465342: "xfs", 0x9123683E: "btrfs",
                 0xF2F52010: "f2fs", 0x2FC12FC1: "zfs", 0x01021994: "tmpfs"}

# Streams when --streams is not given: few on a local disk (each costs CPU, which is
# what a local copy of small files runs out of), many on a share, where every file
# waits for round trips (create, close, rename: ~20 ms each on an SMB/FUSE client)
# and only files in flight side by side hide them.
STREAMS_LOCAL = 2
STREAMS_NETWORK = 8


def fs_type(path: bytes) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _core.filesystem_type(fd)
    finally:
        os.close(fd)


class Identity:
    """A root directory as it was at the start of the run."""

    def __init__(self, path: bytes):
        self.path = path
        st = os.stat(path)
        self.dev_ino = (st.st_dev, st.st_ino)
        self.fs_type = fs_type(path)

    def same(self, st: os.stat_result, remount: bool = True) -> bool:
        """Is `st` (of the root's path now) still the directory of the start? A share
        mounted again comes back with a new device number but the same kind of
        filesystem (accepted when `remount`); an unmounted one leaves the mount point
        on the local filesystem below, of another kind. A local root must be the very
        same directory."""
        if (st.st_dev, st.st_ino) == self.dev_ino:
            return True
        return (remount and self.fs_type not in BATCH_DURABLE
                and fs_type(self.path) == self.fs_type)


_probes = itertools.count()


def write_probe(directory: bytes) -> None:
    """A real round trip to the server behind `directory`: a one-byte file created,
    closed and removed. One byte, because an rclone mount uploads an empty file after
    close and so resurrects it after the unlink; a name of its own per call, because
    several threads may probe at once."""
    probe = os.path.join(directory, b".fastsync-probe-%d-%d.tmp"
                         % (os.getpid(), next(_probes)))
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, b"\n")
    finally:
        os.close(fd)
    os.unlink(probe)


class LocalDestination:
    """DST as a path on this machine. `reachable()` answers whether DST's server
    answers now (retry.Root.problem), used to tell a remount from an unmount.
    `replace` (--delete-extras): an entry of another kind in the way of SRC's is
    removed by make_room() instead of failing the entry."""

    def __init__(self, path: bytes, reachable=lambda: True, replace: bool = False,
                 rules=None, max_remove: int | None = None):
        self.path = path
        self.replace = replace
        # What make_room() must not remove: entries the filters (filters.Rules) keep out
        # of the run, and more entries than --max-delete allows in all.
        self.rules, self.max_remove, self.removals = rules, max_remove, 0
        self._reachable = reachable
        self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        st = os.fstat(self._fd)
        self._held = (st.st_dev, st.st_ino)
        self.fs_type = _core.filesystem_type(self._fd)
        self.batch_durable = self.fs_type in BATCH_DURABLE
        self.dirs = DirMaker(path)
        self._root_dev = self.dirs.device(path)
        self._lock = threading.Lock()
        # Without `replace`: non-directories found where SRC has a directory (path ->
        # kind), so the entries below fail at once, without a round trip each.
        self._blocked: dict[bytes, str] = {}
        self._removing = threading.Lock()      # one make_room at a time
        self._removed: list[tuple[bytes, str]] = []     # (path, kind) not yet taken
        self._ledger = threading.Lock()

    def close(self) -> None:
        os.close(self._fd)

    @property
    def default_streams(self) -> int:
        return STREAMS_LOCAL if self.batch_durable else STREAMS_NETWORK

    @property
    def direct_ok(self) -> bool:
        """May large files be written around the page cache (O_DIRECT)? On a local disk
        only: network filesystems turn it into one round trip per write."""
        return self.batch_durable

    # -------------------------------------------------------------- identity --

    def check(self) -> None:
        """Does DST's path still lead to the directory held open since the start?
        Raises Restart if the share was mounted again (its directory is held from now
        on), OSError(ENOTCONN) if DST is gone or is another directory."""
        try:
            now = os.stat(self.path)
        except OSError as e:
            raise OSError(errno.ENOTCONN, f"DST cannot be reached ({e.strerror})",
                          self.path) from None
        if (now.st_dev, now.st_ino) == self._held:
            return
        with self._lock:
            try:
                held = os.fstat(self._fd)
                if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
                    self._held = (now.st_dev, now.st_ino)
                    return
            except OSError:
                pass            # the directory held open is on a mount that died
            if self._reachable():
                fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                os.close(self._fd)
                self._fd = fd
                self._held = (now.st_dev, now.st_ino)
                raise Restart(errno.ENOTCONN, "DST was mounted again while the file was "
                                              "being copied")
        raise OSError(errno.ENOTCONN, "DST is no longer the directory the run started "
                                      "with (unmounted?)", self.path)

    # ----------------------------------------------------------- directories --

    def ensure_dir(self, directory: bytes) -> list[bytes]:
        """Make `directory` exist; return the directories whose content this changed.
        DST's identity is checked before anything is created: on an unmounted share's
        mount point, directories would land on the local disk and be recorded.
        KindClash if DST has a non-directory there or above (a symlink to a directory
        too: never created through); make_room() may remove it."""
        if self.dirs.known(directory):
            return []
        self.refuse_blocked(directory)
        self.check()
        try:
            return self.dirs.ensure(directory)
        except NotADirectoryError as e:
            clash = e.filename and clash_at(os.fsencode(e.filename), "dir", below=True)
            if not clash:
                raise
            if not self.replace:
                self._blocked[clash.path] = clash.found
            raise clash from None

    def refuse_blocked(self, directory: bytes) -> None:
        """KindClash at once, without touching DST, if `directory` or a directory above
        it was found to be a non-directory earlier in this run (callers use it before
        the retrier, whose error handling probes DST: a round trip per entry below)."""
        if not self._blocked or self.dirs.known(directory):
            return
        path = directory
        while len(path) > len(self.path):
            found = self._blocked.get(path)
            if found is not None:
                raise KindClash(path, found, "dir", below=True)
            path = os.path.dirname(path)

    def make_room(self, clash: KindClash) -> list[bytes]:
        """With `replace`, remove what DST has at clash.path (a whole tree if it is a
        directory) so that SRC's entry can take its place, and return the directories
        whose content this changed. Without it, raise `clash`: nothing is removed.
        The caller has seen SRC's entry (read the file, or one below the directory),
        so what DST has there is extra. Only ever below DST, never DST itself."""
        if not self.replace:
            raise clash
        path = clash.path
        if not path.startswith(self.path.rstrip(b"/") + b"/") or \
                os.path.normpath(path) != path:
            raise OSError(errno.EPERM, "refusing to remove a path outside DST", path)
        self.check()          # never remove in an unmounted share's mount point
        with self._removing:
            now = clash_at(path, clash.wanted)
            if now is None:
                return []     # gone, or another thread made the room meanwhile
            problem, count = self.removal_problem(path, now.found)
            if problem is not None:
                raise KindClash(path, now.found, clash.wanted, clash.below, outcome=problem)
            self.removals += count
            try:
                if now.found == "dir":
                    remove_tree(path, self._note_removed)
                else:
                    os.unlink(path)         # a symlink itself, never its target
                    self._note_removed(path, now.found)
            except OSError as e:
                where = f" at {os.fsdecode(path)!r}" if clash.below else ""
                raise OSError(e.errno, f"cannot remove the {KIND_NAMES[now.found]} DST "
                              f"has{where} to make room for SRC's "
                              f"{KIND_NAMES[clash.wanted]}: {e.strerror}", path) from None
        return [os.path.dirname(path)]

    def removal_problem(self, path: bytes, found: str) -> tuple[str | None, int]:
        """Why what DST has at `path` (of kind `found`) may not be removed to make room,
        or None; and how many entries removing it deletes. Read-only (fastsync -n asks
        too). An entry the filters exclude is never deleted, so neither is a tree that
        holds one; and the removals of a run count against --max-delete."""
        entries = [(path, found == "dir")]
        if found == "dir":
            entries += list(tree_entries(path))
        root = len(self.path.rstrip(b"/")) + 1
        if self.rules is not None:
            for entry, is_dir in entries:
                if self.rules.excluded(entry[root:], is_dir):
                    return (f"not replaced: it holds {os.fsdecode(entry[root:])!r}, which "
                            f"the filters exclude (move it away by hand)"), len(entries)
        if self.max_remove is not None and self.removals + len(entries) > self.max_remove:
            return (f"not replaced: that would delete {len(entries):,} entries, over "
                    f"--max-delete {self.max_remove}"), len(entries)
        return None, len(entries)

    def _note_removed(self, path: bytes, kind: str) -> None:
        with self._ledger:
            self._removed.append((path, kind))

    def take_removed(self) -> list[tuple[bytes, str]]:
        """What make_room() removed since the last call: (path, kind), deepest first."""
        with self._ledger:
            removed, self._removed = self._removed, []
        return removed

    def own_fsync(self, directory: bytes) -> bool:
        """Must a file in `directory` be fsynced itself? Yes where one syncfs per batch
        is no real flush: a network or FUSE DST, or another filesystem mounted inside
        DST (syncfs reaches only DST's own)."""
        return not (self.batch_durable and self.dirs.device(directory) == self._root_dev)

    def set_dir_times(self, path: bytes, times: tuple[int, int]) -> None:
        faults.fail("utime", path)
        os.utime(path, ns=times, follow_symlinks=False)

    # ------------------------------------------------------------------ files --

    def create_temp(self, tmp: bytes, final: bytes) -> int:
        self.check()      # never create into an unmounted share's mount point
        return open_temp(tmp, final)

    def make_symlink(self, target: bytes, tmp: bytes, final: bytes,
                     times: tuple[int, int]) -> None:
        make_symlink(target, tmp, final, times)

    def rename(self, tmp: bytes, final: bytes, retrying: bool) -> None:
        """rename(tmp, final). On a retry after a lost reply (the rename went through,
        the answer did not come back), a missing tmp with final present counts as done.
        A directory at `final` cannot be replaced by a rename: KindClash, or with
        `replace` it is removed first (the caller has just read SRC's file or link)."""
        faults.fail("rename", final)
        try:
            os.rename(tmp, final)
        except FileNotFoundError:
            if not (retrying and os.path.lexists(final) and not os.path.lexists(tmp)):
                raise
        except OSError as e:
            # Linux says EISDIR; a share's server may say EEXIST or EACCES. Looked at
            # only after a failure: no round trip on the way of every file.
            wanted = None if is_fatal(e) else link_or_file(tmp)
            clash = wanted and clash_at(final, wanted)
            if not clash:
                raise
            self.make_room(clash)
            os.rename(tmp, final)

    def sync_dir(self, directory: bytes) -> None:
        sync_directory(directory)

    def syncfs(self) -> None:
        faults.fail("syncfs", self.path)
        with self._lock:
            _core.syncfs_fd(self._fd)

    @staticmethod
    def discard(fd: int, tmp: bytes) -> None:
        """Best-effort cleanup of an abandoned copy (the error that caused it is
        reported)."""
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.unlink(tmp)
        except OSError:
            pass
