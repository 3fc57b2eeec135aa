"""Where a run reads and writes: SRC, DST, the catalog (with its lock and SQLite's
-wal, -shm and -journal files) and the audit log, checked before anything is written.

No two of them may be the same file or lie inside one another, however the paths are
spelled: symlinks and `..` are resolved, and directories are compared by identity
(device and inode), which also sees through bind mounts. Without this, `--db X --log X`
lets SQLite overwrite the audit log, and a log inside DST is deleted as an extra.
"""

from __future__ import annotations

import os

from .errors import UsageError

CATALOG_COMPANIONS = (".lock", "-wal", "-shm", "-journal")


def check_paths(src: str, dst: str, db: str, log: str) -> tuple[bytes, bytes]:
    """Check SRC, DST, the catalog and the log path; return SRC and DST as absolute bytes.

    DST must already exist: if a share is not mounted, its mount point is an empty local
    directory, and creating DST below it would fill the local disk instead.
    """
    for label, value in (("SRC", src), ("DST", dst), ("--db", db), ("--log", log)):
        if not value.strip():
            # "" would silently mean the current directory (think of an unset
            # variable in a cron line, with --delete-extras)
            raise UsageError(f"{label} is an empty string")
    src_b, src_st = _directory("SRC", src)
    dst_b, dst_st = _directory("DST", dst)
    # Tried for real rather than asked of os.access, which guesses wrong on shares with
    # ACLs or id mapping. (DST gets a real write at startup: transfer.probe_destination.)
    try:
        with os.scandir(src_b) as entries:
            next(entries, None)
    except OSError as e:
        raise UsageError(f"SRC {src!r} cannot be listed: {e.strerror}") from None
    if _identity(src_st) == _identity(dst_st):
        raise UsageError("SRC and DST are the same directory")
    if _below(dst_b, _identity(src_st)) or _below(src_b, _identity(dst_st)):
        raise UsageError("SRC and DST must not be inside one another")
    roots = (("SRC", src, _identity(src_st)), ("DST", dst, _identity(dst_st)))
    for label, value in (("catalog", db), ("log", log)):
        _check_file(label, value, roots)
    _apart(db, log)
    return src_b, dst_b


def _directory(label: str, value: str) -> tuple[bytes, os.stat_result]:
    path = os.path.abspath(os.fsencode(value))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UsageError(f"{label} {value!r} does not exist") from None
    except OSError as e:
        raise UsageError(f"{label} {value!r} cannot be read: {e.strerror}") from None
    if not os.path.isdir(path):
        raise UsageError(f"{label} {value!r} is not a directory")
    return path, st


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _below(path: bytes, directory: tuple[int, int]) -> bool:
    """Is `path` (resolved) inside the directory with identity `directory`? Each parent
    is compared by identity, so a bind mount of that directory is seen for what it is."""
    current = os.path.realpath(path)
    while True:
        parent = os.path.dirname(current)
        if parent == current:
            return False
        current = parent
        try:
            if _identity(os.stat(current)) == directory:
                return True
        except OSError:
            pass


def _check_file(label: str, value: str, roots) -> None:
    path = os.fsencode(value)
    parent = os.path.dirname(os.path.abspath(path)) or b"."
    if not os.path.isdir(parent):
        raise UsageError(f"{label} directory {os.fsdecode(parent)!r} does not exist")
    for root_label, root_value, identity in roots:
        if _below(path, identity) or (os.path.exists(path)
                                      and _identity(os.stat(path)) == identity):
            raise UsageError(f"the {label} {value!r} must not be inside SRC or DST "
                             f"({root_label} is {root_value!r})")
    if os.path.isdir(path):
        raise UsageError(f"the {label} path {value!r} is a directory")
    if os.path.exists(path) and not os.path.isfile(path):
        raise UsageError(f"the {label} path {value!r} is not a regular file")
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        raise UsageError(f"the {label} {value!r} is not writable")
    if not os.path.exists(path) and not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"the {label} directory {os.fsdecode(parent)!r} is not writable")


def _where(path: bytes) -> tuple:
    """What a file path names, comparable however it is spelled: the file's own identity
    if it exists, else its resolved directory's identity and its name."""
    real = os.path.realpath(path)
    try:
        return ("file",) + _identity(os.stat(real))
    except OSError:
        pass
    try:
        directory = _identity(os.stat(os.path.dirname(real)))
    except OSError:
        return ("path", real)
    return ("name",) + directory + (os.path.basename(real),)


def _apart(db: str, log: str) -> None:
    """The log must be none of the catalog's files: SQLite would overwrite it, or the
    lock would truncate it."""
    db_b, log_b = os.fsencode(db), os.fsencode(log)
    catalog = {_where(db_b): "catalog"}
    for suffix in CATALOG_COMPANIONS:
        catalog[_where(db_b + suffix.encode())] = f"catalog's {suffix} file"
        # the lock is taken at the catalog's resolved path: spell it that way too
        catalog[_where(os.path.realpath(db_b) + suffix.encode())] = f"catalog's {suffix} file"
    what = catalog.get(_where(log_b))
    if what is not None:
        raise UsageError(f"the log {log!r} is the {what} ({db!r}); give --db and --log "
                         f"different files")
