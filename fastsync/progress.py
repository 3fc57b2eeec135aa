"""What the operator sees on stderr while a run goes on.

On a terminal: a two-line status refreshed four times a second. Otherwise (cron, CI,
a pipe): one plain line every 10 seconds with a timestamp and no control characters.
`-q` silences progress, notes and the summary; errors still print.
Log records (warnings, -v file lines) are printed above the status, never through it.
"""

from __future__ import annotations

import collections
import json
import logging
import shutil
import sys
import threading
import time
from datetime import datetime, timezone

from .config import format_size


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--"
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{s:02d}s"
    hours, m = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{m:02d}m"
    days, h = divmod(hours, 24)
    return f"{days}d{h:02d}h"


def format_rate(bps: float | None) -> str:
    return "--" if bps is None else format_size(bps) + "/s"


class RateMeter:
    """Bytes per second over a sliding window of (time, total) samples."""

    def __init__(self, window: float):
        self.window = window
        self._samples: collections.deque = collections.deque()

    def add(self, now: float, total: int) -> None:
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()

    def rate(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else None


class JsonLines:
    """`--progress json`: one JSON object per line on stdout every `interval` seconds
    (and at each change of phase), for scripts; the fields are in the README."""

    def __init__(self, stream, interval: float):
        self.stream, self.interval = stream, interval
        self._next = 0.0
        self._phase: str | None = None

    def emit(self, phase: str, fields: dict, now: float, force: bool = False) -> None:
        if not force and phase == self._phase and now < self._next:
            return
        self._phase, self._next = phase, now + self.interval
        record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds")
                  .replace("+00:00", "Z"), "phase": phase, **fields}
        try:
            self.stream.write(json.dumps(record, separators=(",", ":")) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass   # a reader that went away must not stop a copy


class Console:
    def __init__(self, stream=None, quiet: bool = False, verbose: bool = False,
                 tty: bool | None = None, interval: float | None = None,
                 json_lines: JsonLines | None = None):
        self.json = json_lines
        self.observer = None        # an observe.RunState that hears every change (--http)
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.verbose = verbose
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval if interval is not None else (0.25 if self.tty else 10.0)
        self._shown = 0            # status lines currently on screen (tty)
        # A terminal shows status at once; a log gets its first line after an interval.
        self._next = 0.0 if self.tty else time.monotonic() + self.interval
        self._lock = threading.RLock()
        self._bandwidth = RateMeter(3.0)
        self._average = RateMeter(30.0)
        self._waiting: dict[str, str] = {}

    # ------------------------------------------------------------------ output --

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass   # a closed or broken stderr must not stop a copy

    def clear(self) -> None:
        with self._lock:
            if self._shown:
                self._write("\r\x1b[2K" + "\x1b[1A\x1b[2K" * (self._shown - 1))
                self._shown = 0

    def note(self, text: str) -> None:
        """A message for the operator (mode, summary); silenced by -q."""
        if self.quiet:
            return
        with self._lock:
            self.clear()
            self._write(text + "\n")

    def error(self, text: str) -> None:
        with self._lock:
            self.clear()
            self._write(text + "\n")

    def _status(self, lines: list[str], now: float) -> None:
        if self.quiet or now < self._next:
            return
        self._next = now + self.interval
        with self._lock:
            if self.tty:
                width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
                self.clear()
                self._write("\n".join(line[:width] for line in lines))
                self._shown = len(lines)
            else:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                self._write(f"{stamp} " + "; ".join(line.strip() for line in lines) + "\n")

    def waiting(self, side: str, text: str | None) -> None:
        """What the run waits for on one side (an unreachable share), None once back."""
        if self.observer is not None:
            self.observer.on_waiting(side, text)
        if text is None:
            self._waiting.pop(side, None)
        else:
            self._waiting[side] = text
            self._next = 0.0     # show it now, not at the next interval

    def _waits(self, stats=None) -> str | None:
        texts = {**self._waiting, **(getattr(stats, "waiting", None) or {})}
        return "; ".join(texts[k] for k in sorted(texts)) or None

    # ---------------------------------------------------------------- phases --

    def phase(self, name: str, **fields) -> None:
        """A phase begins (mirroring, directories) or the run ends (done)."""
        if self.observer is not None:
            self.observer.on_phase(name, fields)
        if self.json is not None:
            self.json.emit(name, fields, time.monotonic(), force=True)

    def scan(self, stats, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.observer is not None:
            self.observer.on_scan(stats)
        if self.json is not None:
            self.json.emit("waiting" if self._waits() else "scanning", {
                "src_entries": stats.src_entries, "src_bytes": stats.src_bytes,
                "dst_entries": stats.dst_entries, "dst_bytes": stats.dst_bytes,
                "pending_files": stats.pending_files, "pending_bytes": stats.pending_bytes,
                "errors": stats.errors, "waiting": self._waits()}, now)
        src = "done" if stats.src_done else "scanning"
        dst = "done" if stats.dst_done else "scanning"
        self._status([
            f"scan  SRC {stats.src_entries:,} entries, {format_size(stats.src_bytes)} ({src})"
            f"  DST {stats.dst_entries:,} entries, {format_size(stats.dst_bytes)} ({dst})",
            f"      pending so far {stats.pending_files:,} files, "
            f"{format_size(stats.pending_bytes)}"
            + (f"  errors {stats.errors:,}" if stats.errors else ""),
        ] + ([f"      {self._waits()}"] if self._waits() else []), now)

    def transfer(self, stats, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        written = stats.bytes_written
        self._bandwidth.add(now, written)
        self._average.add(now, written)
        rate, average = self._bandwidth.rate(), self._average.rate()
        left = max(stats.bytes_total - written, 0)
        eta = left / average if average else None
        pct = 100.0 * written / stats.bytes_total if stats.bytes_total else 100.0
        head = (f"copy  {format_size(written)} of {format_size(stats.bytes_total)} "
                f"({pct:.1f}%), {stats.files_done:,} of {stats.files_total:,} files, "
                f"{format_rate(rate)}, ETA {format_duration(eta)}")
        totals = (f"      session {format_size(written)}, overall "
                  f"{format_size(stats.bytes_before + written)}"
                  + (f", failed {stats.files_failed:,}" if stats.files_failed else ""))
        current = stats.current
        waiting = self._waits(stats)
        if self.observer is not None:
            self.observer.on_transfer(stats)
        if self.json is not None:
            self._json_transfer(stats, now, rate, eta, waiting)
        if waiting:
            now_line = f"      {waiting}"
        elif current is None:
            now_line = "      now: waiting for data"
        else:
            name, size, done = current
            file_eta = (size - done) / rate if rate else None
            share = f"{100.0 * done / size:.0f}% of {format_size(size)}" if size else "empty"
            now_line = f"      now: {name}: {share}, ETA {format_duration(file_eta)}"
        self._status([head, now_line, totals], now)


    def _json_transfer(self, stats, now: float, rate, eta, waiting) -> None:
        self.json.emit("waiting" if waiting else "copying", {
            "files_done": stats.files_done, "files_total": stats.files_total,
            "files_failed": stats.files_failed, "bytes_done": stats.bytes_written,
            "bytes_total": stats.bytes_total, "bytes_read": stats.bytes_read,
            "rate_bytes_per_second": None if rate is None else round(rate),
            "eta_seconds": None if eta is None else round(eta, 1),
            "current": stats.files_in_flight(),
            "waiting": waiting}, now)


class ConsoleHandler(logging.Handler):
    """Prints log records above the status lines (and keeps -q quiet)."""

    def __init__(self, console: Console):
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.error(self.format(record))
        except Exception:   # logging must never take the run down
            self.handleError(record)
