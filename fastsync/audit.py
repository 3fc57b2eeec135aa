"""The audit log: one JSON object per line, appended, one line per file outcome.

Fields (README, "Audit log"): ts (UTC, ISO 8601 with microseconds), run (catalog run id),
op (run, copy, link, delete, dir, special, scan), status (ok, failed, skipped, started,
interrupted), src, dst, size, hash ("algo:hex"), error. Absent fields are omitted.

Paths are written as UTF-8. A name that is not valid UTF-8 keeps its raw bytes as
\\udcXX escapes (Python's surrogateescape), which any JSON parser reads back and
os.fsencode turns into the exact original bytes.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone

from .errors import FatalError


def _text(value):
    return os.fsdecode(value) if isinstance(value, bytes) else value


class AuditLog:
    def __init__(self, path: str):
        self.path = path
        # errors="backslashreplace" turns a lone surrogate into the JSON escape \udcXX
        self._file = open(path, "a", encoding="utf-8", errors="backslashreplace",
                          buffering=1 << 16)
        self._lock = threading.Lock()
        self.run_id: int | None = None

    def event(self, op: str, status: str, **fields) -> None:
        record = {"ts": datetime.now(timezone.utc).isoformat(timespec="microseconds")
                  .replace("+00:00", "Z"), "run": self.run_id, "op": op, "status": status}
        for key, value in fields.items():
            if value is not None:
                record[key] = _text(value)
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            try:
                self._file.write(line + "\n")
            except OSError as e:
                raise self._failed(e) from None

    def flush(self) -> None:
        with self._lock:
            try:
                self._file.flush()
            except OSError as e:
                raise self._failed(e) from None

    def _failed(self, error: OSError) -> FatalError:
        # An audit trail with holes is worse than a stopped run: stop, cleanly.
        return FatalError(f"cannot write the audit log {self.path!r}: {error.strerror}")

    def close(self) -> None:
        with self._lock:
            try:
                self._file.close()
            except OSError:
                pass   # a failed flush was reported when it happened
