"""The order the readers take pending files in.

The catalog hands pending files out in path order, so neighbours in the backlog are
mostly neighbours on disk: files of one directory. On a share that is the slow order: a
client serialises creates and renames within one directory (Linux locks the parent
directory for the whole round trip; the rclone mount does the same), so sixteen files
in flight from one directory rename one after another, at ~55 files/s on the testbed,
while sixteen from different directories rename side by side (~210/s). So the readers
take files round-robin across the directories of a window of the backlog: still about
path order overall, but the files in flight at one time come from different directories
wherever the tree has them.
"""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from typing import Iterator

from .catalog import PendingFile

WINDOW = 2048       # backlog rows looked ahead for directories to alternate between


class Striped:
    """An iterator over `rows` that alternates between their parent directories,
    looking at most `window` rows ahead. Every row comes out exactly once."""

    def __init__(self, rows: Iterator[PendingFile], window: int = WINDOW):
        self._rows, self._window = rows, window
        self._dirs: OrderedDict[bytes, deque] = OrderedDict()
        self._buffered = 0
        self._exhausted = False

    def __iter__(self) -> "Striped":
        return self

    def __next__(self) -> PendingFile:
        if not self._exhausted and self._buffered < self._window // 2:
            self._fill()
        if not self._dirs:
            raise StopIteration
        directory, waiting = next(iter(self._dirs.items()))
        row = waiting.popleft()
        if waiting:
            self._dirs.move_to_end(directory)
        else:
            del self._dirs[directory]
        self._buffered -= 1
        return row

    def _fill(self) -> None:
        for row in self._rows:
            self._dirs.setdefault(os.path.dirname(row.dst), deque()).append(row)
            self._buffered += 1
            if self._buffered >= self._window:
                return
        self._exhausted = True

    def close(self) -> None:
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()
