"""Mirror mode (--delete-extras): remove what DST has and SRC does not.

Runs only after the copy phase finished uninterrupted. Candidates are destination
entries from the last complete scan with no source row; each one is deleted only after
a live check on SRC shows its counterpart absent (ENOENT/ENOTDIR). Any other answer
(permission denied, I/O error, a share that hangs up) keeps the file. Before deleting
anything, and again every 100 deletions, SRC must still be the same directory it was
when the run started and must not be empty: an unmounted share looks like an empty
directory, and without this check it would look like "everything was deleted". The
same holds below the root: a directory where a scan found another filesystem mounted
(scan.py remembers them in the catalog) protects its DST copy while it is unmounted or
empty; the run then ends with status 1 and says so.
Directories are removed only when empty, deepest first, after their content.

An entry that cannot be deleted (or looked at) is kept and counted as failed; the others
go on. An error that no further deletion can get past (EROFS, ENOSPC, EDQUOT: see
errors.py) stops mirroring at once with a FatalError (exit status 3); what was deleted
before it is recorded first.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
from dataclasses import dataclass, field

from .catalog import Catalog
from .errors import FatalError, describe, is_fatal
from .probe import Traits

log = logging.getLogger(__name__)

CHECK_EVERY = 100


@dataclass
class MirrorResult:
    deleted: int = 0
    failed: int = 0
    kept: int = 0          # reappeared on SRC, changed kind, or a non-empty directory
    refused: str | None = None
    held: list = field(default_factory=list)  # DST dirs below unmounted SRC mount points


class SourceGone(Exception):
    pass


def _check_source(src: bytes, identity: tuple[int, int]) -> None:
    try:
        st = os.stat(src)
        empty = not os.listdir(src)
    except OSError as e:
        raise SourceGone(f"SRC cannot be read ({e.strerror})") from None
    if (st.st_dev, st.st_ino) != identity:
        raise SourceGone("SRC is no longer the directory it was when the run started "
                         "(unmounted or remounted?)")
    if empty:
        raise SourceGone("SRC is empty (is the share mounted?)")


def unmounted(mounts: list[bytes]) -> list[bytes]:
    """The SRC directories where a scan found another filesystem mounted and that now
    hold no filesystem of their own, or nothing at all: an unmounted share looks like
    an empty directory, and what the DST copy has below it is not extra. A mount point
    that SRC no longer has at all was removed on purpose, and protects nothing."""
    gone = []
    for path in mounts:
        try:
            st = os.lstat(path)
            parent = os.stat(os.path.dirname(path))
            empty = stat.S_ISDIR(st.st_mode) and not os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:
            gone.append(path)       # cannot tell: keep what is below it
            continue
        if st.st_dev == parent.st_dev or empty:
            gone.append(path)
    return gone


class FoldedSource:
    """On a DST that folds case, `notes` at DST is the same entry as SRC's `NOTES`:
    deleting it as an extra would delete the copy just made. Looks at SRC's directory
    (one listing per directory, extras come sorted) for a name that folds alike."""

    def __init__(self, traits: Traits):
        self.traits = traits
        self.directory: bytes | None = None
        self.keys: set[bytes] = set()

    def has(self, path: bytes) -> bool:
        directory = os.path.dirname(path)
        if directory != self.directory:
            try:
                names = os.listdir(directory)
            except OSError:
                names = []
            self.directory = directory
            self.keys = {self.traits.fold(n) for n in names}
        return self.traits.fold(os.path.basename(path)) in self.keys


def _absent(path: bytes) -> bool | None:
    """True if the live check shows `path` absent, False if present, None if unknown."""
    try:
        os.lstat(path)
        return False
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return None


def mirror(catalog: Catalog, src: bytes, dst: bytes, identity: tuple[int, int],
           stop: threading.Event, audit, run_id: int, mounts: list[bytes] = (),
           traits: Traits = Traits()) -> MirrorResult:
    return Mirror(catalog, src, dst, audit, run_id, mounts, traits).run(identity, stop)


class Mirror:
    """One pass over the extras: each one checked live, then deleted or kept."""

    def __init__(self, catalog: Catalog, src: bytes, dst: bytes, audit, run_id: int,
                 mounts, traits: Traits):
        self.catalog, self.src, self.dst, self.audit = catalog, src, dst, audit
        self.run_id, self.mounts = run_id, mounts
        self.folded = FoldedSource(traits) if traits.folds_case else None
        self.result = MirrorResult()
        self.held: list[bytes] = []      # DST counterparts of unmounted SRC mount points
        self.gone: list[bytes] = []      # forgotten rows
        self.touched: set[bytes] = set()  # changed directories
        self.unrecorded = 0              # deletions not yet counted in the run's row

    def run(self, identity: tuple[int, int], stop: threading.Event) -> MirrorResult:
        result, dst = self.result, self.dst
        try:
            _check_source(self.src, identity)
            self.held = _hold(result, self.src, dst, self.mounts)
            for path, kind in self.catalog.iter_extras():
                if stop.is_set():
                    break
                if not path.startswith(dst + b"/"):
                    continue   # only ever below DST (the root always has a source row)
                if result.deleted and result.deleted % CHECK_EVERY == 0:
                    _check_source(self.src, identity)
                    self.held = _hold(result, self.src, dst, self.mounts)
                if self._may_delete(path):
                    self._delete(path, kind)
                if len(self.gone) >= CHECK_EVERY:
                    self._flush()
        except SourceGone as e:
            result.refused = str(e)
            log.error("mirror stopped, nothing more deleted: %s", e)
        finally:
            self._flush()
        return result

    def _may_delete(self, path: bytes) -> bool:
        """Is SRC's counterpart really absent, live, and nothing else protects it?"""
        result = self.result
        if any(path == h or path.startswith(h + b"/") for h in self.held):
            result.kept += 1
            return False
        counterpart = self.src + path[len(self.dst):]
        absent = _absent(counterpart)
        if absent and self.folded is not None and self.folded.has(counterpart):
            absent = False      # DST's name for a source entry spelled otherwise
        if absent is None:
            result.failed += 1
            self.audit.event("delete", "failed", dst=path, src=counterpart,
                             error="cannot confirm the source is absent")
            log.warning("kept %s: cannot check %s", os.fsdecode(path),
                        os.fsdecode(counterpart))
        elif absent is False:
            result.kept += 1
        return bool(absent)

    def _delete(self, path: bytes, kind: str) -> None:
        result = self.result
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            self.gone.append(path)
            return
        except OSError as e:
            _failed(result, self.audit, path, e)
            return
        is_dir = stat.S_ISDIR(st.st_mode)
        if is_dir != (kind == "dir"):
            result.kept += 1   # changed kind since the scan: leave it to the next one
            return
        try:
            if is_dir:
                os.rmdir(path)
            else:
                os.unlink(path)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                result.kept += 1
                log.info("kept %s: directory not empty", os.fsdecode(path))
                return
            _failed(result, self.audit, path, e)
            return
        result.deleted += 1
        self.unrecorded += 1
        self.gone.append(path)
        self.touched.add(os.path.dirname(path))
        self.audit.event("delete", "ok", dst=path, kind=kind)

    def _flush(self) -> None:
        self.catalog.forget_dest(self.gone, sorted(self.touched), self.run_id,
                                 self.unrecorded)
        self.audit.flush()
        self.gone.clear()
        self.touched.clear()
        self.unrecorded = 0


def _hold(result: MirrorResult, src: bytes, dst: bytes, mounts) -> list[bytes]:
    """DST directories to delete nothing below, with the reason told once each."""
    held = []
    for path in unmounted(mounts):
        mine = dst + path[len(src):]
        held.append(mine)
        if mine not in result.held:
            result.held.append(mine)
            log.error("nothing deleted below %s: SRC %s held a mounted filesystem when "
                      "scanned and is now unmounted or empty", os.fsdecode(mine),
                      os.fsdecode(path))
    return held


def _failed(result: MirrorResult, audit, path: bytes, error: OSError) -> None:
    """Count and tell a failed entry; stop the run if no other can succeed."""
    result.failed += 1
    audit.event("delete", "failed", dst=path, error=describe(error))
    if is_fatal(error):
        raise FatalError(f"stopped deleting extras: {describe(error)} on the destination "
                         f"({os.fsdecode(path)!r}); {result.deleted:,} deleted before it "
                         f"are recorded") from None
    log.warning("cannot delete %s: %s", os.fsdecode(path), describe(error))
