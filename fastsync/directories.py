"""Directories at DST after the copy: create the missing ones, then give every directory
whose content changed its source times back, deepest first.

Where DST has a non-directory in the way of a directory (a file, or a symlink, which is
never created through), the directory fails, saying so and that --delete-extras would
replace it. With --delete-extras, once a live lstat shows SRC still has a directory
there, what DST has is removed (destination.make_room) and recorded as a deletion."""

from __future__ import annotations

import logging
import os
import stat
import threading

from .catalog import Catalog, from_db
from .kinds import KindClash
from .errors import FatalError, Interrupted, describe, is_fatal
from .finisher import record_removals
from .retry import Retrier

log = logging.getLogger(__name__)


def apply_directories(catalog: Catalog, dest, retrier: Retrier, stop: threading.Event,
                      audit, selected=None) -> int:
    """Create pending directories and give them their source times, deepest first (a
    directory's mtime moves whenever something inside it is created or removed, so it
    is set after its content). Creating a directory makes its parent pending again, so
    passes repeat until one finds nothing new; a directory that failed is tried once
    per run. Returns the number of failures. A full or read-only destination stops the
    run (FatalError) once what was done is recorded. `selected` (a test of the source
    path; --files-from): only those directories are looked at."""
    failed_keys: set = set()
    progressed = True
    while progressed and not stop.is_set():
        progressed, before = False, None
        while not stop.is_set():
            page = catalog.pending_dirs(before)
            if not page:
                break
            before = page[-1][0]
            if selected is not None:
                page = [entry for entry in page if selected(from_db(entry[0]))]
            done, failed, touched = [], [], set()
            fatal = _apply_page(page, dest, retrier, audit, failed_keys, done, failed,
                                touched)
            record_removals(dest.take_removed(), audit, catalog, audit.run_id)
            catalog.record_dirs(done, failed, sorted(touched))
            if fatal is not None:
                raise fatal
            progressed = progressed or bool(done)
    return len(failed_keys)


def _apply_page(page, dest, retrier, audit, failed_keys, done, failed, touched
                ) -> FatalError | None:
    for key, path, times in page:
        if key in failed_keys:
            continue
        try:
            dest.refuse_blocked(path)       # in the way, as found before: no round trip
            touched.update(retrier.call("dst", "mkdir",
                                        lambda: _make(dest, retrier, path)))
            retrier.call("dst", "utime", lambda: dest.set_dir_times(path, times))
            done.append(key)
        except Interrupted:
            return None
        except FatalError as e:
            return e
        except OSError as e:
            if is_fatal(e):
                return FatalError(f"stopped: {describe(e)} on the destination (directory "
                                  f"{os.fsdecode(path)!r}); what is done stays recorded")
            failed.append((key, describe(e)))
            failed_keys.add(key)
            audit.event("dir", "failed", dst=path, error=describe(e))
            # Below a name in the way, every directory fails for that one reason: the
            # warning is the one of that name's own directory.
            below = isinstance(e, KindClash) and e.path != path
            log.log(logging.INFO if below else logging.WARNING, "directory %s: %s",
                    os.fsdecode(path), describe(e))
    return None


def _make(dest, retrier: Retrier, path: bytes) -> list[bytes]:
    """ensure_dir; where DST has a non-directory in the way, make_room (which fails the
    directory without --delete-extras). The row is as old as the scan, so SRC must
    still have a directory there, looked at now: an unmounted SRC or a directory
    removed since is no reason to remove anything at DST."""
    try:
        return dest.ensure_dir(path)
    except KindClash as clash:
        if dest.replace and not _is_dir(retrier.roots["src"].path
                                        + clash.path[len(dest.path):]):
            raise KindClash(clash.path, clash.found, "dir", below=True,
                            outcome="kept, as SRC no longer has one there") from None
        return dest.make_room(clash) + dest.ensure_dir(path)


def _is_dir(path: bytes) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False
