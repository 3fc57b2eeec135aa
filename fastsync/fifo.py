"""The FIFO between the readers and the writers (spec 2.3), for several files in flight.

Blocks leave in the order they came, with one rule on top: every block of a file goes to
the writer that took the file's first block, so each file is written front to back by
one thread (shares such as an rclone mount refuse writes out of order). A writer passes
over blocks of files that other writers hold and takes the oldest block it may.

At most `capacity` blocks wait in the queue, and one file may fill at most `share` of
them, so a large file read by one reader cannot take every slot from the others.

Ending: a producer calls `producer_done()` once; `get` returns None when nothing it may
take is queued and no producer is left. Both sides also look at a liveness callback
while they wait, so a thread that died (a bug) never leaves the others waiting forever.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable

from .errors import Interrupted

POLL = 0.2      # how often a waiting thread looks at the other side's liveness


class BlockFifo:
    def __init__(self, capacity: int, share: int, producers: int):
        self.capacity, self.share = capacity, share
        self._items: deque = deque()
        self._queued: dict[int, int] = {}      # id(job) -> its blocks in the queue
        self._producers = producers
        lock = threading.Lock()
        self._blocks = threading.Condition(lock)     # writers wait here for blocks
        self._room = threading.Condition(lock)       # readers wait here for room

    def __len__(self) -> int:
        return len(self._items)

    def put(self, block, consumers_alive: Callable[[], bool]) -> None:
        """Queue `block` (block.job identifies its file); waits while the queue or the
        file's share of it is full. Raises Interrupted if no consumer is left."""
        key = id(block.job)
        with self._room:
            while (len(self._items) >= self.capacity
                   or self._queued.get(key, 0) >= self.share):
                if not self._room.wait(POLL) and not consumers_alive():
                    raise Interrupted()
            self._items.append(block)
            self._queued[key] = self._queued.get(key, 0) + 1
            # every waiting writer: only one of them may hold this block's file
            self._blocks.notify_all()

    def producer_done(self) -> None:
        with self._blocks:
            self._producers -= 1
            self._blocks.notify_all()

    def get(self, writer: int, producers_alive: Callable[[], bool]):
        """The oldest block of a file this writer holds or nobody holds yet; None at the
        end of the stream. Taking a file's first block makes the writer its holder until
        its last block."""
        with self._blocks:
            while True:
                for i, block in enumerate(self._items):
                    job = block.job
                    if job.writer is None or job.writer == writer:
                        del self._items[i]
                        key = id(job)
                        left = self._queued[key] - 1
                        if left:
                            self._queued[key] = left
                        else:
                            del self._queued[key]
                        job.writer = None if block.last else writer
                        # readers wait for room (in all, or in this file's share)
                        self._room.notify_all()
                        return block
                if self._producers <= 0:
                    return None
                # (liveness only after a quiet wait: threads start one after another)
                if not self._blocks.wait(POLL) and not producers_alive():
                    return None
