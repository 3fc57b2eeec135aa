"""A name that changed kind: DST has a directory where SRC has a file or a link, or a
non-directory where SRC has a directory. A rename cannot replace one with the other:
without --delete-extras the entry fails with KindClash (permanent, never retried);
with it, destination.LocalDestination.make_room() removes what is in the way, with
remove_tree() for a directory, which never follows a symlink out of it.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Callable, Iterator

# How an entry's kind reads in a message.
KIND_NAMES = {"file": "file", "dir": "directory", "symlink": "symbolic link",
              "special": "special file"}
REPLACE_HINT = "--delete-extras would replace it"


def kind_of(mode: int) -> str:
    """The kind of an lstat mode, named as the catalog names them (dest_files.kind)."""
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "file" if stat.S_ISREG(mode) else "special"


class KindClash(OSError):
    """DST has at `path` an entry of another kind than SRC has there: a directory where
    SRC has a file or a link (EISDIR), or a non-directory where SRC has a directory
    (ENOTDIR). `below`: the entry that fails is below `path`, so the message names it.
    Permanent (not retried): the same entry meets it again until someone removes it."""

    def __init__(self, path: bytes, found: str, wanted: str, below: bool = False,
                 outcome: str = REPLACE_HINT):
        where = f" at {os.fsdecode(path)!r}" if below else ""
        super().__init__(errno.EISDIR if found == "dir" else errno.ENOTDIR,
                         f"DST has a {KIND_NAMES[found]}{where} where SRC has a "
                         f"{KIND_NAMES[wanted]}; {outcome}", path)
        self.path, self.found, self.wanted, self.below = path, found, wanted, below


def clash_at(path: bytes, wanted: str, below: bool = False) -> KindClash | None:
    """A KindClash if DST's entry at `path` is a directory and `wanted` is not, or the
    other way round; None if they agree or `path` cannot be looked at."""
    try:
        found = kind_of(os.lstat(path).st_mode)
    except OSError:
        return None
    if (found == "dir") == (wanted == "dir"):
        return None
    return KindClash(path, found, wanted, below)


def tree_entries(top: bytes) -> Iterator[tuple[bytes, bool]]:
    """(path, is a directory) of everything below the directory `top`, never through a
    symlink and never into another filesystem (remove_tree would stop there anyway).
    What cannot be listed is left out: remove_tree then fails on it."""
    try:
        device = os.lstat(top).st_dev
    except OSError:
        return
    stack = [top]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    yield entry.path, is_dir
                    if is_dir and entry.stat(follow_symlinks=False).st_dev == device:
                        stack.append(entry.path)
        except OSError:
            continue


_NOFOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(top: bytes, removed: Callable[[bytes, str], None]) -> None:
    """Remove the directory `top` and everything below it, deepest first, calling
    removed(path, kind) after each entry. Every directory is opened relative to its
    parent's descriptor with O_NOFOLLOW and its entries removed relative to it, so a
    symlink inside (or one swapped in meanwhile) is removed as a link, never followed:
    nothing outside `top` is touched. Nor is another filesystem mounted below `top`:
    its mount point could not be removed anyway (EBUSY), so its content is not emptied
    first. The first error stops it and is raised."""
    stack = [(os.open(top, _NOFOLLOW_DIR), top, None)]   # (fd, path, subdirs left)
    try:
        device = os.fstat(stack[0][0]).st_dev
        if device != os.stat(os.path.dirname(top)).st_dev:
            # a filesystem mounted at `top` itself: emptying it would not free the name
            raise OSError(errno.EXDEV, f"another filesystem is mounted at "
                          f"{os.fsdecode(top)!r}")
        while stack:
            fd, path, subdirs = stack[-1]
            if subdirs is None:
                subdirs = _remove_entries(fd, path, removed)
                stack[-1] = (fd, path, subdirs)
            if subdirs:
                name = subdirs.pop()
                child = os.open(name, _NOFOLLOW_DIR, dir_fd=fd)
                stack.append((child, os.path.join(path, name), None))
                if os.fstat(child).st_dev != device:
                    raise OSError(errno.EXDEV, "another filesystem is mounted at "
                                  f"{os.fsdecode(stack[-1][1])!r}")
                continue
            stack.pop()
            os.close(fd)
            if stack:
                os.rmdir(os.path.basename(path), dir_fd=stack[-1][0])
            else:
                os.rmdir(top)
            removed(path, "dir")
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def _remove_entries(fd: int, path: bytes, removed) -> list[bytes]:
    """Unlink the non-directories in the directory open at `fd`; return the names of
    its subdirectories (not followed: a symlink to a directory is unlinked here)."""
    subdirs = []
    with os.scandir(fd) as entries:
        for entry in entries:
            name = os.fsencode(entry.name)      # scandir(fd) names are str
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(name)
                continue
            kind = ("symlink" if entry.is_symlink() else
                    "file" if entry.is_file(follow_symlinks=False) else "special")
            os.unlink(name, dir_fd=fd)
            removed(os.path.join(path, name), kind)
    return subdirs


def link_or_file(tmp: bytes) -> str | None:
    """What a written temporary holds: SRC's symlink or file; None if it cannot be
    looked at (then the rename cannot happen anyway: nothing is removed for it)."""
    try:
        return "symlink" if stat.S_ISLNK(os.lstat(tmp).st_mode) else "file"
    except OSError:
        return None
