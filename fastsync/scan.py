"""Scan SRC and DST in two independent threads and stream what they find into the catalog.

Each walker lists its tree with os.scandir and one statx per entry (never following a
symlink), and hands batches of rows to the calling thread, which alone writes SQLite.
Memory holds a few batches and the walkers' directory stacks, never the whole tree.

What a walker does with each kind of entry:
  regular file   a row (copied when the destination lacks it or it differs)
  directory      a row (created at the destination; its times applied after its content)
  symlink        a row with its target (recreated as a link, never followed)
  fifo, socket, device
                 not copied as data: reported (audit line, counted in the summary)
  excluded       by --exclude/--include (filters.py): no row, and a directory is not
                 walked, on either side (so an excluded DST entry is never an extra)
  fastsync temp  names of the form `.fastsync-<16 hex>.tmp` are reserved for fastsync's
                 temporaries (a source entry so named would collide with the temporary
                 of a sibling): in SRC, reported and not copied; in DST, a leftover of a
                 killed run with no source entry of that name: removed
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import _core, faults
from .catalog import Backlog, Catalog, to_db
from .errors import Interrupted
from .locks import DST_LOCK
from .names import Names
from .probe import Traits, is_probe_name, remove_probe
from .retry import Retrier
from .selection import LAST, Node, Selection
from .times import DST_TIME_UNKNOWN, TIME_MAX_NS, TIME_MIN_NS, recorded_btime, time_problem
from .transfer import is_temp_name

log = logging.getLogger(__name__)

BATCH = 2000

SPECIAL = {stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "character device",
           stat.S_IFBLK: "block device"}


@dataclass
class ScanStats:
    """Counters the console shows while scanning (written by the consuming thread)."""
    src_entries: int = 0
    src_files: int = 0          # files and symlinks
    src_bytes: int = 0
    dst_entries: int = 0
    dst_bytes: int = 0
    matched_files: int = 0      # source files the destination already holds
    matched_bytes: int = 0
    errors: int = 0
    specials: int = 0
    stale_removed: int = 0
    src_done: bool = False
    dst_done: bool = False
    problems: list = field(default_factory=list)   # (path, message), first few only
    mounts: list = field(default_factory=list)     # SRC directories where a mount starts

    @property
    def pending_files(self) -> int:
        return self.src_files - self.matched_files

    @property
    def pending_bytes(self) -> int:
        return self.src_bytes - self.matched_bytes


@dataclass
class ScanResult:
    complete: bool
    stats: ScanStats
    backlog: Backlog | None


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return None


class Walker(threading.Thread):
    """Walks one tree depth-first and puts (side, event, payload) tuples on `out`.

    With a --files-from scope, a directory on the way to listed entries is not listed:
    only the names leading on are looked up; below a listed directory, all of it is
    walked. A `dry` walker (fastsync -n) removes nothing it finds at DST."""

    def __init__(self, side: str, root: bytes, other_root: bytes, out: queue.Queue,
                 stop: threading.Event, retrier: Retrier, traits: Traits = Traits(),
                 selection: Selection = Selection(), dry: bool = False):
        super().__init__(name=f"scan-{side}", daemon=True)
        self.side, self.root, self.other_root = side, root, other_root
        self.out, self.stop, self.retrier = out, stop, retrier
        self.failure: BaseException | None = None
        self.traits, self.selection, self.dry = traits, selection, dry
        self.rules = selection.rules if selection.rules else None
        self.priorities = bool(selection.priorities) and side == "src"
        # Names are checked against what DST can hold on the SRC side only.
        self.names = Names(traits, out) if side == "src" and traits.limits_names else None

    def run(self) -> None:
        try:
            self._walk()
        except Interrupted:
            pass                      # stopping: the scan is incomplete and discarded
        except BaseException as e:    # handed to the main thread, which re-raises it
            self.failure = e
        finally:
            self.out.put((self.side, "done", None))

    def _counterpart(self, path: bytes) -> bytes:
        return self.other_root + path[len(self.root):]

    def _row(self, path: bytes, st: tuple, kind: str, klass: int = 0) -> tuple | None:
        """The entry's row; None for a source entry with a time the catalog cannot
        hold, which is reported as a scan error instead (and a directory still walked)."""
        mode, size, atime, mtime, ctime, btime, uid, gid = st[:8]
        if self.side == "src":
            problem = time_problem(st, self.traits.times)
            if problem is not None:
                # Recording it would need a wrong time, which the copy would then apply
                # and the next scan see as a change: it is told about on every run.
                self.out.put((self.side, "error", (path, problem + (
                    "; its own times are not copied (what it holds is)" if kind == "dir"
                    else "; not copied"))))
                return None
        target = None
        if kind == "symlink":
            target = os.readlink(path)
            size = len(target)
        elif kind == "dir":
            size = 0   # directory sizes are filesystem-specific; never compared
        if self.side == "src":
            return (to_db(path), to_db(self._counterpart(path)), kind, size,
                    recorded_btime(btime), ctime, mtime, atime, mode & 0o7777, uid, gid,
                    None if target is None else to_db(target), klass)
        # A DST time the catalog cannot hold matches no source time: copied over.
        if not TIME_MIN_NS <= mtime <= TIME_MAX_NS:
            mtime = DST_TIME_UNKNOWN
        return (to_db(path), kind, size, mtime, None if target is None else to_db(target))

    def _walk(self) -> None:
        rows: list[tuple] = []
        st = _core.lstat(self.root)
        klass = LAST
        row = self._row(self.root, st, "dir", klass)
        if row is not None:          # None: reported (a time beyond the catalog)
            rows.append(row)
        scope = self.selection.scope
        # (directory, its device, its --files-from node or None: all of it, its class)
        stack = [(self.root, st[8], None if scope is None else scope.root, klass)]
        while stack and not self.stop.is_set():
            directory, device, node, klass = stack.pop()
            try:
                with self._children(directory, node) as entries:
                    if self.names is not None:
                        self.names.new_directory()
                    for path, child in entries:
                        if self.stop.is_set():
                            break
                        rows = self._entry(path, device, rows, stack, child, klass)
            except OSError as e:
                self.out.put((self.side, "error", (directory, f"cannot list: {e.strerror}")))
        if rows:
            self.out.put((self.side, "rows", rows))
        if scope is not None and self.side == "src" and not self.stop.is_set():
            for rel in scope.missing():
                self.out.put((self.side, "error", (
                    self.root + b"/" + rel, "listed in --files-from, not found in SRC "
                    "(missing, or below a symlink or an excluded directory)")))

    def _reserved(self, path: bytes) -> bool:
        """A name fastsync keeps for itself: a temporary's (reported in SRC), or DST's
        lock at the root (reported in SRC; at DST ours or another run's, never extra)."""
        name = os.path.basename(path)
        if self.side == "src" and is_temp_name(name):
            self.out.put((self.side, "special",
                          (path, "name reserved for fastsync's temporary files")))
            return True
        if os.path.dirname(path) == self.root and \
                self.traits.fold(name) == self.traits.fold(DST_LOCK):
            if self.side == "src":
                self.out.put((self.side, "special",
                              (path, "name reserved for fastsync's DST lock")))
            return True
        return False

    def _leftover(self, path: bytes, kind: str) -> bool:
        """Is this DST entry a killed run's temporary or probe directory? It is then
        removed (kept by a dry run) and not recorded."""
        name = os.path.basename(path)
        if kind == "file" and is_temp_name(name):
            if _exists(self._counterpart(path)):
                return False        # SRC has this name: an entry like any other
            remove = os.unlink
        elif kind == "dir" and is_probe_name(name):
            remove = remove_probe   # probe.py: never through a symlink
        else:
            return False
        if not self.dry:
            remove(path)
            self.out.put((self.side, "stale", path))
        return True

    @contextmanager
    def _children(self, directory: bytes, node: Node | None):
        """(path, its --files-from node or None) of the entries to look at in
        `directory` (`node`: its own node; None below a listed directory).
        Entries are taken one at a time: a directory of millions of files costs no
        more memory than a small one."""
        if node is not None:            # on the way to listed entries: those names only
            yield ((directory + b"/" + name, child) for name, child in sorted(node.items()))
            return
        with self.retrier.call(self.side, "list", lambda: _list(directory)) as entries:
            yield ((entry.path, None) for entry in entries)

    def _entry(self, path: bytes, device: int, rows: list, stack: list,
               node: Node | None = None, klass: int = 0) -> list:
        """Record one entry of a directory on `device` (`node`: its --files-from node,
        None below a listed directory; `klass`: its directory's priority class);
        returns the batch (a fresh list once a full one was sent)."""
        try:
            if self._reserved(path):
                return rows
            st = self.retrier.call(self.side, "stat", lambda: _core.lstat(path))
            if node is not None and self.side == "src":
                node.seen = True
            rel = path[len(self.root) + 1:]
            if self.rules is not None and self.rules.excluded(rel, stat.S_ISDIR(st[0])):
                return rows
            if self.names is not None and not self.names.fits(path, rows, stack):
                return rows
            kind = _kind(st[0])
            if kind is None:
                if self.side == "src":
                    self.out.put((self.side, "special",
                                  (path, SPECIAL.get(stat.S_IFMT(st[0]), "special file"))))
                    return rows
                kind = "special"
            elif self.side == "dst" and self._leftover(path, kind):
                return rows
            if self.priorities:
                klass = min(klass, self.selection.klass(rel, kind == "dir"))
            row = self._row(path, st, kind, klass)
            if row is not None:      # None: reported; a directory is walked all the same
                rows.append(row)
        except FileNotFoundError:
            return rows     # vanished while we looked: it is simply not there
        except OSError as e:
            self.out.put((self.side, "error", (path, e.strerror)))
            return rows
        if kind == "dir":
            stack.append((path, st[8], None if node is None or node.listed else node, klass))
            if st[8] != device and self.side == "src":
                # Another filesystem is mounted here: remembered, so that its DST copy
                # is never deleted once it is unmounted and looks empty (mirror.py).
                self.out.put((self.side, "mount", path))
        if len(rows) >= BATCH:
            self.out.put((self.side, "rows", rows))
            return []
        return rows

def _list(directory: bytes):
    faults.fail("list", directory)
    return os.scandir(directory)


def _exists(path: bytes) -> bool:
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    return True


class Tally:
    """The consuming side of a scan: writes what the walkers find into the catalog
    (this thread alone writes SQLite), counts it, and tells of what is not copied."""

    def __init__(self, catalog: Catalog, window: int, audit):
        self.catalog, self.window, self.audit = catalog, window, audit
        self.stats = ScanStats()
        self.running = 2

    def take(self, side: str, event: str, payload) -> None:
        getattr(self, "_" + event)(side, payload)

    def _rows(self, side: str, rows: list) -> None:
        stats = self.stats
        if side == "src":
            matched = self.catalog.add_source(rows, self.window)
            stats.src_entries += len(rows)
            files = [r for r in rows if r[2] != "dir"]
            stats.src_files += len(files)
            stats.src_bytes += sum(r[3] for r in files)
        else:
            matched = self.catalog.add_dest(rows, self.window)
            stats.dst_entries += len(rows)
            stats.dst_bytes += sum(r[2] for r in rows if r[1] != "dir")
        stats.matched_files += matched[0]
        stats.matched_bytes += matched[1]

    def _error(self, side: str, payload: tuple) -> None:
        path, message = payload
        self.stats.errors += 1
        if len(self.stats.problems) < 20:
            self.stats.problems.append((path, message))
        log.warning("scan %s: %s: %s", side.upper(), os.fsdecode(path), message)
        if side == "src":
            self.audit.event("scan", "failed", src=path, error=message)

    def _special(self, side: str, payload: tuple) -> None:
        path, what = payload
        self.stats.specials += 1
        log.info("not copied: %s is a %s", os.fsdecode(path), what)
        self.audit.event("special", "skipped", src=path, error=f"{what}: not copied")

    def _drop(self, side: str, path: bytes) -> None:
        self.catalog.drop_source(path)      # a name DST cannot hold (names.py)
        self.stats.src_entries -= 1

    def _mount(self, side: str, path: bytes) -> None:
        self.stats.mounts.append(path)

    def _stale(self, side: str, path: bytes) -> None:
        self.stats.stale_removed += 1
        log.info("removed stale temporary %s", os.fsdecode(path))

    def _done(self, side: str, payload) -> None:
        self.running -= 1
        setattr(self.stats, f"{side}_done", True)


def scan(catalog: Catalog, src: bytes, dst: bytes, window: int, stop: threading.Event,
         progress, audit, retrier: Retrier, traits: Traits = Traits(),
         selection: Selection = Selection(), dry: bool = False,
         meta: dict | None = None) -> ScanResult:
    """Scan both trees in parallel and merge the result into the catalog atomically.

    `progress(stats)` is called a few times a second; `audit` receives special files.
    An interrupted scan leaves the catalog as it was before (the staging is discarded).
    `selection`: what to look at (filters, --files-from) and the backlog's order;
    `dry`: nothing found at DST is removed (fastsync -n); `meta`: catalog meta keys
    written with the merge (what the scan looked at).
    """
    tally = Tally(catalog, window, audit)
    catalog.begin_scan()
    events: queue.Queue = queue.Queue(maxsize=8)
    walkers = [Walker("src", src, dst, events, stop, retrier, traits, selection, dry),
               Walker("dst", dst, src, events, stop, retrier, selection=selection, dry=dry)]
    for w in walkers:
        w.start()
    while tally.running:
        try:
            tally.take(*events.get(timeout=0.25))
        except queue.Empty:
            pass
        progress(tally.stats)
    for w in walkers:
        w.join()
        if w.failure is not None:
            raise w.failure
    if stop.is_set():
        return ScanResult(False, tally.stats, None)
    scope = selection.scope
    backlog = catalog.finish_scan(window, selection.order.sql("s"), None if scope is None
                                  else lambda path: scope.covers(path[len(src) + 1:]),
                                  meta)
    return ScanResult(True, tally.stats, backlog)
