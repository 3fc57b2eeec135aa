"""The catalog: one SQLite file that remembers, per source entry, what has been copied.

Tables (README, "Catalog"):
  files       one row per source entry (file, directory or symlink): the spec's columns
              plus kind, link_target, hash_algo, attempts, last_error, synced_at,
              verified_at (schema v2: when `fastsync verify` last read it back intact),
              priority and order_key (v3: where a pending row stands in the backlog)
  dest_files  what the last scan found under DST (for skip decisions and mirroring)
  scan_src    staging for a scan in progress; merged into `files` in one transaction
  runs        one row per run, with what it copied
  meta        SRC, DST and the schema version this catalog belongs to

Paths are stored as TEXT when they are valid UTF-8 (readable in the sqlite3 shell) and as
BLOB of the raw bytes otherwise, so every name round-trips exactly. The mapping is a
function of the bytes, so equal paths always compare equal in SQL.

Writes go through one connection guarded by a lock; the reader thread iterates the
backlog on a connection of its own (WAL lets it read while the finisher commits). A
crash can only leave the catalog behind the truth (a copied file still pending), never
ahead of it: rows become `synced` after the data is durable at the destination.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence
from urllib.parse import quote

from .errors import CatalogError, FatalError
from .locks import CatalogLock
from .times import DST_TIME_UNKNOWN, recorded_btime

SCHEMA_VERSION = 3       # v2: files.verified_at; v3: priority, order_key (migrated on open)
APPLICATION_ID = 0x46535943  # "FSYC"
SQLITE_MAGIC = b"SQLite format 3\x00"


def to_db(path: bytes) -> str | bytes:
    """Path bytes -> catalog value: TEXT if valid UTF-8, else the raw bytes as BLOB."""
    try:
        return path.decode("utf-8")
    except UnicodeDecodeError:
        return path


def from_db(value: str | bytes) -> bytes:
    """Catalog value -> the exact path bytes it was made from."""
    return value if isinstance(value, bytes) else value.encode("utf-8")


SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value);
CREATE TABLE files (
    src_path     PRIMARY KEY,             -- full source path (TEXT, or BLOB if not UTF-8)
    dst_path     NOT NULL UNIQUE,         -- full destination path
    kind         TEXT NOT NULL CHECK (kind IN ('file', 'dir', 'symlink')),
    created      INTEGER,                 -- birth time, ns since epoch; NULL if unknown
    changed      INTEGER NOT NULL,        -- ctime, ns
    modified     INTEGER NOT NULL,        -- mtime, ns
    accessed     INTEGER NOT NULL,        -- atime, ns
    permissions  INTEGER NOT NULL,        -- st_mode & 0o7777, recorded only
    uid          INTEGER,
    gid          INTEGER,
    hash         TEXT,                    -- hex digest; NULL until fastsync copied it
    hash_algo    TEXT,                    -- algorithm of `hash`
    size         INTEGER NOT NULL,        -- bytes (symlink: length of the target)
    link_target,                          -- symlinks only
    status       TEXT NOT NULL CHECK (status IN ('pending', 'synced')),
    synced_at    INTEGER,                 -- ns since epoch
    attempts     INTEGER NOT NULL DEFAULT 0,  -- failed attempts since it last changed
    last_error   TEXT,
    -- v2 (last: where ALTER TABLE puts it in a migrated v1 catalog): when fastsync
    -- verify last read the file back intact (ns); NULL: never. No comma in these
    -- comments: SQLite's DROP COLUMN takes one for the end of the previous column.
    verified_at  INTEGER,
    -- v3: the backlog goes by priority then order_key then src_path: the class of
    -- --priority with 0 first and 1073741824 for the rest and the key of --order-by:
    -- 0 for path order or the size or mtime and negated for desc
    priority     INTEGER NOT NULL DEFAULT 1073741824,
    order_key    NOT NULL DEFAULT 0
);
CREATE INDEX files_backlog ON files (src_path, kind, size, attempts) WHERE status = 'pending';
CREATE INDEX files_order ON files (priority, order_key, src_path) WHERE status = 'pending';
CREATE TABLE dest_files (
    dst_path     PRIMARY KEY,
    kind         TEXT NOT NULL,           -- file, dir, symlink or special
    size         INTEGER NOT NULL,
    modified     INTEGER NOT NULL,
    link_target
);
CREATE TABLE scan_src (
    src_path     PRIMARY KEY,
    dst_path     NOT NULL UNIQUE,
    kind TEXT NOT NULL, size INTEGER NOT NULL, created INTEGER, changed INTEGER NOT NULL,
    modified INTEGER NOT NULL, accessed INTEGER NOT NULL, permissions INTEGER NOT NULL,
    uid INTEGER, gid INTEGER, link_target, priority INTEGER NOT NULL DEFAULT 1073741824
);
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    started       INTEGER NOT NULL,       -- ns since epoch
    finished      INTEGER,
    mode          TEXT NOT NULL,          -- scan | resume
    status        TEXT,                   -- ok | partial | interrupted | failed
    hash_algo     TEXT NOT NULL,
    files_copied  INTEGER NOT NULL DEFAULT 0,
    bytes_copied  INTEGER NOT NULL DEFAULT 0,
    files_failed  INTEGER NOT NULL DEFAULT 0,
    files_deleted INTEGER NOT NULL DEFAULT 0,
    version       TEXT NOT NULL
);
"""

SCAN_COLUMNS = ("src_path", "dst_path", "kind", "size", "created", "changed", "modified",
                "accessed", "permissions", "uid", "gid", "link_target", "priority")
DEST_COLUMNS = ("dst_path", "kind", "size", "modified", "link_target")

# Does destination entry d already hold source entry s? The spec's rule (same size, same
# mtime) with mtimes compared at the destination's granularity (:window ns, measured at
# startup: 1 on ext4, 100 on SMB, 2e9 on FAT), directories by mtime only, and symlinks
# by target. Both differences are compared, not abs(): abs(-2**63) is an SQLite error,
# while a difference that overflows int64 becomes a REAL, which compares correctly.
MATCH = f"""(d.kind = s.kind AND d.size = s.size AND CASE s.kind
    WHEN 'symlink' THEN d.link_target = s.link_target
    ELSE d.modified != {DST_TIME_UNKNOWN} AND d.modified - s.modified < :window
         AND s.modified - d.modified < :window END)"""

# The source entry is the one the row describes already: its hash still holds.
SAME = """(files.kind = excluded.kind AND files.size = excluded.size
    AND files.modified = excluded.modified AND files.link_target IS excluded.link_target)"""

FOUND_DAMAGED = -1      # files.verified_at of a row verify sent back to pending
LAST_CLASS = 1 << 30    # files.priority of what no --priority matches (selection.LAST)

# A file `fastsync verify` found damaged at DST stays pending through a rescan while
# the source is unchanged: DST has the same size and mtime, and MATCH alone would call
# the damaged copy synced again.
MERGE = f"""
INSERT INTO files (src_path, dst_path, kind, size, created, changed, modified, accessed,
                   permissions, uid, gid, link_target, status, priority, order_key)
SELECT s.src_path, s.dst_path, s.kind, s.size, s.created, s.changed, s.modified,
       s.accessed, s.permissions, s.uid, s.gid, s.link_target,
       CASE WHEN {MATCH} THEN 'synced' ELSE 'pending' END, s.priority, {{order_key}}
FROM scan_src s LEFT JOIN dest_files d ON d.dst_path = s.dst_path
WHERE true
ON CONFLICT (src_path) DO UPDATE SET
    hash       = CASE WHEN {SAME} THEN files.hash ELSE NULL END,
    hash_algo  = CASE WHEN {SAME} THEN files.hash_algo ELSE NULL END,
    attempts   = CASE WHEN {SAME} THEN files.attempts ELSE 0 END,
    last_error = CASE WHEN {SAME} THEN files.last_error ELSE NULL END,
    synced_at  = CASE WHEN {SAME} AND excluded.status = 'synced' THEN files.synced_at END,
    dst_path = excluded.dst_path, kind = excluded.kind, size = excluded.size,
    created = excluded.created, changed = excluded.changed, modified = excluded.modified,
    accessed = excluded.accessed, permissions = excluded.permissions,
    uid = excluded.uid, gid = excluded.gid, link_target = excluded.link_target,
    priority = excluded.priority, order_key = excluded.order_key,
    status = CASE WHEN files.status = 'pending' AND files.verified_at = {FOUND_DAMAGED}
                   AND {SAME} THEN 'pending' ELSE excluded.status END,
    verified_at = CASE WHEN {SAME} THEN files.verified_at END
"""


@dataclass(frozen=True)
class Backlog:
    files: int          # pending files and symlinks
    bytes: int
    dirs: int           # pending directories (created and timed after the files)
    fresh: int          # pending rows never attempted: an interrupted run's leftovers

    @property
    def empty(self) -> bool:
        return self.files == 0 and self.dirs == 0


@dataclass(slots=True)
class PendingFile:
    """One backlog row as the reader needs it."""
    src: bytes
    dst: bytes
    kind: str
    size: int
    link_target: bytes | None
    key: str | bytes    # src_path exactly as stored, for updates
    priority: int = LAST_CLASS   # the --priority class (0 first)


@dataclass(slots=True)
class Outcome:
    """What happened to one backlog entry; recorded in one batch with its neighbours."""
    key: str | bytes
    ok: bool
    size: int = 0
    hash: str | None = None
    stat: tuple | None = None       # _core stat tuple of the source as copied
    error: str | None = None
    final: bool = True              # a failure that will not be tried again in this run


class Catalog:
    def __init__(self, path: str, conn: sqlite3.Connection, lock: CatalogLock):
        self.path = path
        self._conn = conn
        self._held = lock
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- opening --

    @classmethod
    def open(cls, path: str, src: bytes, dst: bytes, version: str) -> "Catalog":
        """Open (or create) the catalog for SRC -> DST, holding its lock for this process."""
        lock = CatalogLock(path)
        try:
            conn = _connect(path)
            catalog = cls(path, conn, lock)
            lock.hold_catalog()
            catalog._prepare(src, dst, version)
        except BaseException:
            lock.close()
            raise
        return catalog

    def _prepare(self, src: bytes | None, dst: bytes | None, version: str) -> None:
        """Check that the file is a catalog (for SRC and DST, unless they are None)
        and bring an older schema up to date; create it if the file is empty."""
        conn = self._conn
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            schema = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise CatalogError(f"catalog {self.path!r} is not a usable SQLite file ({e})") from None
        if not tables and src is not None:
            self._create(src, dst, version)
            return
        if app_id != APPLICATION_ID:
            raise CatalogError(f"{self.path!r} is an SQLite database but not a fastsync catalog")
        if schema > SCHEMA_VERSION:
            raise CatalogError(f"catalog {self.path!r} has schema v{schema}, written by a newer "
                               f"fastsync; this one reads v{SCHEMA_VERSION}")
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as e:
            raise CatalogError(f"catalog {self.path!r} is damaged ({e})") from None
        if src is not None and (meta.get("src"), meta.get("dst")) != (to_db(src), to_db(dst)):
            theirs = (_show(meta.get("src")), _show(meta.get("dst")))
            raise CatalogError(f"catalog {self.path!r} belongs to SRC={theirs[0]} DST={theirs[1]}; "
                               f"use another --db for {_show(to_db(src))} -> {_show(to_db(dst))}")
        _tune(conn)
        if schema < SCHEMA_VERSION:
            self._migrate(schema)

    def _migrate(self, schema: int) -> None:
        """v1 -> v2: files.verified_at (NULL: never verified); v2 -> v3: priority and
        order_key (0: path order, as before) and their index. One transaction: a crash
        leaves the old schema as it was, and the next open migrates again. Only after
        the SRC/DST check: a catalog refused is left untouched."""
        if schema not in (1, 2):
            raise CatalogError(f"catalog {self.path!r} has schema v{schema}, which no "
                               f"fastsync wrote; it is damaged")
        with self._tx() as c:
            if schema == 1:
                c.execute("ALTER TABLE files ADD COLUMN verified_at INTEGER")
            c.execute("ALTER TABLE files ADD COLUMN priority INTEGER NOT NULL"
                      " DEFAULT 1073741824")
            c.execute("ALTER TABLE files ADD COLUMN order_key NOT NULL DEFAULT 0")
            c.execute("ALTER TABLE scan_src ADD COLUMN priority INTEGER NOT NULL"
                      " DEFAULT 1073741824")
            c.execute("CREATE INDEX files_order ON files (priority, order_key, src_path)"
                      " WHERE status = 'pending'")
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                      (SCHEMA_VERSION,))
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _create(self, src: bytes, dst: bytes, version: str) -> None:
        conn = self._conn
        _tune(conn)
        with self._tx():
            for statement in SCHEMA.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
                ("schema_version", SCHEMA_VERSION), ("src", to_db(src)), ("dst", to_db(dst)),
                ("created", time.time_ns()), ("created_by", f"fastsync {version}")])
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the catalog and release its lock (safe to call twice)."""
        if not self._held.fds:
            return
        try:
            self._conn.close()
        finally:
            self._held.close()

    @contextmanager
    def _tx(self):
        """One write transaction; any SQLite failure becomes a FatalError naming the file.

        Whatever fails, the body or the COMMIT itself (a full disk, an I/O error, a
        deferred constraint), the transaction is rolled back: SQLite leaves it open after
        a failed COMMIT, and every later BEGIN would fail."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise FatalError(f"catalog {self.path!r}: {e}") from None
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as e:
                self._rollback()
                if isinstance(e, sqlite3.Error):
                    raise FatalError(f"catalog {self.path!r}: {e}") from None
                raise

    def _rollback(self) -> None:
        """End the open transaction, if SQLite has not already (it rolls back by itself
        after some errors); a failure here must not hide the error that led to it."""
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _rows(self, sql: str, params: Sequence | dict = ()) -> Iterator[tuple]:
        """The rows of a query, one at a time, on a private read-only connection (a
        query over millions of rows is never held in memory whole)."""
        conn = _connect(self.path, readonly=True)
        try:
            yield from conn.execute(sql, params)
        except sqlite3.Error as e:
            raise FatalError(f"catalog {self.path!r}: {e}") from None
        finally:
            conn.close()

    def _query(self, sql: str, params: Sequence | dict = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise FatalError(f"catalog {self.path!r}: {e}") from None

    # ------------------------------------------------------------------- meta --

    def get_meta(self, key: str, default=None):
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_meta(self, key: str, value) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def src_mounts(self) -> list[bytes]:
        """SRC directories where a scan found another filesystem mounted (mirror.py)."""
        return [os.fsencode(p) for p in json.loads(self.get_meta("src_mounts", "[]"))]

    def set_src_mounts(self, paths: Sequence[bytes]) -> None:
        # JSON of fsdecoded names: surrogate escapes survive it, so any bytes do
        self.set_meta("src_mounts", json.dumps(sorted(os.fsdecode(p) for p in paths)))

    # ---------------------------------------------------------------- backlog --

    def backlog(self, selected: Callable[[bytes], bool] | None = None) -> Backlog:
        """What is pending; with `selected` (a test of the source path), only that."""
        if selected is None:
            (files, nbytes, dirs, fresh), = self._query(
                "SELECT coalesce(sum(kind != 'dir'), 0),"
                " coalesce(sum(size * (kind != 'dir')), 0),"
                " coalesce(sum(kind = 'dir'), 0), coalesce(sum(attempts = 0), 0)"
                # the index that holds every column summed: no lookup of a row (the
                # planner would take files_order, and read 1M rows at random)
                " FROM files INDEXED BY files_backlog WHERE status = 'pending'")
            return Backlog(files, nbytes, dirs, fresh)
        files = nbytes = dirs = fresh = 0
        for key, kind, size, attempts in self._rows(
                "SELECT src_path, kind, size, attempts FROM files WHERE status = 'pending'"):
            if selected(from_db(key)):
                files, nbytes = files + (kind != "dir"), nbytes + size * (kind != "dir")
                dirs, fresh = dirs + (kind == "dir"), fresh + (attempts == 0)
        return Backlog(files, nbytes, dirs, fresh)

    def iter_backlog(self, page: int = 500, selected: Callable[[bytes], bool] | None = None
                     ) -> Iterator[PendingFile]:
        """Pending files and symlinks by priority class, then order key, then path
        (the index files_order: no sort), read on a private connection; with
        `selected`, only the source paths it accepts.

        Keyset pages keep memory flat and let rows change underneath: a row that becomes
        synced simply drops out, and the cursor never revisits a row it has passed.
        """
        conn = _connect(self.path, readonly=True)
        try:
            last: tuple = ()
            while True:
                rows = conn.execute(
                    "SELECT priority, order_key, src_path, dst_path, kind, size, link_target"
                    " FROM files WHERE status = 'pending' AND kind != 'dir'"
                    + (" AND (priority, order_key, src_path) > (?, ?, ?)" if last else "")
                    + " ORDER BY priority, order_key, src_path LIMIT ?",
                    (*last, page)).fetchall()
                if not rows:
                    return
                for priority, _, key, dst, kind, size, target in rows:
                    src = from_db(key)
                    if selected is None or selected(src):
                        yield PendingFile(src, from_db(dst), kind, size,
                                          None if target is None else from_db(target), key,
                                          priority)
                last = rows[-1][:3]
        except sqlite3.Error as e:
            raise FatalError(f"catalog {self.path!r}: {e}") from None
        finally:
            conn.close()

    def reorder(self, klass: Callable[[bytes], int] | None, order_key: str,
                meta: dict | None = None, page: int = 10_000) -> None:
        """Give every pending row its priority class (klass(source path); None: the
        last class for all) and its order key (`order_key`: SQL over the table
        `files`), writing only the rows that change, with `meta`, in one transaction:
        for a backlog whose --priority or --order-by changed."""
        with self._tx() as c:
            c.execute(f"UPDATE files SET order_key = {order_key} WHERE status = 'pending'"
                      f" AND order_key IS NOT {order_key}")
            if klass is None:
                c.execute("UPDATE files SET priority = ? WHERE status = 'pending'"
                          " AND priority != ?", (LAST_CLASS, LAST_CLASS))
            last: tuple = ()
            while klass is not None:
                rows = c.execute("SELECT src_path, priority FROM files WHERE status = "
                                 "'pending'" + (" AND src_path > ?" if last else "")
                                 + " ORDER BY src_path LIMIT ?", (*last, page)).fetchall()
                if not rows:
                    break
                changed = [(new, key) for key, old in rows
                           if (new := klass(from_db(key))) != old]
                c.executemany("UPDATE files SET priority = ? WHERE src_path = ?", changed)
                last = rows[-1][:1]
            c.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                          list((meta or {}).items()))

    def pending_dirs(self, before: str | bytes | None = None, limit: int = 500
                     ) -> list[tuple[str | bytes, bytes, tuple[int, int]]]:
        """A page of pending directories, deepest first (descending path), strictly
        before key `before`: (key, dst path, (atime_ns, mtime_ns))."""
        rows = self._query(
            "SELECT src_path, dst_path, accessed, modified FROM files"
            " WHERE status = 'pending' AND kind = 'dir'"
            + ("" if before is None else " AND src_path < :before")
            + " ORDER BY src_path DESC LIMIT :limit", {"before": before, "limit": limit})
        return [(key, from_db(dst), (atime, mtime)) for key, dst, atime, mtime in rows]

    def record(self, run_id: int, outcomes: Sequence[Outcome], algo: str,
               touched_dirs: Sequence[bytes] = ()) -> None:
        """Record a batch of outcomes, and mark the directories they changed as pending
        (their mtimes moved), in one transaction."""
        now = time.time_ns()
        copied = [o for o in outcomes if o.ok]
        failed = [o for o in outcomes if not o.ok]
        with self._tx() as c:
            c.executemany(
                "UPDATE files SET status = 'synced', hash = ?, hash_algo = ?, size = ?,"
                " permissions = ?, accessed = ?, modified = ?, changed = ?, created = ?,"
                " uid = ?, gid = ?, synced_at = ?, attempts = 0, last_error = NULL,"
                " verified_at = NULL"
                " WHERE src_path = ?",
                [(o.hash, algo if o.hash else None, o.size, o.stat[0] & 0o7777, o.stat[2],
                  o.stat[3], o.stat[4], recorded_btime(o.stat[5]), o.stat[6], o.stat[7], now,
                  o.key)
                 for o in copied])
            c.executemany("UPDATE files SET attempts = attempts + 1, last_error = ?"
                          " WHERE src_path = ?", [(o.error, o.key) for o in failed])
            _dirs_changed(c, touched_dirs)
            c.execute("UPDATE runs SET files_copied = files_copied + ?,"
                      " bytes_copied = bytes_copied + ?, files_failed = files_failed + ?"
                      " WHERE id = ?",
                      (len(copied), sum(o.size for o in copied),
                       sum(1 for o in failed if o.final), run_id))

    def record_dirs(self, done: Sequence[str | bytes], failed: Sequence[tuple],
                    touched_dirs: Sequence[bytes] = ()) -> None:
        """Record directories given their times; `touched_dirs` (parents whose content
        changed when a directory was created) become pending again."""
        with self._tx() as c:
            _dirs_changed(c, touched_dirs)
            now = time.time_ns()
            c.executemany("UPDATE files SET status = 'synced', synced_at = ?, attempts = 0,"
                          " last_error = NULL WHERE src_path = ?", [(now, k) for k in done])
            c.executemany("UPDATE files SET attempts = attempts + 1, last_error = ?"
                          " WHERE src_path = ?", [(err, k) for k, err in failed])

    # ------------------------------------------------------------------- scan --

    def begin_scan(self) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM scan_src")
            c.execute("DELETE FROM dest_files")
            c.execute("DELETE FROM meta WHERE key = 'last_scan'")

    def add_source(self, rows: Sequence[tuple], window: int) -> tuple[int, int]:
        """Stage a batch of source entries (SCAN_COLUMNS order). Returns how many of its
        files and bytes the destination already holds, as far as DST has been scanned."""
        with self._tx() as c:
            last = c.execute("SELECT coalesce(max(rowid), 0) FROM scan_src").fetchone()[0]
            c.executemany(f"INSERT INTO scan_src ({', '.join(SCAN_COLUMNS)})"
                          f" VALUES ({', '.join('?' * len(SCAN_COLUMNS))})", rows)
            return c.execute(
                "SELECT count(*), coalesce(sum(s.size), 0) FROM scan_src s"
                f" JOIN dest_files d ON d.dst_path = s.dst_path"
                f" WHERE s.rowid > :last AND s.kind != 'dir' AND {MATCH}",
                {"last": last, "window": window}).fetchone()

    def add_dest(self, rows: Sequence[tuple], window: int) -> tuple[int, int]:
        """Stage a batch of destination entries (DEST_COLUMNS order). Returns how many
        already-staged source files and bytes they hold. With add_source, every matching
        pair is counted exactly once, by whichever side arrives second."""
        with self._tx() as c:
            last = c.execute("SELECT coalesce(max(rowid), 0) FROM dest_files").fetchone()[0]
            c.executemany(f"INSERT OR REPLACE INTO dest_files ({', '.join(DEST_COLUMNS)})"
                          f" VALUES ({', '.join('?' * len(DEST_COLUMNS))})", rows)
            return c.execute(
                "SELECT count(*), coalesce(sum(s.size), 0) FROM dest_files d"
                f" JOIN scan_src s ON s.dst_path = d.dst_path"
                f" WHERE d.rowid > :last AND s.kind != 'dir' AND {MATCH}",
                {"last": last, "window": window}).fetchone()

    def drop_source(self, path: bytes) -> None:
        """Take back a source row of the scan in progress (a name DST cannot hold)."""
        with self._tx() as c:
            c.execute("DELETE FROM scan_src WHERE src_path = ?", (to_db(path),))

    def finish_scan(self, window: int, order_key: str = "0",
                    scanned: Callable[[bytes], bool] | None = None,
                    meta: dict | None = None) -> Backlog:
        """Make the staged scan the catalog's truth, atomically: rows for entries gone
        from SRC are dropped, new and changed ones become pending (in the backlog's
        order: `order_key`, SQL over the staged row `s`), and a row whose source is
        unchanged keeps its hash. `scanned` (a test of the source path): the scan
        covered only those (--files-from), and rows outside them stay as they are
        (every row the scan did not see is looked at, one at a time: only those to
        drop are held in memory). `meta`: keys written in the same transaction."""
        gone = ("DELETE FROM files WHERE NOT EXISTS"
                " (SELECT 1 FROM scan_src s WHERE s.src_path = files.src_path)")
        with self._tx() as c:
            if scanned is None:
                c.execute(gone)
            else:
                keys = [k for k, in c.execute(gone.replace("DELETE", "SELECT src_path", 1))
                        if scanned(from_db(k))]
                c.executemany("DELETE FROM files WHERE src_path = ?", [(k,) for k in keys])
            c.execute(MERGE.replace("{order_key}", order_key), {"window": window})
            c.execute("DELETE FROM scan_src")
            c.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                          [("last_scan", time.time_ns()), *(meta or {}).items()])
        return self.backlog()

    # ----------------------------------------------------------------- mirror --

    def scan_complete(self) -> bool:
        return self.get_meta("last_scan") is not None

    def iter_extras(self, page: int = 1000) -> Iterator[tuple[bytes, str]]:
        """Destination entries with no source row, deepest first: (dst path, kind)."""
        last = None
        while True:
            cond = "" if last is None else "AND d.dst_path < :last"
            rows = self._query(
                "SELECT d.dst_path, d.kind FROM dest_files d WHERE NOT EXISTS"
                f" (SELECT 1 FROM files f WHERE f.dst_path = d.dst_path) {cond}"
                " ORDER BY d.dst_path DESC LIMIT :page", {"last": last, "page": page})
            if not rows:
                return
            for dst, kind in rows:
                yield from_db(dst), kind
            last = rows[-1][0]

    def dest_totals(self, dst: bytes) -> tuple[tuple[int, int], tuple[int, int]]:
        """What the last scan found under DST, DST's root left out: (entries, bytes)
        in all, and (entries, bytes) of the extras among them (no source row)."""
        (total, total_bytes, extra, extra_bytes), = self._query(
            "SELECT count(*), coalesce(sum(size * (kind != 'dir')), 0),"
            " coalesce(sum(NOT EXISTS (SELECT 1 FROM files f WHERE f.dst_path = d.dst_path)), 0),"
            " coalesce(sum(size * (kind != 'dir') * NOT EXISTS"
            " (SELECT 1 FROM files f WHERE f.dst_path = d.dst_path)), 0)"
            " FROM dest_files d WHERE d.dst_path != ?", (to_db(dst),))
        return (total, total_bytes), (extra, extra_bytes)

    def forget_dest(self, paths: Sequence[bytes], touched_dirs: Sequence[bytes],
                    run_id: int, deleted: int) -> None:
        """Drop destination entries that are gone; count `deleted` of them as ours."""
        with self._tx() as c:
            c.executemany("DELETE FROM dest_files WHERE dst_path = ?",
                          [(to_db(p),) for p in paths])
            _dirs_changed(c, touched_dirs)
            c.execute("UPDATE runs SET files_deleted = files_deleted + ? WHERE id = ?",
                      (deleted, run_id))

    # ------------------------------------------------------------------- runs --

    def start_run(self, mode: str, algo: str, version: str) -> int:
        with self._tx() as c:
            cur = c.execute("INSERT INTO runs (started, mode, hash_algo, version)"
                            " VALUES (?, ?, ?, ?)", (time.time_ns(), mode, algo, version))
            return cur.lastrowid

    def finish_run(self, run_id: int, status: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE runs SET finished = ?, status = ? WHERE id = ?",
                      (time.time_ns(), status, run_id))

    def synced_files(self) -> int:
        """Files and links recorded synced (one count at the start of a copy, for the
        dashboard; never per request)."""
        return self._query("SELECT count(*) FROM files WHERE status = 'synced'"
                           " AND kind != 'dir'")[0][0]

    def bytes_copied_before(self, run_id: int) -> int:
        return self._query("SELECT coalesce(sum(bytes_copied), 0) FROM runs WHERE id != ?",
                           (run_id,))[0][0]

    def run_counts(self, run_id: int) -> dict:
        row = self._query("SELECT files_copied, bytes_copied, files_failed, files_deleted"
                          " FROM runs WHERE id = ?", (run_id,))[0]
        return dict(zip(("files_copied", "bytes_copied", "files_failed", "files_deleted"), row))


def finish_run_at_once(path: str, run_id: int | None, status: str,
                       timeout: float = 0.5) -> bool:
    """Mark a run that has not finished yet as ended, on a connection of its own: for a
    process about to leave at once from a signal handler, where the Catalog's lock may be
    held by the very thread the handler interrupted. Gives up after `timeout` seconds
    if another transaction holds the catalog. True if the row was written."""
    if run_id is None:
        return False
    try:
        conn = sqlite3.connect("file:" + quote(os.fsencode(os.path.abspath(path))), uri=True,
                               isolation_level=None, timeout=timeout)
        try:
            conn.execute("UPDATE runs SET finished = ?, status = ?"
                         " WHERE id = ? AND finished IS NULL",
                         (time.time_ns(), status, run_id))
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return True


def _dirs_changed(c: sqlite3.Connection, dirs: Sequence[bytes]) -> None:
    """Directories whose content changed (a file renamed in, an entry created or
    deleted) have a new mtime: they are pending until their times are applied again."""
    c.executemany("UPDATE files SET status = 'pending'"
                  " WHERE dst_path = ? AND kind = 'dir' AND status = 'synced'",
                  [(to_db(d),) for d in dirs])


def _show(value) -> str:
    if value is None:
        return "?"
    return repr(os.fsdecode(from_db(value)))


def open_readonly(path: str, immutable: bool = False) -> sqlite3.Connection:
    """A read-only connection to an existing fastsync catalog, or a one-line CatalogError
    (fastsync status, manifest: they work while a run holds the catalog). `immutable`:
    for a catalog no process has open; SQLite then creates no -wal or -shm beside it."""
    try:
        with open(path, "rb") as f:
            magic = f.read(16)
    except OSError as e:
        raise CatalogError(f"catalog {path!r} cannot be read: {e.strerror}") from None
    if magic != SQLITE_MAGIC:
        raise CatalogError(f"{path!r} is not a fastsync catalog (not an SQLite file)")
    conn = _connect(path, readonly=True, immutable=immutable)
    try:
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            raise CatalogError(f"{path!r} is an SQLite database but not a fastsync catalog")
    except sqlite3.Error as e:
        conn.close()
        raise CatalogError(f"catalog {path!r} cannot be read ({e})") from None
    except CatalogError:
        conn.close()
        raise
    return conn


def _connect(path: str, readonly: bool = False, immutable: bool = False
             ) -> sqlite3.Connection:
    if os.path.exists(path) and os.path.getsize(path) > 0:
        with open(path, "rb") as f:
            if f.read(16) != SQLITE_MAGIC:
                raise CatalogError(f"{path!r} is not a fastsync catalog (not an SQLite file)")
    uri = "file:" + quote(os.fsencode(os.path.abspath(path))) + (
        "?immutable=1" if immutable else "?mode=ro" if readonly else "")
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                               timeout=30)
    except sqlite3.Error as e:
        raise CatalogError(f"cannot open catalog {path!r}: {e}") from None
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _tune(conn: sqlite3.Connection) -> None:
    try:
        # WAL: the reader thread reads while the finisher commits. NORMAL: a power cut may
        # lose the last commits, which only makes the catalog lag (files re-copied).
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -16384")   # 16 MiB, whatever the file count
    except sqlite3.DatabaseError as e:
        raise CatalogError(f"catalog is not usable ({e})") from None
