"""How much memory this process may still take: checked before the scan, so that a
block pool too large for it is refused in one line at once, rather than failing with
MemoryError when the pool is allocated, after a scan that may have taken hours.

Three limits apply, the smallest wins: half of the machine's memory (the pool is one
allocation, and the page cache needs the rest); the address-space limit (`ulimit -v`),
which also pays for every thread's stack; a memory cgroup's limit (systemd's
MemoryMax=, a container's memory limit), v2 `memory.max` or v1
`memory.limit_in_bytes`, the smallest along the cgroup's ancestors.
"""

from __future__ import annotations

import os
import resource

THREADS = 48                  # the most threads a run starts besides its streams' two each
MARGIN = 64 * 1024**2         # the interpreter, SQLite's cache, the scan's batches


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 * 1024**3


def room(streams: int) -> tuple[int, str]:
    """(bytes this process may still take for its pool, what limits it)."""
    limits = [(physical_memory() // 2, "half of this machine's memory")]
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        stack, _ = resource.getrlimit(resource.RLIMIT_STACK)
        stack = 8 * 1024**2 if stack == resource.RLIM_INFINITY else stack
        stacks = (2 * streams + THREADS) * stack
        limits.append((soft - _address_space() - stacks - MARGIN,
                       "the address-space limit (ulimit -v)"))
    cgroup = _cgroup_room()
    if cgroup is not None:
        limits.append((cgroup - MARGIN, "the memory cgroup's limit"))
    return min(limits)


def _address_space() -> int:
    """VmSize: the address space this process already uses."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _cgroup_room() -> int | None:
    """What the memory cgroups this process is in still allow, or None if unlimited."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    rooms = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":             # v2
            bases = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            files = ("memory.max", "memory.current", "inactive_file")
        elif "memory" in controllers.split(","):
            bases = ["/sys/fs/cgroup/memory"]
            files = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
        else:
            continue
        for base in bases:
            rooms.extend(_room_along(base, path, *files))
    return min(rooms) if rooms else None


def _room_along(base: str, path: str, limit_file: str, usage_file: str,
                inactive_key: str) -> list[int]:
    """limit - usage for the cgroup at `path` and each of its ancestors that has one.
    Usage counts the page cache, much of which the kernel gives back on demand (a
    previous copy's, say): its inactive part is not counted, as docker and kubelet do."""
    rooms = []
    parts = [p for p in path.split("/") if p]
    for depth in range(len(parts), -1, -1):
        directory = os.path.join(base, *parts[:depth])
        try:
            with open(os.path.join(directory, limit_file)) as f:
                limit = f.read().strip()
            with open(os.path.join(directory, usage_file)) as f:
                usage = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 2**62:
            continue              # v1 says "unlimited" with a huge number
        usage -= _stat(os.path.join(directory, "memory.stat"), inactive_key)
        rooms.append(int(limit) - max(usage, 0))
    return rooms


def _stat(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0
