"""What a run copies and in what order: filters, --files-from, priorities, --order-by.

A Selection bundles them. The scan applies the filters and the --files-from scope
(scan.py); the catalog keeps each pending row's priority class and order key in an
index, so that the backlog comes out in the chosen order without a sort (catalog.py).
The catalog also stores what the selection was (meta `selection`): a run whose filters
or --files-from differ from the last scan's scans again (the backlog was chosen by the
old ones), and says what changed.

--files-from FILE: one path relative to SRC per line (`--from0`: NUL-separated). Blank
lines are skipped, and so are lines starting with `#` or `;` (rsync's comments; not
with --from0). An absolute path is taken if it lies inside SRC. A path with a `..`
component is refused, even one that would end up inside SRC: through a symlink it
could lead anywhere. A listed directory brings everything below it (rsync needs -r
for that); the directories leading to a listed entry are scanned and created too, but
nothing else in them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Callable

from .catalog import LAST_CLASS
from .errors import UsageError
from .filters import Priorities, Rules

ORDERS = ("name", "size", "mtime")

# The class of what no --priority matches (and of everything without --priority): the
# matched classes 0, 1, ... come first, and a new --priority changes only the rows it
# matches.
LAST = LAST_CLASS


@dataclass(frozen=True)
class Order:
    """--order-by KEY[,asc|desc]: the order inside a priority class."""
    key: str = "name"
    descending: bool = False

    @classmethod
    def parse(cls, text: str) -> "Order":
        key, _, direction = text.strip().lower().partition(",")
        direction = direction.strip() or "asc"
        if key.strip() not in ORDERS or direction not in ("asc", "ascending", "desc",
                                                          "descending"):
            raise UsageError(f"--order-by {text!r} is not one of name, size, mtime, "
                             f"optionally followed by ,asc or ,desc (e.g. size,asc)")
        order = cls(key.strip(), direction.startswith("desc"))
        if order == cls("name", True):
            raise UsageError("--order-by name,desc is not supported: inside a priority "
                             "class files go in path order (name,asc), or by size or mtime")
        return order

    def __str__(self) -> str:
        return f"{self.key},{'desc' if self.descending else 'asc'}"

    def sql(self, table: str) -> str:
        """The SQL expression of a row's order key (a number: the index sorts on it)."""
        column = {"name": None, "size": "size", "mtime": "modified"}[self.key]
        if column is None:
            return "0"
        return f"-{table}.{column}" if self.descending else f"{table}.{column}"


class Node(dict):
    """One directory of the --files-from tree: its children by name."""
    __slots__ = ("listed", "seen")

    def __init__(self) -> None:
        super().__init__()
        self.listed = False     # named in the file: everything below it is in scope
        self.seen = False       # found in SRC by the scan


class Scope:
    """The entries --files-from names, as a tree of names below SRC."""

    def __init__(self, paths: list[bytes], digest: str = ""):
        self.root = Node()
        self.count = len(paths)
        self.digest = digest or hashlib.sha256(b"\0".join(sorted(paths))).hexdigest()
        for rel in paths:
            node = self.root
            for name in rel.split(b"/"):
                node = node.setdefault(name, Node())
            node.listed = True

    def covers(self, rel: bytes) -> bool:
        """Is the entry at `rel` (relative to SRC) listed, below a listed one, or on
        the way to one?"""
        node = self.root
        for name in rel.split(b"/"):
            if node.listed:
                return True
            node = node.get(name)
            if node is None:
                return False
        return True

    def missing(self) -> list[bytes]:
        """Listed paths the scan did not find in SRC."""
        found, stack = [], [(b"", self.root)]
        while stack:
            prefix, node = stack.pop()
            for name, child in node.items():
                rel = prefix + name
                if child.listed and not child.seen:
                    found.append(rel)
                elif not child.listed:
                    stack.append((rel + b"/", child))
        return sorted(found)


def read_files_from(path: str, src: bytes, nul: bool = False) -> Scope:
    """The paths of --files-from FILE, relative to SRC, checked before anything runs."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UsageError(f"--files-from {path!r}: {e.strerror}") from None
    lines = data.split(b"\0") if nul else data.splitlines()
    paths = set()
    for number, line in enumerate(lines, 1):
        if not nul:
            line = line.rstrip(b"\r")
        if not line or (not nul and line[:1] in (b"#", b";")):
            continue
        paths.add(_relative(line, src, f"--files-from {path!r} line {number}"
                                       if not nul else f"--files-from {path!r} entry {number}"))
    if not paths:
        raise UsageError(f"--files-from {path!r} names no path")
    if b"" in paths:
        raise UsageError(f"--files-from {path!r} names SRC itself; leave --files-from "
                         f"out to copy all of SRC")
    return Scope(sorted(paths))


def _relative(line: bytes, src: bytes, where: str) -> bytes:
    if line.startswith(b"/"):
        if line.rstrip(b"/") == src:
            return b""
        if not line.startswith(src.rstrip(b"/") + b"/"):
            raise UsageError(f"{where}: {os.fsdecode(line)!r} is outside SRC "
                             f"{os.fsdecode(src)!r}")
        line = line[len(src.rstrip(b"/")) + 1:]
    names = [n for n in line.split(b"/") if n not in (b"", b".")]
    if b".." in names:
        raise UsageError(f"{where}: {os.fsdecode(line)!r} has a '..' component; paths "
                         f"must stay inside SRC")
    return b"/".join(names)


@dataclass
class Selection:
    rules: Rules = field(default_factory=lambda: Rules.parse([]))
    priorities: Priorities = field(default_factory=lambda: Priorities([]))
    scope: Scope | None = None
    order: Order = Order()

    def scanned_with(self) -> str:
        """What decides which entries a scan records (meta `selection`)."""
        return json.dumps({"filters": self.rules.describe(),
                           "files_from": None if self.scope is None else
                           f"{self.scope.count} path{'' if self.scope.count == 1 else 's'}, "
                           f"sha256 {self.scope.digest[:16]}"})

    def ordered_by(self) -> str:
        """What decides the backlog's order (meta `backlog_order`)."""
        return json.dumps({"priorities": self.priorities.describe(),
                           "order_by": str(self.order)})

    def klass_of(self, src: bytes) -> Callable[[bytes], int] | None:
        """The priority class of a source path below `src`, as the scan gives it: the
        highest of its own and its directories' (None: no --priority)."""
        if not self.priorities:
            return None
        lowest, of = LAST, self.klass
        known: dict[bytes, int] = {b"": lowest}

        def of_dir(rel: bytes) -> int:
            missing = []            # the directories up to one already known
            while rel not in known:
                missing.append(rel)
                rel = rel.rpartition(b"/")[0]
            value = known[rel]
            for rel in reversed(missing):
                value = min(value, of(rel, True))
                known[rel] = value
            if len(known) > 100_000:        # rows come in path order: keep it small
                known.clear()
                known[b""] = lowest
            return value

        def klass(path: bytes) -> int:
            rel = path[len(src) + 1:]
            if not rel:
                return lowest
            return min(of_dir(rel.rpartition(b"/")[0]), of(rel, False))
        return klass

    def klass(self, rel: bytes, is_dir: bool) -> int:
        """The class of the entry at `rel` itself: the first --priority it matches, or
        LAST."""
        klass = self.priorities.klass(rel, is_dir)
        return LAST if klass >= len(self.priorities) else klass

    def changes(self, before: str | None) -> list[str]:
        """How this selection differs from the one stored as `before` (scanned_with())."""
        if before is None or before == self.scanned_with():
            return []
        old, new = json.loads(before), json.loads(self.scanned_with())
        said = []
        if old["filters"] != new["filters"]:
            gone = [r for r in old["filters"] if r not in new["filters"]]
            added = [r for r in new["filters"] if r not in old["filters"]]
            said.append("filters " + "; ".join(
                ([f"added {', '.join(added)}"] if added else [])
                + ([f"dropped {', '.join(gone)}"] if gone else [])
                or ["reordered"]))
        if old["files_from"] != new["files_from"]:
            said.append(f"--files-from was {old['files_from'] or 'not given'}, now "
                        f"{new['files_from'] or 'not given'}")
        return said
