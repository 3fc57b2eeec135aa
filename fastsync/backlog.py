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

Priorities come first: a window never mixes two --priority classes (the next class
starts once the last one is handed out). With --order-by size or mtime the backlog
is not striped: its files come from all over the tree already, and the order asked
for is kept exactly.
"""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from typing import Iterator

from .catalog import Catalog, PendingFile
from .selection import Selection

WINDOW = 2048       # backlog rows looked ahead for directories to alternate between


class Striped:
    """An iterator over `rows` that alternates between their parent directories,
    looking at most `window` rows ahead. Every row comes out exactly once."""

    def __init__(self, rows: Iterator[PendingFile], window: int = WINDOW):
        self._rows, self._window = rows, window
        self._dirs: OrderedDict[bytes, deque] = OrderedDict()
        self._buffered = 0
        self._exhausted = False
        self._class = 0                          # the priority class being handed out
        self._next: PendingFile | None = None    # the first row of the next class

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
        if self._next is not None:
            if self._buffered:
                return          # the class before it is not all out yet
            row, self._next = self._next, None
            self._add(row)
        for row in self._rows:
            if self._buffered and row.priority != self._class:
                self._next = row
                return
            self._add(row)
            if self._buffered >= self._window:
                return
        self._exhausted = True

    def _add(self, row: PendingFile) -> None:
        self._class = row.priority
        self._dirs.setdefault(os.path.dirname(row.dst), deque()).append(row)
        self._buffered += 1

    def close(self) -> None:
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()


def ordered(catalog: Catalog, selection: Selection, src: bytes) -> Iterator[PendingFile]:
    """The backlog as the readers take it: by priority class, then --order-by (path
    order striped across directories), only what --files-from covers."""
    scope = selection.scope
    rows = catalog.iter_backlog(selected=None if scope is None else
                                lambda path: scope.covers(path[len(src) + 1:]))
    return Striped(rows) if selection.order.key == "name" else rows
