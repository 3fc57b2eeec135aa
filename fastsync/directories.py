"""Directories at DST after the copy: create the missing ones, then give every directory
whose content changed its source times back, deepest first."""

from __future__ import annotations

import logging
import os
import threading

from .catalog import Catalog
from .errors import FatalError, Interrupted, describe, is_fatal
from .retry import Retrier

log = logging.getLogger(__name__)


def apply_directories(catalog: Catalog, dest, retrier: Retrier, stop: threading.Event,
                      audit) -> int:
    """Create pending directories and give them their source times, deepest first (a
    directory's mtime moves whenever something inside it is created or removed, so it
    is set after its content). Creating a directory makes its parent pending again, so
    passes repeat until one finds nothing new; a directory that failed is tried once
    per run. Returns the number of failures. A full or read-only destination stops the
    run (FatalError) once what was done is recorded."""
    failed_keys: set = set()
    progressed = True
    while progressed and not stop.is_set():
        progressed, before = False, None
        while not stop.is_set():
            page = catalog.pending_dirs(before)
            if not page:
                break
            before = page[-1][0]
            done, failed, touched = [], [], set()
            fatal = _apply_page(page, dest, retrier, audit, failed_keys, done, failed,
                                touched)
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
            touched.update(retrier.call("dst", "mkdir", lambda: dest.ensure_dir(path)))
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
            log.warning("directory %s: %s", os.fsdecode(path), describe(e))
    return None
