"""fastsync -n / --dry-run: what a run would do, with nothing changed.

The dry run makes the decisions of a real run (resume the backlog or scan, with the
same filters, --files-from, priorities and order) on a private copy of the catalog,
taken with SQLite's backup API into a temporary directory ($TMPDIR) and deleted at the
end: the catalog itself is only read, so a resumable backlog stays resumable, and a
dry run may even look while a real run holds the catalog. DST is only read: no lock,
no probe, no temporary, no directory, no time set, and no stale temporary of a killed
run removed. The audit log is not opened.

What DST can hold (mtime granularity, case folding, names it changes, symlinks) is
what the last real run probed and recorded in the catalog; before any real run, DST
is taken to keep everything exactly (a real run probes it).

It reports the files and bytes a run would copy (in the order it would copy them),
the directories it would create, what --delete-extras would delete (live-checked on
SRC as for real, with --max-delete and the guard applied), and the entries that would
fail before a byte moves: kind changes, symlinks DST cannot hold, special files,
reserved and colliding names, scan errors. The first 10 of each on the console, all
of them with -v; with --progress json, one JSON line per entry. Exit status 0.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from typing import Iterator

from . import __version__
from .backlog import ordered
from .catalog import Catalog, from_db, open_readonly, to_db
from .config import Config, format_size
from .errors import CatalogError, UsageError
from .locks import catalog_in_use
from .mirror import mirror
from .probe import RISKY, Traits
from .progress import Console
from .retry import Root
from .run import Run

SHOWN = 10          # entries of each kind listed without -v


def dry_run(config: Config, console: Console, stop) -> int:
    with tempfile.TemporaryDirectory(prefix="fastsync-dry-run-") as tmp:
        copy = os.path.join(tmp, "catalog.db")
        new_catalog = not os.path.exists(config.db) or os.path.getsize(config.db) == 0
        if not new_catalog:
            _snapshot(config, copy)
        catalog = PlanCatalog.open(copy, config.src, config.dst, __version__)
        plan = None
        try:
            audit = NoAudit()
            plan = DryRun(config, console, stop, catalog, audit, recorded(catalog),
                          new_catalog)
            audit.tell = plan.scanned
            return plan.execute()
        finally:
            if plan is not None:
                plan.dest.close()
            catalog.close()


def _snapshot(config: Config, copy: str) -> None:
    """The catalog as it is now, copied to `copy` without writing the catalog or any
    file beside it:
    - a live run holds it: SQLite's backup, on a read-only connection that reads the
      run's -wal as any reader does (the backup takes a consistent state);
    - a killed run left a -wal: the catalog and its -wal are copied as files, and
      SQLite replays the -wal in the copy only (the -shm beside the catalog is stale,
      and a connection to the catalog itself would rebuild it);
    - otherwise: the backup, reading the catalog as immutable (no -wal, no -shm made)."""
    db, where = config.db, os.path.dirname(copy)
    in_use = catalog_in_use(db)
    if not in_use and os.path.exists(db + "-wal"):
        _check_room(os.path.getsize(db) + os.path.getsize(db + "-wal"), db, where)
        try:
            shutil.copyfile(db, copy)
            shutil.copyfile(db + "-wal", copy + "-wal")
        except OSError as e:
            raise CatalogError(f"catalog {db!r} cannot be read: {e.strerror}") from None
        source = open_readonly(copy)
    else:
        source = open_readonly(db, immutable=not in_use)
    try:
        _check_pair(source, config)
        if not os.path.exists(copy):
            pages, size = (source.execute(f"PRAGMA {p}").fetchone()[0]
                           for p in ("page_count", "page_size"))
            _check_room(pages * size, db, where)
            target = sqlite3.connect(copy)
            try:
                source.backup(target)
            finally:
                target.close()
    except sqlite3.Error as e:
        raise CatalogError(f"catalog {db!r} cannot be read ({e})") from None
    finally:
        source.close()


def _check_pair(conn: sqlite3.Connection, config: Config) -> None:
    """The catalog is for this SRC and DST (told with its own path, not the copy's)."""
    meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('src', 'dst')"))
    if (meta.get("src"), meta.get("dst")) != (to_db(config.src), to_db(config.dst)):
        show = [repr(os.fsdecode(from_db(v))) if v is not None else "?"
                for v in (meta.get("src"), meta.get("dst"))]
        raise CatalogError(f"catalog {config.db!r} belongs to SRC={show[0]} DST={show[1]};"
                           f" use another --db for {os.fsdecode(config.src)!r} -> "
                           f"{os.fsdecode(config.dst)!r}")


def _check_room(need: int, db: str, where: str) -> None:
    """The scratch copy (`need` bytes, and what the scan adds) must fit in $TMPDIR."""
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    if need * 2 > free:
        raise UsageError(f"-n works on a scratch copy of the catalog {db!r} "
                         f"({format_size(need)}), and {os.path.dirname(where)!r} has "
                         f"{format_size(free)} free; set TMPDIR to a place with room "
                         f"for twice that")


def recorded(catalog: Catalog) -> Traits:
    """What the last real run found DST can hold (run.py records it)."""
    changed = catalog.get_meta("dst_changes_names") or ""
    links = catalog.get_meta("dst_symlinks", "yes")
    return Traits(window=int(catalog.get_meta("dst_mtime_granularity_ns", 1)),
                  folds_case=bool(int(catalog.get_meta("dst_folds_case", 0) or 0)),
                  changed=tuple(p for p in RISKY if p in changed),
                  links=None if links == "yes" else links)


def _count(n: int, noun: str) -> str:
    if n == 1:
        return f"1 {noun}"
    return f"{n:,} " + (noun[:-1] + "ies" if noun.endswith("y") else noun + "s")


class NoAudit:
    """The audit log a dry run does not write. What the scan would audit as not copied
    (special files, reserved names) or failed (scan errors) is told to `tell` instead."""
    run_id = None
    tell = None

    def event(self, op: str, status: str, **fields) -> None:
        if self.tell is not None and op in ("special", "scan"):
            self.tell(op, fields["src"], fields.get("error", ""))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class PlanCatalog(Catalog):
    """The queries of a dry run's report, on its copy of the catalog."""

    def dest_kind(self, dst: bytes) -> str | None:
        rows = self._query("SELECT kind FROM dest_files WHERE dst_path = ?",
                           (to_db(dst),))
        return rows[0][0] if rows else None

    def dirs_to_create(self) -> Iterator[tuple[bytes, bytes]]:
        """(src, dst) of pending directories DST did not have when scanned."""
        for key, dst in self._query(
                "SELECT f.src_path, f.dst_path FROM files f WHERE f.status = 'pending'"
                " AND f.kind = 'dir' AND NOT EXISTS (SELECT 1 FROM dest_files d"
                " WHERE d.dst_path = f.dst_path) ORDER BY f.src_path"):
            yield from_db(key), from_db(dst)

    def clashes(self) -> Iterator[tuple[bytes, bytes, str, str]]:
        """(src, dst, kind, DST's kind) of pending entries DST has another kind of entry
        for: a directory where SRC has a file or a link, or the other way round."""
        for key, dst, kind, found in self._query(
                "SELECT f.src_path, f.dst_path, f.kind, d.kind FROM files f JOIN dest_files d"
                " ON d.dst_path = f.dst_path WHERE f.status = 'pending'"
                " AND ((f.kind = 'dir') != (d.kind = 'dir') OR d.kind = 'special')"
                " ORDER BY f.src_path"):
            yield from_db(key), from_db(dst), kind, found


class DryRun(Run):
    """A Run that decides and tells, and does nothing at DST."""

    dry = True

    def __init__(self, *args):
        super().__init__(*args)
        # the retrier's outage check must not write its probe at DST
        self.roots["dst"] = Root("DST", self.config.dst)
        self.shown = {}
        self.would_fail = 0

    def left_at_once(self) -> None:
        pass        # nothing of the real catalog or log to mark

    def phases(self) -> int:
        config = self.config
        self.console.note("fastsync: dry run: nothing is changed (not DST, not the "
                          "catalog, not the audit log)")
        if self.mode == "scan":
            if not self.scan():
                return self.finish("interrupted")
        else:
            self.console.note(f"fastsync: a real run would resume the backlog "
                              f"({self.backlog.files:,} files pending; no scan)")
        copy = self.tell_copies()
        dirs = self.tell_dirs()
        self.tell_failures()
        deleted = None
        if config.delete_extras:
            deleted = (self.tell_deletions() if self.catalog.scan_complete() else
                       "delete nothing (no complete scan of DST yet)")
        totals = self.totals
        parts = [f"copy {_count(copy[0], 'file')} ({format_size(copy[1])})",
                 f"create {_count(dirs, 'directory')}"]
        if deleted is not None:
            parts.append(deleted)
        parts.append(f"{self.would_fail + totals.scan_errors:,} would fail")
        if totals.specials:
            parts.append(f"{totals.specials:,} not copied (special files, reserved names)")
        self.console.note("fastsync: dry run: a real run would " + ", ".join(parts)
                          + "; nothing was changed")
        self.console.phase("done", status="dry-run", files_to_copy=copy[0],
                           bytes_to_copy=copy[1], dirs_to_create=dirs,
                           would_fail=self.would_fail + totals.scan_errors)
        return 0

    def finish(self, status: str) -> int:
        self.summary_line = status
        return self.stop.exit_code

    # ---------------------------------------------------------------- listing --

    def scanned(self, op: str, path: bytes, error: str) -> None:
        """A source entry the scan does not record: a special file or reserved name
        (`skip`: listed here; a real run audits it), or a scan error (`fail`: the scan
        itself told the console; here it is a JSON line)."""
        if op == "special":
            self.item("skip", path, f"not copied ({error}):", error=error)
        else:
            self.item("fail", path, "", show=False, error=error)

    def item(self, action: str, path: bytes, text: str, show: bool = True,
             **fields) -> None:
        """One entry of the report: on the console (the first SHOWN of each action,
        all with -v), and as a JSON line with --progress json."""
        rel = os.fsdecode(path[len(self.config.src) + 1:]) or "."
        console = self.console
        if console.json is not None:
            console.json.emit("dry-run", {"action": action, "path": rel, **fields}, 0,
                              force=True)
        if not show:
            return
        count = self.shown.get(action, 0)
        self.shown[action] = count + 1
        if count < SHOWN or console.verbose:
            console.note(f"  {text} {rel}")
        elif count == SHOWN:
            console.note("  ... (-v lists them all)")

    def tell_copies(self) -> tuple[int, int]:
        files = nbytes = 0
        if self.backlog.files:
            self.console.note(f"fastsync: would copy {_count(self.backlog.files, 'file')} "
                              f"({format_size(self.backlog.bytes)}), in this order:")
        links_refused = self.traits.links
        for row in ordered(self.catalog, self.selection, self.config.src):
            if row.kind == "symlink" and links_refused is not None:
                self.fail(row.src, f"DST cannot hold symbolic links ({links_refused})")
                continue
            files, nbytes = files + 1, nbytes + row.size
            how = "changed" if self.catalog.dest_kind(row.dst) else "new"
            self.item("copy", row.src, f"{how:8} {format_size(row.size):>10}",
                      bytes=row.size, reason=how)
        return files, nbytes

    def tell_dirs(self) -> int:
        # looked at live too: a resumed backlog's may have been made since the scan
        dirs = [src for src, dst in self.catalog.dirs_to_create()
                if (self.selected is None or self.selected(src))
                and not os.path.lexists(dst)]
        if dirs:
            self.console.note(f"fastsync: would create {_count(len(dirs), 'directory')}:")
        for src in dirs:
            self.item("create", src, "mkdir   ")
        return len(dirs)

    def tell_failures(self) -> None:
        replace = self.config.delete_extras
        for src, dst, kind, found in self.catalog.clashes():
            if self.selected is not None and not self.selected(src):
                continue
            clash = f"DST has a {found} where SRC has a {kind}"
            if found == "special" or not replace:
                self.fail(src, clash + ("" if found == "special" else
                                        "; --delete-extras would replace it"))
                continue
            problem, count = self.dest.removal_problem(dst, found)
            if problem is not None:
                self.fail(src, f"{clash}; {problem}")
            else:
                self.dest.removals += count
                self.item("replace", src, f"replace ({found} at DST by a {kind}, "
                                          f"deleting {_count(count, 'entry')})",
                          deletes=count)

    def fail(self, src: bytes, why: str) -> None:
        self.would_fail += 1
        self.item("fail", src, f"would fail: {why}:", error=why)

    def tell_deletions(self) -> str:
        config = self.config
        dst = config.dst
        result = mirror(self.catalog, config.src, dst, self.identity, self.stop.event,
                        self.audit, self.run_id, self.catalog.src_mounts(), self.traits,
                        max_delete=None if config.max_delete is None else
                        max(0, config.max_delete - self.dest.removals), dry=True,
                        would_delete=lambda path, kind: self.item(
                            "delete", config.src + path[len(dst):], f"delete {kind:6}",
                            kind=kind))
        extra, extra_bytes, total, total_bytes = result.planned
        told = (f"delete {_count(result.deleted, 'entry')} with --delete-extras (the catalog "
                f"lists {extra:,} extras of {total:,} entries, {format_size(extra_bytes)}"
                f" of {format_size(total_bytes)})")
        if result.refused:
            self.console.note(f"fastsync: a real run would refuse: {result.refused}")
            told = f"refuse to delete ({result.refused})"
        if result.skipped_count:
            told += f", and keep {result.skipped_count:,} more over --max-delete"
        return told
