"""SRC names checked against what DST can hold (probe.py), as the scan meets them."""

from __future__ import annotations

import os
import queue

from .probe import Traits


class Names:
    """SRC names checked against what DST can hold (probe.py), one directory at a time:
    a name DST would store under another name, and two names DST would store as one
    (`readme` and `README` where DST folds case), are scan errors naming the cause,
    never copied, never recorded as synced; nothing below such a directory is walked."""

    def __init__(self, traits: Traits, out: queue.Queue):
        self.traits, self.out = traits, out
        self.seen: dict[bytes, bytes | None] = {}   # folded name -> first path (None: told)

    def new_directory(self) -> None:
        self.seen = {}

    def fits(self, path: bytes, rows: list, stack: list) -> bool:
        name = os.path.basename(path)
        problem = self.traits.name_problem(name)
        if problem is not None:
            self._error(path, f"not copied: {problem}")
            return False
        if not self.traits.folds_case:
            return True
        key = self.traits.fold(name)
        if key not in self.seen:
            self.seen[key] = path
            return True
        first, self.seen[key] = self.seen[key], None
        if first is not None:
            # Recorded already: its row (sent first, the queue keeps order) is taken
            # back, and if a directory, it is not walked.
            if rows:
                self.out.put(("src", "rows", rows[:]))
                rows.clear()
            self.out.put(("src", "drop", first))
            stack[:] = [item for item in stack if item[0] != first]
            self._error(first, self._clash(first, path))
        self._error(path, self._clash(path, first))
        return False

    def _clash(self, path: bytes, other: bytes | None) -> str:
        also = f"{os.fsdecode(os.path.basename(other))!r}" if other else "another name"
        return (f"not copied: DST does not tell upper from lower case, and SRC also has "
                f"{also} here; neither is copied over the other")

    def _error(self, path: bytes, message: str) -> None:
        self.out.put(("src", "error", (path, message)))
