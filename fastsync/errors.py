"""Errors: those that end a run, each carrying the exit status a script sees, and how an
error met on one file is sorted (classify) and told (describe).

The message is what the user reads: one line, naming the problem, no traceback.

  transient  EIO, ETIMEDOUT, ESTALE, ENOTCONN, EHOSTDOWN, EHOSTUNREACH, ENETDOWN,
             ENETUNREACH, ENETRESET, ECONNRESET, ECONNABORTED, ECONNREFUSED, EAGAIN,
             EINTR, EREMOTEIO: retried in place (retry.py).
  restart    ESPIPE, Restart: the stream to the share is broken (a FUSE mount that uploads
             or downloads as a stream cannot take a second try at an offset): not retried
             in place; the file is copied again from the start.
  fatal      ENOSPC, EDQUOT, EROFS: no further file can succeed; the run stops.
  permanent  everything else (EACCES, ENOENT, EISDIR, ...): this file fails now and
             stays pending for the next run; the others go on.
"""

import errno

# Exit statuses (documented in README, "Exit status").
EXIT_OK = 0            # every file is synced
EXIT_PARTIAL = 1       # the run finished, but some files failed (they stay pending)
EXIT_USAGE = 2         # bad option, path or catalog; nothing was written
EXIT_FATAL = 3         # the run had to stop (destination full, catalog unwritable, ...)
EXIT_LOCKED = 4        # another fastsync is using this catalog
EXIT_CRASH = 70        # an internal error (a bug; EX_SOFTWARE): the run was recorded as failed
EXIT_SIGINT = 130      # interrupted by SIGINT (Ctrl-C); the catalog is consistent
EXIT_SIGTERM = 143     # interrupted by SIGTERM; the catalog is consistent


class FastsyncError(Exception):
    """Base of errors shown to the user as one line."""

    exit_code = EXIT_FATAL


class UsageError(FastsyncError):
    """A bad option value or path, found before anything was written."""

    exit_code = EXIT_USAGE


class CatalogError(FastsyncError):
    """The catalog cannot be used: not SQLite, corrupt, newer schema, another SRC/DST."""

    exit_code = EXIT_USAGE


class CatalogLocked(FastsyncError):
    """Another fastsync process holds the catalog's lock."""

    exit_code = EXIT_LOCKED


class FatalError(FastsyncError):
    """The run cannot go on (e.g. the destination is full); what is done stays recorded."""

    exit_code = EXIT_FATAL


TRANSIENT = frozenset({errno.EIO, errno.ETIMEDOUT, errno.ESTALE, errno.ENOTCONN,
                       errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ENETDOWN,
                       errno.ENETUNREACH, errno.ENETRESET, errno.ECONNRESET,
                       errno.ECONNABORTED, errno.ECONNREFUSED, errno.EAGAIN, errno.EINTR,
                       errno.EREMOTEIO})
FATAL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
RESTART = frozenset({errno.ESPIPE})


class Interrupted(Exception):
    """The run is stopping; whatever was in progress stays pending."""


class Restart(OSError):
    """The share went away while this file was open; its handle, and any stream
    behind it, is gone with it: copy the file again from the start."""


class SourceChanged(OSError):
    """The source file changed while it was being read; the copy is discarded."""


def classify(error: BaseException) -> str:
    """'fatal', 'transient', 'restart' or 'permanent'."""
    code = getattr(error, "errno", None)
    if code in FATAL:
        return "fatal"
    if code in RESTART or isinstance(error, Restart):
        return "restart"
    if code in TRANSIENT:
        return "transient"
    return "permanent"


def is_fatal(error: BaseException) -> bool:
    """Does this error stop the run (a full or read-only destination, a share gone for
    good) rather than fail one entry?"""
    return isinstance(error, FatalError) or classify(error) == "fatal"


def may_pass(error: BaseException) -> bool:
    """Is this a failure worth another copy of the file in this run?"""
    return isinstance(error, SourceChanged) or classify(error) in ("transient", "restart")


def describe(error: BaseException) -> str:
    """One line for the audit log and the console."""
    if isinstance(error, OSError) and error.strerror:
        name = errno.errorcode.get(error.errno)
        return f"{name}: {error.strerror}" if name else error.strerror
    return str(error) or type(error).__name__
