"""Directories at DST after the copy: create the missing ones, then give every directory
whose content changed its source times back, deepest first."""

from __future__ import annotations

import logging
import os
import threading

from . import faults
from .catalog import Catalog
from .errors import Interrupted, describe
from .retry import Retrier
from .transfer import DirMaker

log = logging.getLogger(__name__)


def apply_directories(catalog: Catalog, dirs: DirMaker, retrier: Retrier,
                      stop: threading.Event, audit) -> int:
    """Create pending directories and give them their source times, deepest first (a
    directory's mtime moves whenever something inside it is created or removed, so it
    is set after its content). Creating a directory makes its parent pending again, so
    passes repeat until one finds nothing new; a directory that failed is tried once
    per run. Returns the number of failures."""
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
            for key, path, times in page:
                if key in failed_keys:
                    continue
                try:
                    touched.update(retrier.call("dst", "mkdir", lambda: dirs.ensure(path)))
                    retrier.call("dst", "utime", lambda: set_dir_times(path, times))
                    done.append(key)
                except Interrupted:
                    break
                except OSError as e:
                    failed.append((key, describe(e)))
                    failed_keys.add(key)
                    audit.event("dir", "failed", dst=path, error=describe(e))
                    log.warning("directory %s: %s", os.fsdecode(path), describe(e))
            catalog.record_dirs(done, failed, sorted(touched))
            progressed = progressed or bool(done)
    return len(failed_keys)


def set_dir_times(path: bytes, times: tuple[int, int]) -> None:
    faults.fail("utime", path)
    os.utime(path, ns=times, follow_symlinks=False)
