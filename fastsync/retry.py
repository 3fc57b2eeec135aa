"""What to do about an error, and retrying the ones that may pass.

  transient  EIO, ETIMEDOUT, ESTALE, ENOTCONN, EHOSTDOWN, EHOSTUNREACH, ENETDOWN,
             ENETUNREACH, ENETRESET, ECONNRESET, ECONNABORTED, ECONNREFUSED, EAGAIN,
             EINTR, EREMOTEIO: the operation is tried again after 1, 2, 4, ... times
             --retry-delay seconds (+-25 % jitter, at most 60 s), --retries times; on
             ESTALE the file is reopened by path first.
  restart    ESPIPE: the stream to the share is broken (a FUSE mount that uploads or
             downloads as a stream cannot take a second try at an offset): not retried
             in place; the file is copied again from the start (pipeline.py).
  fatal      ENOSPC, EDQUOT, EROFS: no further file can succeed; the run stops.
  permanent  everything else (EACCES, ENOENT, EISDIR, ...): this file fails now and
             stays pending for the next run; the others go on.

Before any retry, and for any non-fatal error, the share's root is checked: if it is
unreachable, or no longer the directory it was at the start (an unmounted share), the
thread that met the error waits, probing the root with growing intervals (--retry-delay
doubling up to 30 s), until it answers; then the operation is tried again without counting those
waits. After --outage-timeout seconds of waiting the run stops (exit status 3).
fsync, close and syncfs are never retried as such: after a failed fsync the kernel may
already have dropped the dirty data, and a second fsync would succeed without it. The
file is copied again instead (see pipeline.py, "retry later").
"""

from __future__ import annotations

import errno
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

from . import faults
from .errors import FatalError, Interrupted, Restart, classify
from .destination import Identity, write_probe

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Policy:
    retries: int = 5              # further attempts of an operation after a transient error
    delay: float = 1.0            # the first wait; doubles per attempt
    outage: float = 3600.0        # longest wait for an unreachable share
    max_delay: float = 60.0
    max_probe: float = 30.0

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        base = min(self.delay * 2 ** (attempt - 1), self.max_delay)
        return base * (0.75 + 0.5 * rand())


class Root:
    """SRC or DST, and how to tell that it still is the directory the run started with
    and that its server answers. A client may answer stat and listings of a share from
    its cache while the server is gone, so the writable side (DST) is probed with a real
    round trip (destination.write_probe)."""

    def __init__(self, label: str, path: bytes, writable: bool = False):
        self.label, self.path, self.writable = label, path, writable
        self._start = Identity(path)
        self.identity = self._start.dev_ino

    def problem(self) -> str | None:
        """None if the root answers and is the same directory; else what is wrong."""
        try:
            faults.fail("probe", self.path)
            if not self._start.same(os.stat(self.path)):
                return "no longer the directory it was at the start (unmounted?)"
            with os.scandir(self.path) as entries:
                next(entries, None)
            if self.writable:
                write_probe(self.path)
        except OSError as e:
            return f"{errno.errorcode.get(e.errno, e.errno)}: {e.strerror}"
        return None

    def __str__(self) -> str:
        return f"{self.label} {os.fsdecode(self.path)}"


class Counts:
    """Retries and outages by side, over the whole process (for /metrics)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.values: dict[tuple[str, str], int] = {}

    def add(self, what: str, side: str) -> None:
        with self._lock:
            self.values[what, side] = self.values.get((what, side), 0) + 1

    def get(self, what: str, side: str) -> int:
        return self.values.get((what, side), 0)


COUNTS = Counts()


class Retrier:
    """Runs filesystem operations under the policy above. Shared by all threads."""

    def __init__(self, policy: Policy, roots: dict[str, Root], stop: threading.Event,
                 status: Callable[[str, str | None], None] = lambda side, text: None,
                 audit=None, rand: Callable[[], float] = random.random):
        self.policy, self.roots, self.stop = policy, roots, stop
        self.status, self.audit, self.rand = status, audit, rand
        self._waiting = {side: threading.Lock() for side in roots}

    def call(self, side: str, what: str, fn: Callable, stale: Callable | None = None):
        """fn() with retries; `stale` (if given) reopens what fn uses after ESTALE."""
        attempt = 0
        while True:
            try:
                return fn()
            except OSError as e:
                kind = classify(e)
                if kind == "fatal":
                    raise
                if self.wait_for(side):
                    if stale is not None:   # an open handle did not survive the outage
                        raise Restart(e.errno, f"{e.strerror} (the share went away "
                                               f"while the file was open)") from None
                    continue        # the share was away and is back: not an attempt
                if kind in ("permanent", "restart") or attempt >= self.policy.retries:
                    raise
                attempt += 1
                COUNTS.add("retries", side)
                delay = self.policy.backoff(attempt, self.rand)
                log.info("%s: %s; retry %d of %d in %.1fs", what,
                         f"{errno.errorcode.get(e.errno, e.errno)}: {e.strerror}", attempt,
                         self.policy.retries, delay)
                self.pause(delay)
                if e.errno == errno.ESTALE and stale is not None:
                    try:
                        stale()
                    except OSError as reopen_error:
                        if classify(reopen_error) != "transient":
                            raise

    def wait_for(self, side: str) -> bool:
        """If `side`'s root is unreachable, wait until it answers. Returns whether it
        was unreachable (so the caller retries). FatalError after the outage timeout."""
        root = self.roots[side]
        if root.problem() is None:
            return False
        with self._waiting[side]:       # one thread probes; the others wait behind it
            problem = root.problem()
            if problem is None:
                return True
            started = time.monotonic()
            log.warning("%s is unreachable (%s); waiting up to %.0fs for it to come back",
                        root, problem, self.policy.outage)
            self._record("outage", "started", root, error=problem)
            COUNTS.add("outages", side)
            interval = max(self.policy.delay, 0.05)
            while problem is not None:
                waited = time.monotonic() - started
                if waited >= self.policy.outage:
                    self.status(side, None)
                    self._record("outage", "failed", root, error=problem,
                                 seconds=round(waited))
                    raise FatalError(f"stopped: {root} unreachable for {waited:.0f}s "
                                     f"({problem}); pending files stay pending")
                self.status(side, f"waiting for {root}: {problem} (since {waited:.0f}s)")
                self.pause(min(interval, self.policy.outage - waited))
                interval = min(interval * 2, self.policy.max_probe)
                problem = root.problem()
            log.warning("%s is back after %.0fs", root, time.monotonic() - started)
            self._record("outage", "ended", root, seconds=round(time.monotonic() - started))
            self.status(side, None)
            return True

    def _record(self, op: str, status: str, root: Root, **fields) -> None:
        if self.audit is not None:
            self.audit.event(op, status, root=root.path, side=root.label, **fields)
            self.audit.flush()

    def pause(self, seconds: float) -> None:
        if self.stop.wait(max(seconds, 0.0)):
            raise Interrupted()
