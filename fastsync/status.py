"""fastsync status: what a catalog says, read-only, also while a run holds it.

Usage:
  fastsync status [options]

Options:
  --db PATH        Catalog file [default: fastsync.db]
  --json           One JSON object on stdout instead of text
  --failed         Also list the entries whose last attempt failed, with their errors
  --limit N        How many failed entries to list [default: 20]
  -h, --help       Show this help

Counts and bytes by status and kind, the entries that failed, every run with its rate,
and an ETA for what is pending at the last run's rate. The catalog is opened read-only
(SQLite's WAL lets it be read while a run writes it); nothing is locked or changed.
Exit status: 0, or 2 if the catalog is missing or not a fastsync catalog.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
from datetime import datetime, timezone

from .catalog import from_db, open_readonly
from .config import format_size
from .errors import CatalogError, UsageError
from .progress import format_duration, format_rate


def main(args: dict, console) -> int:
    path = args["--db"]
    if not re.fullmatch(r"\s*[0-9]{1,9}\s*", args["--limit"]):
        raise UsageError(f"--limit {args['--limit']!r} is not a whole number")
    conn = open_readonly(path)
    try:
        report = gather(conn, int(args["--limit"]) if args["--failed"] else 0)
    except sqlite3.Error as e:
        raise CatalogError(f"catalog {path!r} cannot be read ({e})") from None
    finally:
        conn.close()
    report["catalog"] = os.path.abspath(path)
    if args["--json"]:
        sys.stdout.write(json.dumps(report, indent=1) + "\n")
    else:
        sys.stdout.write("\n".join(as_text(report)) + "\n")
    return 0


def gather(conn: sqlite3.Connection, failed_limit: int) -> dict:
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    counts: dict = {}
    for status, kind, n, size in conn.execute(
            "SELECT status, kind, count(*), coalesce(sum(size), 0) FROM files"
            " GROUP BY status, kind ORDER BY status, kind"):
        counts.setdefault(status, {})[kind] = {"count": n, "bytes": size if kind != "dir" else 0}
    failing = conn.execute("SELECT count(*) FROM files WHERE status = 'pending'"
                           " AND attempts > 0").fetchone()[0]
    report = {"src": _text(meta.get("src")), "dst": _text(meta.get("dst")),
              "files": counts, "failing": failing, "runs": _runs(conn)}
    if failed_limit:
        report["failed"] = [
            {"src": _text(src), "kind": kind, "attempts": attempts, "error": error}
            for src, kind, attempts, error in conn.execute(
                "SELECT src_path, kind, attempts, last_error FROM files"
                " WHERE status = 'pending' AND attempts > 0"
                " ORDER BY attempts DESC, src_path LIMIT ?", (failed_limit,))]
    pending = sum(v["bytes"] for v in counts.get("pending", {}).values())
    report["pending_bytes"] = pending
    report["eta_seconds"] = _eta(report["runs"], pending)
    return report


def _runs(conn: sqlite3.Connection) -> list[dict]:
    runs = []
    for (run_id, started, finished, mode, status, copied, nbytes, failed,
         deleted) in conn.execute(
            "SELECT id, started, finished, mode, status, files_copied, bytes_copied,"
            " files_failed, files_deleted FROM runs ORDER BY id"):
        seconds = (finished - started) / 1e9 if finished else None
        runs.append({"id": run_id, "started": _iso(started), "finished": _iso(finished),
                     "mode": mode, "status": status or "running", "files_copied": copied,
                     "bytes_copied": nbytes, "files_failed": failed,
                     "files_deleted": deleted, "seconds": seconds,
                     "bytes_per_second": nbytes / seconds if seconds else None})
    return runs


def _eta(runs: list[dict], pending: int) -> float | None:
    """Pending bytes at the rate of the last finished run that copied something."""
    for run in reversed(runs):
        if run["bytes_per_second"]:
            return pending / run["bytes_per_second"]
    return None


def _text(value) -> str | None:
    """A path as the console shows it: bytes that are not UTF-8 as surrogate escapes."""
    return None if value is None else os.fsdecode(from_db(value))


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat(
        timespec="seconds").replace("+00:00", "Z")


def as_text(report: dict) -> list[str]:
    lines = [f"catalog {report['catalog']}: {report['src']} -> {report['dst']}"]
    for status in ("synced", "pending"):
        kinds = report["files"].get(status, {})
        parts = [f"{v['count']:,} {kind}s" + (f" ({format_size(v['bytes'])})"
                                              if kind != "dir" else "")
                 for kind, v in sorted(kinds.items())]
        lines.append(f"{status}: " + (", ".join(parts) if parts else "nothing"))
    if report["failing"]:
        lines.append(f"failed at their last attempt: {report['failing']:,} (pending; "
                     f"--failed lists them)")
    for entry in report.get("failed", []):
        lines.append(f"  {entry['src']}: {entry['error']} (attempts {entry['attempts']})")
    eta = report["eta_seconds"]
    if report["pending_bytes"]:
        lines.append(f"ETA {format_duration(eta)} at the last run's rate" if eta is not None
                     else "ETA unknown: no run has copied anything yet")
    lines.append("runs:")
    for run in report["runs"]:
        rate = format_rate(run["bytes_per_second"]) if run["bytes_per_second"] else "--"
        lines.append(f"  #{run['id']} {run['started']} {run['mode']} {run['status']}: "
                     f"copied {run['files_copied']:,} ({format_size(run['bytes_copied'])}),"
                     f" failed {run['files_failed']:,}, deleted {run['files_deleted']:,},"
                     f" {rate}")
    return lines
