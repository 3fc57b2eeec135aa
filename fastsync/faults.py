"""Deterministic fault injection, for tests: which operations fail, with which errno.

A plan is a list of rules separated by ";", each `OP[@TEXT]:OUTCOMES`:
  OP        open (a source file), read (one block, inside the compiled loop), stat (a
            source file's re-check at the end of its read), mkdir, create (a temporary),
            write (one block, inside the compiled loop), utime, flush (fsync or close of
            one file), syncfs (a batch's), rename, probe (a root's health check), list
            (a directory scan)
  @TEXT     only calls whose path contains TEXT
  OUTCOMES  a comma-separated sequence consumed one per matching call: `ok` or an errno
            name (`EIO`); the last one may end in `*` to repeat forever. After the
            sequence, calls succeed.
Example: "read@big.bin:ok,EIO,EIO;rename:ENOSPC" lets the first block of big.bin be
read, fails the next two reads of it with EIO, and fails the first rename with ENOSPC.

Set from the environment variable FASTSYNC_TESTONLY_FAULTS (so subprocess and binary
tests can use it; a run with a plan says so on stderr) or with `install()`.
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass

OPS = frozenset({"open", "read", "stat", "mkdir", "create", "write", "utime", "flush",
                 "syncfs", "rename", "probe", "list", "symlink"})
ENV = "FASTSYNC_TESTONLY_FAULTS"


@dataclass
class Rule:
    op: str
    text: bytes | None
    outcomes: list[int]          # 0 = ok
    forever: bool
    used: int = 0

    def next(self) -> int:
        if self.used < len(self.outcomes):
            self.used += 1
            return self.outcomes[self.used - 1]
        return self.outcomes[-1] if self.forever else 0


class Plan:
    def __init__(self, text: str):
        self.text = text
        self.rules: list[Rule] = []
        self._lock = threading.Lock()
        for part in filter(None, (p.strip() for p in text.split(";"))):
            head, _, tail = part.partition(":")
            op, _, match = head.partition("@")
            if op not in OPS or not tail:
                raise ValueError(f"fault rule {part!r}: expected OP[@TEXT]:OUTCOMES with OP "
                                 f"one of {', '.join(sorted(OPS))}")
            names = [n.strip() for n in tail.split(",")]
            forever = names[-1].endswith("*")
            names[-1] = names[-1].rstrip("*")
            outcomes = []
            for name in names:
                if name == "ok":
                    outcomes.append(0)
                elif name.startswith("E") and hasattr(errno, name):
                    outcomes.append(getattr(errno, name))
                else:
                    raise ValueError(f"fault rule {part!r}: {name!r} is not ok or an errno")
            self.rules.append(Rule(op, os.fsencode(match) if match else None, outcomes,
                                   forever))

    def check(self, op: str, path: bytes | str | None) -> int:
        p = os.fsencode(path) if path is not None else b""
        with self._lock:
            for rule in self.rules:
                if rule.op == op and (rule.text is None or rule.text in p):
                    return rule.next()
        return 0


def _from_environment() -> Plan | None:
    text = os.environ.get(ENV)
    if not text:
        return None
    try:
        return Plan(text)
    except ValueError as e:
        raise SystemExit(f"fastsync: error: {ENV}: {e}") from None


_plan: Plan | None = _from_environment()


def install(text: str | None) -> Plan | None:
    """Use this plan from now on (None: no faults). Returns the previous one."""
    global _plan
    previous, _plan = _plan, (Plan(text) if text else None)
    return previous


def active() -> str | None:
    return _plan.text if _plan is not None else None


def check(op: str, path: bytes | str | None = None) -> int:
    """The errno this call should fail with (0: go ahead). Costs one test when off."""
    return 0 if _plan is None else _plan.check(op, path)


def fail(op: str, path: bytes | str | None = None) -> None:
    """Raise the injected error for this call, if the plan has one."""
    if _plan is not None:
        code = _plan.check(op, path)
        if code:
            raise OSError(code, os.strerror(code), os.fsdecode(path) if path else None)
