"""Errors that end a run, each carrying the exit status a script sees.

The message is what the user reads: one line, naming the problem, no traceback.
"""

# Exit statuses (documented in README, "Exit status").
EXIT_OK = 0            # every file is synced
EXIT_PARTIAL = 1       # the run finished, but some files failed (they stay pending)
EXIT_USAGE = 2         # bad option, path or catalog; nothing was written
EXIT_FATAL = 3         # the run had to stop (destination full, catalog unwritable, ...)
EXIT_LOCKED = 4        # another fastsync is using this catalog
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
