"""The one-file binary's leftovers: PyInstaller unpacks dist/fastsync into a fresh
`_MEI<random>` directory in the temp directory (~35 MB) at every start and removes it
at exit, unless the run is killed. Weeks of cron runs and admin kills would fill the
temp directory, so each start removes the leftovers of earlier, dead fastsync runs."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import sys
import time

from .config import format_size

STALE_AFTER = 600.0     # seconds untouched before an unpacked directory may be stale


def remove_stale_extractions() -> None:
    """The one-file binary unpacks itself into a fresh `_MEI<random>` directory in the
    temp directory (~35 MB) and its bootloader removes it at exit, unless it is killed.
    Remove such leftovers of earlier fastsync runs (see stale_extractions)."""
    current = getattr(sys, "_MEIPASS", None)
    if not getattr(sys, "frozen", False) or not current:
        return
    removed, size = 0, 0
    for path in stale_extractions(os.path.dirname(current), current):
        size += _tree_size(path)
        shutil.rmtree(path, ignore_errors=True)
        removed += not os.path.exists(path)
    if removed:
        logging.getLogger("fastsync").info(
            "removed %d unpacked cop%s of fastsync left by killed runs (%s) in %s",
            removed, "y" if removed == 1 else "ies", format_size(size),
            os.path.dirname(current))


def stale_extractions(tmpdir: str, current: str, now: float | None = None) -> list[str]:
    """fastsync's unpacked directories in `tmpdir` that no process uses: not `current`,
    ours (same owner), holding fastsync's package, untouched for STALE_AFTER seconds
    (one being unpacked right now is fresh), and mapped by no live process (a running
    fastsync maps its libpython and extension modules from there). PyInstaller names
    them at random, not by PID, so this is how to tell a dead one."""
    now = time.time() if now is None else now
    candidates = []
    try:
        entries = list(os.scandir(tmpdir))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith("_MEI") or os.path.realpath(entry.path) == \
                os.path.realpath(current):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if (stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()
                and os.path.isdir(os.path.join(entry.path, "fastsync"))
                and now - _newest_mtime(entry.path) >= STALE_AFTER):
            candidates.append(entry.path)
    if not candidates:
        return []
    in_use = _mapped(candidates)
    return [c for c in candidates if c not in in_use]


def _newest_mtime(root: str) -> float:
    newest = 0.0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            try:
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
            except OSError:
                pass
    return newest


def _mapped(candidates: list[str]) -> set[str]:
    """Those of `candidates` some live process maps a file from. A process whose maps
    cannot be read (another user's, or one that is not dumpable, such as a container's
    init) is no fastsync of ours, unless its command line says fastsync: then it might
    map any of them, and all count as in use."""
    prefixes = {c: os.path.realpath(c) + "/" for c in candidates}
    in_use: set[str] = set()
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return set(candidates)      # no /proc: nothing can be known to be unused
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
                maps = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue            # gone meanwhile
        except OSError:
            if _looks_like_fastsync(pid):
                return set(candidates)
            continue
        in_use.update(c for c, prefix in prefixes.items() if prefix in maps)
    return in_use


def _looks_like_fastsync(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0", 1)[0]
    except OSError:
        return False
    names = {b"fastsync", os.path.basename(os.fsencode(sys.executable))}
    return os.path.basename(argv0) in names


def _tree_size(root: str) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total
