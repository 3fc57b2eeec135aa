"""The copy's cap and pause, shared by its readers and writers.

--bwlimit caps reads from SRC and writes to DST each: one token bucket per direction,
made at the first cap and kept for the run (what they granted carries across changes).
Unpaced, the copy loops get no bucket at all: whole blocks, no clock, no lock, the fast
path of a run without --bwlimit. A cap changes live (a timetable, the API); a pause
holds every reader and writer before its next block.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from . import _core


class Pacing:
    def __init__(self, rate: int, stopped: Callable[[], bool], poll: float):
        self._stopped, self._poll = stopped, poll
        self._buckets: tuple[_core.TokenBucket, _core.TokenBucket] | None = None
        self._lock = threading.Lock()
        self.read_bucket = self.write_bucket = None
        self.paused = False
        self.set(rate)

    def set(self, rate: int) -> None:
        """The cap now, from any thread; 0 lifts it. Sleepers in the buckets follow
        within 20 ms (TokenBucket.set_rate)."""
        with self._lock:
            if rate and self._buckets is None:
                self._buckets = (_core.TokenBucket(rate), _core.TokenBucket(rate))
                if self._stopped():     # cancel() may have looked before they existed
                    for bucket in self._buckets:
                        bucket.cancel()
            for bucket in self._buckets or ():
                bucket.set_rate(rate)
            self.read_bucket, self.write_bucket = self._buckets if rate else (None, None)

    def cancel(self) -> None:
        """The run stops: sleepers in either bucket, in use or not, wake and leave."""
        for bucket in self._buckets or ():
            bucket.cancel()

    def pause(self) -> None:
        """No file data moves until resume(); what was written is still finished."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def hold(self) -> None:
        """Wait while paused; a stop ends the wait (the caller then stops as usual)."""
        while self.paused and not self._stopped():
            time.sleep(self._poll)
