"""What a running copy is doing, kept in memory for the HTTP server (web.py).

The console already hears of every change (progress.Console: scan, transfer, waiting,
phase); it passes each one on to a RunState, which keeps the latest counters, the time
work last moved, and a rate history of the last hour (one sample a second, 3,600
at most). The server only reads it: a request never counts the catalog and never
takes a lock the copy holds.
"""

from __future__ import annotations

import collections
import signal
import threading
import time
from datetime import datetime, timezone

HISTORY = 3600          # seconds of rate history kept for the dashboard's chart


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat(
        timespec="seconds").replace("+00:00", "Z")


class RunState:
    def __init__(self, src: str, dst: str, bwlimit: int):
        self.src, self.dst, self.bwlimit = src, dst, bwlimit
        self.phase = "starting"
        self.run_id: int | None = None
        self.started = time.time()
        self.last_progress = time.time()       # wall time work last moved
        self.scan = None                       # scan.ScanStats of the scan going on
        self.transfer = None                   # pipeline.TransferStats of the copy
        self.waiting: dict[str, str] = {}
        self.result: dict | None = None        # the summary once done
        self.paused = False                    # the copy held by the API
        self.fifo = None                       # the copy's block queue, while it runs
        self.synced_before: int | None = None  # files synced when the copy began
        self.history: collections.deque = collections.deque(maxlen=HISTORY)
        self._lock = threading.Lock()          # only the history: a deque of tuples
        self._moved = (0, 0)                   # (bytes read, written) last seen
        self._seen = (0, 0, 0)                 # the scan's counts last seen

    # ----------------------------------------------------- fed by the console --

    def on_phase(self, phase: str, fields: dict) -> None:
        self.phase = phase
        self.run_id = fields.get("run", self.run_id)
        if phase == "done":
            self.result = fields

    def on_scan(self, stats) -> None:
        seen = (stats.src_entries, stats.dst_entries, stats.errors)
        if self.scan is not stats or seen != self._seen:     # moved: not just reported
            self._seen, self.last_progress = seen, time.time()
        self.scan = stats
        self.phase = "waiting" if self.waiting else "scanning"

    def on_transfer(self, stats) -> None:
        self.transfer = stats
        self.phase = ("waiting" if self.waiting or stats.waiting else
                      "paused" if self.paused else "copying")
        moved = (stats.bytes_read, stats.bytes_written)
        now = time.time()
        if moved != self._moved:
            self._moved, self.last_progress = moved, now
        with self._lock:
            if not self.history or now - self.history[-1][0] >= 1.0:
                self.history.append((now, *moved))

    def on_waiting(self, side: str, text: str | None) -> None:
        if text is None:
            self.waiting.pop(side, None)
        else:
            self.waiting[side] = text

    # -------------------------------------------------------- read by the server --

    def queue_fill(self) -> float:
        """Blocks waiting in the queue, as a share of its capacity (0 without a copy)."""
        fifo = self.fifo
        return len(fifo) / fifo.capacity if fifo is not None and fifo.capacity else 0.0

    def rates(self, last: int | None = None) -> list[tuple[float, float, float]]:
        """(time, read B/s, written B/s) per sample of the last hour (or the last few)."""
        with self._lock:
            samples = list(self.history)[-(last + 1):] if last else list(self.history)
        return [(t1, (r1 - r0) / (t1 - t0), (w1 - w0) / (t1 - t0))
                for (t0, r0, w0), (t1, r1, w1) in zip(samples, samples[1:]) if t1 > t0]

    def snapshot(self) -> dict:
        out = {"phase": self.phase, "paused": self.paused, "run": self.run_id, "src": self.src, "dst": self.dst,
               "started": iso(self.started), "last_progress": iso(self.last_progress),
               "bwlimit_bytes_per_second": self.bwlimit or None,
               "waiting": dict(self.waiting) or None, "result": self.result}
        scan, transfer = self.scan, self.transfer
        if scan is not None:
            out["scan"] = {"src_entries": scan.src_entries, "src_bytes": scan.src_bytes,
                           "dst_entries": scan.dst_entries, "dst_bytes": scan.dst_bytes,
                           "pending_files": scan.pending_files,
                           "pending_bytes": scan.pending_bytes, "errors": scan.errors}
        if transfer is not None:
            rates = self.rates(3)
            rate = sum(r[2] for r in rates) / len(rates) if rates else None
            left = max(transfer.bytes_total - transfer.bytes_written, 0)
            out["copy"] = {
                "files_synced_before": self.synced_before,
                "files_done": transfer.files_done, "files_total": transfer.files_total,
                "files_failed": transfer.files_failed, "bytes_done": transfer.bytes_written,
                "bytes_total": transfer.bytes_total, "bytes_read": transfer.bytes_read,
                "rate_bytes_per_second": rate,
                "eta_seconds": left / rate if rate else None,
                "current": transfer.files_in_flight()}
        return out


class Control:
    """What the API may do to the run: stop it as SIGTERM would, pause and resume the
    copy, and change the cap. Asked before the copy has a pipeline (during the scan),
    a pause or a cap waits for it (attach())."""

    def __init__(self, stop, stall: int, state: RunState):
        self.stop_request, self.stall, self.state = stop, stall, state
        self.pipeline = None
        self.rate: int | None = None    # a cap asked for through the API
        self.paused = False
        self._lock = threading.Lock()

    def attach(self, pipeline) -> None:
        """The copy begins: it takes what was asked for meanwhile."""
        with self._lock:
            self.pipeline, self.state.fifo = pipeline, pipeline.fifo
            if self.rate is not None:
                pipeline.set_rate(self.rate)
            if self.paused:
                pipeline.pause()

    def detach(self) -> None:
        with self._lock:
            self.pipeline = self.state.fifo = None

    def stop(self) -> None:
        self.stop_request.request(signal.SIGTERM)

    def set_rate(self, rate: int, source: str = "api") -> None:
        """The cap, from the API or a --bwlimit timetable (which calls this too, so
        the server always shows the cap in force)."""
        with self._lock:
            if source == "api":
                self.rate = rate
            self.state.bwlimit = rate
            if self.pipeline is not None:
                self.pipeline.set_rate(rate)

    def pause(self, paused: bool) -> None:
        with self._lock:
            self.paused = self.state.paused = paused
            if self.pipeline is not None:
                (self.pipeline.pause if paused else self.pipeline.resume)()
