"""The catalog as `fastsync verify` uses it: the rows it can check, page by page, and
what it found. A Catalog with these few queries more (catalog.py keeps the copy's)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from .catalog import FOUND_DAMAGED, Catalog, _connect, from_db
from .errors import CatalogError
from .locks import CatalogLock


@dataclass(slots=True)
class Checkable:
    """One synced row as `fastsync verify` needs it."""
    key: str | bytes    # src_path exactly as stored, for updates
    src: bytes
    dst: bytes
    kind: str           # file or symlink
    size: int
    hash: str | None
    algo: str | None
    link_target: bytes | None


# What verify can check: files fastsync copied (a file found in sync by the scan has no
# hash to compare with) and symlinks (their target). Directories are not checked.
CHECKABLE = ("status = 'synced' AND ((kind = 'file' AND hash IS NOT NULL)"
             " OR kind = 'symlink')")
# Not read back intact since it was last synced, nor since the current pass began
# (:since). A NULL anywhere means "not proven": the row is checked.
UNVERIFIED = ("coalesce(verified_at >= coalesce(synced_at, 0) AND verified_at >= :since, 0)"
              " = 0")


class VerifyCatalog(Catalog):
    @classmethod
    def open_existing(cls, path: str) -> "VerifyCatalog":
        """Open a catalog that must exist already, for the SRC and DST it records,
        locked as a run locks it (`fastsync verify`); never creates one: SQLite would
        make an empty file of a mistyped --db."""
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            raise CatalogError(f"catalog {path!r} does not exist (or is empty); give the "
                               f"--db of an earlier run")
        lock = CatalogLock(path)
        try:
            catalog = cls(path, _connect(path), lock)
            lock.hold_catalog()
            catalog._prepare(None, None, "")
        except BaseException:
            lock.close()
            raise
        return catalog

    def roots(self) -> tuple[bytes, bytes]:
        """(SRC, DST) as this catalog records them."""
        return from_db(self.get_meta("src")), from_db(self.get_meta("dst"))

    def verify_counts(self, since: int | None) -> tuple[int, int]:
        """(rows, file bytes) verify would check: all checkable rows if `since` is
        None, else those UNVERIFIED since `since` (ns)."""
        where = CHECKABLE + ("" if since is None else f" AND {UNVERIFIED}")
        return self._query("SELECT count(*), coalesce(sum(size * (kind = 'file')), 0)"
                           f" FROM files WHERE {where}", {"since": since})[0]

    def verify_page(self, after: str | bytes | None, since: int | None,
                    page: int = 500) -> list[Checkable]:
        """The next rows to check in path order, after key `after` (keyset paging:
        rows marked meanwhile drop out, none is seen twice)."""
        where = CHECKABLE + ("" if since is None else f" AND {UNVERIFIED}")
        rows = self._query(
            "SELECT src_path, dst_path, kind, size, hash, hash_algo, link_target FROM files"
            f" WHERE {where}" + ("" if after is None else " AND src_path > :after")
            + " ORDER BY src_path LIMIT :page", {"since": since, "after": after, "page": page})
        return [Checkable(key, from_db(key), from_db(dst), kind, size, digest, algo,
                          None if target is None else from_db(target))
                for key, dst, kind, size, digest, algo, target in rows]

    def unhashed(self) -> int:
        """Synced files without a hash (found in sync before fastsync copied them)."""
        return self._query("SELECT count(*) FROM files WHERE status = 'synced'"
                           " AND kind = 'file' AND hash IS NULL")[0][0]

    def mark_verified(self, keys: Sequence[str | bytes], when: int) -> None:
        with self._tx() as c:
            c.executemany("UPDATE files SET verified_at = ? WHERE src_path = ?"
                          " AND status = 'synced'", [(when, k) for k in keys])

    def mark_bad(self, key: str | bytes, error: str) -> None:
        """DST does not hold what the row says: pending again, so the next run copies
        it (attempts stays 0: a fresh backlog row, which the next run resumes). The
        hash stays: it still describes the source as it was copied."""
        with self._tx() as c:
            # verified_at = FOUND_DAMAGED marks it for MERGE (catalog.py): a rescan must not
            # take the damaged copy for in sync; a later failure rewrites last_error only
            c.execute("UPDATE files SET status = 'pending', last_error = ?, verified_at = ?"
                      " WHERE src_path = ?", (error, FOUND_DAMAGED, key))
