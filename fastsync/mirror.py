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

Limits. Deleting is the one thing a sync cannot undo, and the usual way to lose a DST is
not a bad disk but a bad SRC: a share that is not mounted (or another one mounted in its
place), a mistyped SRC path, a filter that leaves most of the tree out. Each makes most
of DST look extra. So:
- The default guard: before deleting anything, the catalog's totals for DST (the last
  scan, DST's root left out) are compared with its extras. If the extras are more than
  half of what DST holds, by entries or by bytes (bytes only when DST holds any), nothing
  is deleted; `refused` says the numbers and how to allow it.
- --max-delete N (rsync's and rclone's option) replaces the guard: at most N deletions
  in the run, a directory counting like a file, 0 deleting nothing. Each further entry
  that would have been deleted (the live check on SRC showed it absent) is kept, listed
  in `skipped` (the first SKIPPED_LISTED; `skipped_count` counts all) and in the audit
  log as a "skipped" delete; one warning at the end tells how many. The caller exits 1.
- The dry mode decides exactly as the real pass (SRC's identity and emptiness, mount
  points, the live check, case folding, the guard, the limit) and touches nothing: no
  deletion, no catalog change, no audit line. Each entry it would delete is passed to
  `would_delete(path, kind)` and counted in `deleted`. A directory cannot be tried
  without deleting it: a dry run counts every directory extra as deleted, where the real
  pass may keep it because it still holds entries that are not extras (excluded ones, or
  ones that appeared since the scan), and then go on to delete one more under a limit.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
from dataclasses import dataclass, field

from .catalog import Catalog
from .config import format_size
from .errors import FatalError, describe, is_fatal
from .probe import Traits

log = logging.getLogger(__name__)

CHECK_EVERY = 100
SKIPPED_LISTED = 1000   # paths kept in MirrorResult.skipped; all are counted


@dataclass
class MirrorResult:
    deleted: int = 0
    failed: int = 0
    kept: int = 0          # reappeared on SRC, changed kind, or a non-empty directory
    refused: str | None = None
    held: list = field(default_factory=list)  # DST dirs below unmounted SRC mount points
    skipped: list = field(default_factory=list)  # over --max-delete: the first DST paths
    skipped_count: int = 0                       # ... and how many in all
    # (extra entries, extra bytes, entries, bytes) at DST, from the last scan
    planned: tuple[int, int, int, int] | None = None


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
           traits: Traits = Traits(), max_delete: int | None = None, dry: bool = False,
           would_delete=None) -> MirrorResult:
    """Delete DST's extras (see the module's doc). max_delete=None: the default guard;
    N: at most N deletions. dry: decide only, calling would_delete(path, kind)."""
    if max_delete is not None and max_delete < 0:
        raise ValueError(f"max_delete must be 0 or more, not {max_delete}")
    return Mirror(catalog, src, dst, audit, run_id, mounts, traits, max_delete=max_delete,
                  dry=dry, would_delete=would_delete).run(identity, stop)


def guard(planned: tuple[int, int, int, int]) -> str | None:
    """The default guard: why nothing may be deleted, or None. Refuses when the extras
    are more than half of what DST holds, by entries or (if DST holds any) by bytes."""
    extra, extra_bytes, total, total_bytes = planned
    if extra * 2 <= total and not (total_bytes > 0 and extra_bytes * 2 > total_bytes):
        return None
    return (f"--delete-extras would delete {extra:,} of {total:,} entries "
            f"({format_size(extra_bytes)} of {format_size(total_bytes)}) at DST, more than "
            f"half; nothing deleted. Give --max-delete N to allow it "
            f"(e.g. --max-delete {extra})")


class Mirror:
    """One pass over the extras: each one checked live, then deleted or kept (or, in a
    dry run, told to would_delete; past max_delete, skipped)."""

    def __init__(self, catalog: Catalog, src: bytes, dst: bytes, audit, run_id: int,
                 mounts, traits: Traits, max_delete: int | None = None, dry: bool = False,
                 would_delete=None):
        self.catalog, self.src, self.dst, self.audit = catalog, src, dst, audit
        self.run_id, self.mounts = run_id, mounts
        self.max_delete, self.dry, self.would_delete = max_delete, dry, would_delete
        self.folded = FoldedSource(traits) if traits.folds_case else None
        self.result = MirrorResult()
        self.held: list[bytes] = []      # DST counterparts of unmounted SRC mount points
        self.gone: list[bytes] = []      # forgotten rows
        self.touched: set[bytes] = set()  # changed directories
        self.unrecorded = 0              # deletions not yet counted in the run's row
        self.checked = 0                 # deleted + skipped when SRC was last checked

    def run(self, identity: tuple[int, int], stop: threading.Event) -> MirrorResult:
        result, dst = self.result, self.dst
        try:
            (total, total_bytes), (extra, extra_bytes) = self.catalog.dest_totals(dst)
            result.planned = (extra, extra_bytes, total, total_bytes)
            self._check(identity)
            if self.max_delete is None:
                result.refused = guard(result.planned)
                if result.refused:
                    log.error("%s", result.refused)
                    return result
            for path, kind in self.catalog.iter_extras():
                if stop.is_set():
                    break
                if not path.startswith(dst + b"/"):
                    continue   # only ever below DST (the root always has a source row)
                if result.deleted + result.skipped_count >= self.checked + CHECK_EVERY:
                    self._check(identity)
                if self._may_delete(path):
                    self._take(path, kind)
                if len(self.gone) >= CHECK_EVERY:
                    self._flush()
        except SourceGone as e:
            result.refused = str(e)
            log.error("mirror stopped, nothing more deleted: %s", e)
        finally:
            self._flush()
        self._tell_skipped()
        return result

    def _check(self, identity: tuple[int, int]) -> None:
        """SRC still the same and not empty (else SourceGone); which mount points hold."""
        self.checked = self.result.deleted + self.result.skipped_count
        _check_source(self.src, identity)
        self.held = _hold(self.result, self.src, self.dst, self.mounts)

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
            if not self.dry:
                self.audit.event("delete", "failed", dst=path, src=counterpart,
                                 error="cannot confirm the source is absent")
            log.warning("kept %s: cannot check %s", os.fsdecode(path),
                        os.fsdecode(counterpart))
        elif absent is False:
            result.kept += 1
        return bool(absent)

    def _take(self, path: bytes, kind: str) -> None:
        """An entry the live check allows to go: delete it, or skip it over the limit."""
        if self.max_delete is not None and self.result.deleted >= self.max_delete:
            self._skip(path, kind)
        elif self._present(path, kind):
            if self.dry:
                self.result.deleted += 1
                if self.would_delete is not None:
                    self.would_delete(path, kind)
            else:
                self._delete(path, kind)

    def _skip(self, path: bytes, kind: str) -> None:
        result = self.result
        result.skipped_count += 1
        if len(result.skipped) < SKIPPED_LISTED:
            result.skipped.append(path)
        if not self.dry:
            self.audit.event("delete", "skipped", dst=path, kind=kind,
                             error=f"over --max-delete {self.max_delete}")

    def _present(self, path: bytes, kind: str) -> bool:
        """Is the entry still at DST, and of the kind the scan found? Else counted."""
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            self.gone.append(path)
            return False
        except OSError as e:
            if self.dry:
                self.result.failed += 1
                log.warning("cannot look at %s: %s", os.fsdecode(path), describe(e))
            else:
                _failed(self.result, self.audit, path, e)
            return False
        if stat.S_ISDIR(st.st_mode) != (kind == "dir"):
            self.result.kept += 1   # changed kind since the scan: leave it to the next one
            return False
        return True

    def _delete(self, path: bytes, kind: str) -> None:
        result = self.result
        try:
            if kind == "dir":
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
        if not self.dry:
            self.catalog.forget_dest(self.gone, sorted(self.touched), self.run_id,
                                     self.unrecorded)
            self.audit.flush()
        self.gone.clear()
        self.touched.clear()
        self.unrecorded = 0

    def _tell_skipped(self) -> None:
        result = self.result
        if not result.skipped_count:
            return
        done, more = f"{result.deleted:,}", f"{result.skipped_count:,}"
        if self.dry:
            log.warning("--max-delete %d: %s would be deleted, %s more would not (dry run)",
                        self.max_delete, done, more)
        else:
            log.warning("--max-delete %d: %s deleted, %s more not deleted (listed in the "
                        "audit log)", self.max_delete, done, more)


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
