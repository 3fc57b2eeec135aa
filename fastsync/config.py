"""What a run is asked to do, validated before anything is written.

Sizes and rates: a number (fractions allowed) with an optional suffix. K, M, G, T and
KiB, MiB, GiB, TiB are powers of 1024; KB, MB, GB, TB are powers of 1000 (as in rsync).
A rate is bytes per second and may end in "/s". --bwlimit may also be a timetable
of rates by time of day and week (schedule.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import memory
from .destination import STREAMS_LOCAL, STREAMS_NETWORK
from .errors import UsageError

if TYPE_CHECKING:
    from .schedule import Schedule
    from .selection import Selection

ALGORITHMS = ("md5", "sha1", "sha256", "blake2b")

KiB = 1024
MiB = 1024**2
GiB = 1024**3

MIN_BLOCK = 4 * KiB
MAX_BLOCK = 1 * GiB
MAX_QUEUE = 10_000
MAX_STREAMS = 64
AUTO_STREAMS_MAX = max(STREAMS_LOCAL, STREAMS_NETWORK)   # the most --streams auto picks
MIN_RATE = 1 * KiB
MAX_RATE = 1024**4

# At most 15 digits: anything longer is a typo, and would overflow float arithmetic.
# [0-9], not \d: \d also takes other scripts' digits ('٣M' is not a size to a user)
_SIZE = re.compile(r"^\s*([0-9]{1,15}(?:\.[0-9]{0,9})?|\.[0-9]{1,9})\s*"
                   r"(?:([kmgt])(i?b)?|(b))?\s*$",
                   re.I)
_POWER = {"k": 1, "m": 2, "g": 3, "t": 4}


def parse_size(text: str, what: str = "size") -> int:
    """'5M' -> 5242880, '1.5G' -> 1610612736, '20MB' -> 20000000, '4096' -> 4096."""
    match = _SIZE.match(text)
    if not match:
        raise UsageError(f"{what} {text!r} is not a size (examples: 4096, 512K, 5M, 1.5G, 20MB)")
    number, unit, tail, _bytes = match.groups()
    base = 1000 if tail and tail.lower() == "b" else 1024
    value = float(number) * base ** _POWER[unit.lower()] if unit else float(number)
    return int(round(value))


def parse_rate(text: str, what: str = "--bwlimit") -> int:
    """A rate in bytes per second; '0' means no limit. A number needs its unit: rsync
    reads `--bwlimit 20480` as KiB/s, so a bare number would mean 1024 times less here
    than to an rsync user; `20480B` says bytes, `20M` MiB."""
    stripped = text.strip()
    if stripped.lower().endswith("/s"):
        stripped = stripped[:-2]
    rate = parse_size(stripped, what)
    if rate == 0 and re.search(r"[1-9]", stripped):
        # 0.5, 0.4B: not "no limit", which only 0 says
        raise UsageError(f"{what} {text!r} is less than 1 byte/s; use 0 (no limit) or a "
                         f"rate from 1K to 1T per second (e.g. 20M = 20 MiB/s)")
    if rate and re.fullmatch(r"\s*[0-9.]+\s*", stripped):
        raise UsageError(f"{what} {text!r} has no unit: rsync reads a bare number as "
                         f"KiB/s; write {stripped.strip()}K for KiB/s, or "
                         f"{stripped.strip()}B for bytes/s (M, G: MiB, GiB)")
    return rate


def check_rate(text: str, what: str = "--bwlimit") -> int:
    """parse_rate, held to 0 (no limit) or 1K to 1T per second."""
    rate = parse_rate(text, what)
    if rate != 0 and not MIN_RATE <= rate <= MAX_RATE:
        raise UsageError(f"{what} {text!r} is {rate} bytes/s; use 0 (no limit) or "
                         f"a rate from 1K to 1T per second (e.g. 20M = 20 MiB/s)")
    return rate


def parse_bwlimit(text: str) -> int | Schedule:
    """--bwlimit: a rate (0 or `off`: no cap), or, if it has a comma, a timetable of
    `[Day-]HH:MM,RATE` entries (schedule.py), which applies during the copy."""
    if "," in text:
        from .schedule import Schedule      # schedule.py builds on this module
        return Schedule.parse(text)
    if text.strip().lower() == "off":       # rclone's word for no cap
        return 0
    return check_rate(text)


def format_size(n: float) -> str:
    """Human-readable, powers of 1024: 5242880 -> '5.0 MiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Config:
    src: bytes                 # absolute, normalised
    dst: bytes
    db: str
    log: str
    bwlimit: int | Schedule = 0   # bytes/s per direction, 0 = unlimited; or a timetable
    checksum: str = "sha256"
    delete_extras: bool = False
    rescan: bool = False
    block_size: int = 5 * MiB
    queue_capacity: int = 20
    streams: int | None = None   # files read and written at the same time; None: auto
    quiet: bool = False
    verbose: bool = False
    retries: int = 5           # further attempts after a transient error
    retry_delay: float = 1.0   # seconds before the first retry; doubles each time
    outage_timeout: float = 3600.0   # seconds to wait for an unreachable share
    selection: Selection = None      # filters, --files-from, priorities, order (None: all)
    dry_run: bool = False
    max_delete: int | None = None    # --max-delete; None: the default guard applies


def check_values(*, bwlimit: str, checksum: str, block_size: str, queue_capacity: str,
                 streams: str = "auto"
                 ) -> tuple[int | Schedule, str, int, int, int | None]:
    """Validate the option values that need no filesystem; return them parsed
    (--streams auto as None: the pipeline picks by DST's filesystem; a --bwlimit
    timetable as a Schedule)."""
    rate = parse_bwlimit(bwlimit)
    algo = checksum.strip().lower()
    if algo not in ALGORITHMS:
        raise UsageError(f"--checksum {checksum!r} is not supported; choose one of "
                         + ", ".join(ALGORITHMS))
    block = parse_size(block_size, "--block-size")
    if not MIN_BLOCK <= block <= MAX_BLOCK:
        raise UsageError(f"--block-size {block_size!r} is out of range; use 4K to 1G")
    if not re.fullmatch(r"\s*[0-9]{1,9}\s*", queue_capacity):
        raise UsageError(f"--queue-capacity {queue_capacity!r} is not a whole number")
    capacity = int(queue_capacity)
    if not 1 <= capacity <= MAX_QUEUE:
        raise UsageError(f"--queue-capacity {capacity} is out of range; use 1 to {MAX_QUEUE}")
    count = _streams(streams)
    # auto: checked for the most it may pick, so that no DST turns a command line bad
    most = count or AUTO_STREAMS_MAX
    pool = (capacity + 2 * most) * block
    available, limit = memory.room(most)
    if pool > available:
        more = "than " + limit if limit.startswith("half") else f"than {limit} leaves"
        raise UsageError(f"--queue-capacity {capacity} x --block-size {block_size} with "
                         f"{most} streams{'' if count else ' (the most --streams auto picks)'}"
                         f" needs {format_size(pool)} of buffers, more {more} "
                         f"({format_size(max(available, 0))}); lower --block-size or "
                         f"--queue-capacity")
    return rate, algo, block, capacity, count


def _streams(text: str) -> int | None:
    if text.strip().lower() == "auto":
        return None
    if not re.fullmatch(r"\s*[0-9]{1,9}\s*", text):
        raise UsageError(f"--streams {text!r} is not a whole number (1 to {MAX_STREAMS}) "
                         f"or auto")
    count = int(text)
    if not 1 <= count <= MAX_STREAMS:
        raise UsageError(f"--streams {count} is out of range; use 1 to {MAX_STREAMS} or auto")
    return count


MAX_RETRIES = 100
MAX_DELAY = 3600.0
MAX_OUTAGE = 30 * 86400.0


def check_retry_values(*, retries: str, retry_delay: str, outage_timeout: str
                       ) -> tuple[int, float, float]:
    """--retries, --retry-delay and --outage-timeout, parsed and range-checked."""
    if not re.fullmatch(r"\s*[0-9]{1,9}\s*", retries) or int(retries) > MAX_RETRIES:
        raise UsageError(f"--retries {retries!r} must be a whole number from 0 to {MAX_RETRIES}")
    values = []
    for option, text, limit in (("--retry-delay", retry_delay, MAX_DELAY),
                                ("--outage-timeout", outage_timeout, MAX_OUTAGE)):
        if not re.fullmatch(r"\s*([0-9]{1,9}(\.[0-9]{0,6})?|\.[0-9]{1,6})\s*", text) \
                or float(text) > limit:
            raise UsageError(f"{option} {text!r} must be a number of seconds from 0 to "
                             f"{limit:.0f}")
        values.append(float(text))
    return int(retries), values[0], values[1]

