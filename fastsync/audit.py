"""The audit log: one JSON object per line, appended, one line per file outcome.

Fields (README, "Audit log"): ts (UTC, ISO 8601 with microseconds), run (catalog run id),
op (run, copy, link, delete, dir, special, scan, outage), status (ok, failed, skipped,
started, interrupted, ...), src, dst, size, hash ("algo:hex"), error. Absent fields are
omitted.

Paths are written as UTF-8. A name that is not valid UTF-8 keeps its raw bytes as
\\udcXX escapes (Python's surrogateescape), which any JSON parser reads back and
os.fsencode turns into the exact original bytes. The characters some readers take for
line breaks besides "\\n" (U+0085, U+2028, U+2029; Python's str.splitlines does) are
written as JSON escapes too, so a record is one line however the log is split.

Lines are collected in memory until flush() (the finisher flushes before it records a
batch in the catalog) or until 64 KiB are waiting, and then go out in one write() of
whole lines: a record is never split between two writes. Only a write cut short (the
disk filled in the middle of it) can leave a torn last line; a later run finds it
(the log does not end with a newline), leaves it as it is, and starts on a new line.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from datetime import datetime, timezone

from .errors import FatalError

BATCH = 1 << 16     # bytes of lines that may wait for a flush

# JSON allows these raw inside strings, but str.splitlines() and some editors break
# lines there. Outside strings json.dumps never produces them.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


_second = (None, "")     # the last second formatted, and its text (one tuple: threads)


def _timestamp() -> str:
    """UTC now, ISO 8601 with microseconds and Z: one formatting per second, not per
    line (a copy of small files writes thousands of lines a second)."""
    global _second
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    known, text = _second
    if known != seconds:
        text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (seconds, text)
    return f"{text}.{micros:06d}Z"


def _text(value):
    return os.fsdecode(value) if isinstance(value, bytes) else value


# One encoder for every line: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class AuditLog:
    def __init__(self, path: str):
        """Open (or create) the log for appending; OSError if it cannot be opened."""
        self.path = path
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._size = 0
        self.run_id: int | None = None
        flags = os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            self._fd = os.open(path, os.O_RDWR | flags, 0o666)
        except PermissionError:     # a log we may append to but not read: cannot tell
            self._fd = os.open(path, os.O_WRONLY | flags, 0o666)
            torn = False
        else:
            try:
                torn = _torn(self._fd)
            except OSError:
                os.close(self._fd)
                raise
        if torn:
            # Never truncate (the log is the trail of earlier runs): end the torn line
            # so that ours start whole. Written with the first record.
            self._pending.append(b"\n")
            self._size = 1

    def event(self, op: str, status: str, **fields) -> None:
        record = {"ts": _timestamp(), "run": self.run_id, "op": op, "status": status}
        for key, value in fields.items():
            if value is not None:
                record[key] = _text(value)
        line = _ENCODER.encode(record)
        if not line.isascii():
            line = line.translate(_LINE_BREAKS)
        # backslashreplace turns a lone surrogate into the JSON escape \udcXX
        data = (line + "\n").encode("utf-8", "backslashreplace")
        with self._lock:
            self._pending.append(data)
            self._size += len(data)
            if self._size >= BATCH:
                self._write_out()

    def flush(self) -> None:
        with self._lock:
            self._write_out()

    def _write_out(self) -> None:
        """Write the waiting lines in one write() (more only if the kernel takes part of
        it, which a regular file does only when it is full). Called holding the lock."""
        if not self._pending:
            return
        data = memoryview(b"".join(self._pending))
        self._pending.clear()
        self._size = 0
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError as e:
            # Keep what did not go out: if room is made, a later flush completes the
            # line that was cut rather than leaving it torn.
            self._pending.append(bytes(data))
            self._size = len(data)
            raise self._failed(e) from None

    def _failed(self, error: OSError) -> FatalError:
        # An audit trail with holes is worse than a stopped run: stop, cleanly.
        return FatalError(f"cannot write the audit log {self.path!r}: {error.strerror}")

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            try:
                self._write_out()
            except FatalError:
                pass   # a failed write was reported when it happened
            finally:
                try:
                    os.close(self._fd)
                except OSError:
                    pass
                self._fd = -1


def _torn(fd: int) -> bool:
    """Does this regular file end in the middle of a line?"""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return False
    return os.pread(fd, 1, st.st_size - 1) != b"\n"
