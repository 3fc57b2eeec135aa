"""--bwlimit as a timetable, in rclone's syntax, and what applies it during a copy.

    --bwlimit "08:00,10M 18:00,off"              every day: 10 MiB/s from 08:00, no cap
                                                 from 18:00 until 08:00 the next day
    --bwlimit "Mon-08:00,10M Sat-00:00,off"      10 MiB/s from Monday 08:00 until the
                                                 weekend, no cap from Saturday 00:00

Entries are `[Day-]HH:MM,RATE`, separated by spaces. RATE is a rate as for a plain
--bwlimit (20M, 512K, 2048B; a unit is required), or `off` (or 0): no cap. Day is Mon,
Tue, Wed, Thu, Fri, Sat or Sun (or the full name, any case). An entry without a day
holds on every day, as in rclone: it stands for seven entries, one per day. The rate
in force at a moment is that of the latest entry at or before it, counting back around
the week: before the week's first entry, the week's last one still holds. Times are
local wall-clock times, looked at once a minute: a daylight-saving jump moves a change
with the clock.

A plain rate ("20M") is no timetable: config.parse_bwlimit keeps it an int.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from .config import check_rate, format_size
from .errors import UsageError

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")     # datetime.weekday() order
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY = 24 * 60           # minutes
_TIME = re.compile(r"([0-9]{2}):([0-9]{2})")
_SHAPE = "[Day-]HH:MM,RATE (e.g. 08:00,10M or Sat-00:00,off)"


@dataclass(frozen=True, order=True)
class Entry:
    minute: int         # of the week, from Monday 00:00
    rate: int           # bytes/s per direction; 0 = no cap
    text: str           # when, as written: "08:00", "Sat-00:00" (messages, the log)
    daily: bool = False


@dataclass(frozen=True)
class Schedule:
    text: str
    entries: tuple[Entry, ...]      # sorted by minute of the week; daily ones 7 times

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Raises UsageError, one line naming the entry, for a bad day, time or rate,
        or a time of the week given twice."""
        taken: dict[int, tuple[str, Entry]] = {}
        items = text.split()
        if not items:
            raise UsageError(f"--bwlimit {text!r} is empty; give a rate or {_SHAPE}")
        for item in items:
            for entry in _entries(item):
                if entry.minute in taken:
                    raise UsageError(_clash(item, entry, *taken[entry.minute]))
                taken[entry.minute] = (item, entry)
        return cls(" ".join(items), tuple(sorted(e for _, e in taken.values())))

    def entry_at(self, when: datetime) -> Entry:
        """The entry in force at local time `when` (its wall-clock fields are used)."""
        minute = when.weekday() * DAY + when.hour * 60 + when.minute
        index = bisect.bisect_right([e.minute for e in self.entries], minute) - 1
        return self.entries[index]      # -1: before the week's first, its last holds

    def rate_at(self, when: datetime) -> int:
        """Bytes per second in force at `when`; 0 = no cap."""
        return self.entry_at(when).rate

    def __str__(self) -> str:
        return self.text


def _entries(item: str) -> list[Entry]:
    """One entry as written: a day's, or a daily one as seven."""
    when, comma, rate_text = item.partition(",")
    if not comma or "," in rate_text or not rate_text:
        raise UsageError(f"--bwlimit entry {item!r} is not {_SHAPE}")
    day_text, dash, clock = when.rpartition("-")
    match = _TIME.fullmatch(clock)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise UsageError(f"--bwlimit entry {item!r}: {clock!r} is not a time of day "
                         f"(HH:MM, 00:00 to 23:59)")
    rate = _rate(item, rate_text)
    minute = int(match[1]) * 60 + int(match[2])
    if not dash:
        return [Entry(d * DAY + minute, rate, when, daily=True) for d in range(7)]
    day = _day(item, day_text)
    return [Entry(day * DAY + minute, rate, f"{DAYS[day]}-{clock}")]


def _day(item: str, text: str) -> int:
    name = text.lower()
    for number, (short, full) in enumerate(zip(DAYS, _FULL)):
        if name in (short.lower(), full):
            return number
    raise UsageError(f"--bwlimit entry {item!r}: {text!r} is not a day "
                     f"({', '.join(DAYS)})")


def _rate(item: str, text: str) -> int:
    if text.lower() == "off":
        return 0
    if ":" in text:     # rclone's upload:download pair
        raise UsageError(f"--bwlimit entry {item!r}: one rate, please: fastsync caps "
                         f"reads and writes alike (rclone's UP:DOWN pair is not taken)")
    return check_rate(text, f"--bwlimit entry {item!r}: rate")


def _clash(item: str, entry: Entry, first_item: str, first: Entry) -> str:
    day, minute = divmod(entry.minute, DAY)
    clock = f"{minute // 60:02d}:{minute % 60:02d}"
    when = clock if entry.daily and first.daily else f"{DAYS[day]} {clock}"
    return f"--bwlimit entry {item!r}: {when} is already set by {first_item!r}"


def describe(rate: int) -> str:
    return f"{format_size(rate)}/s" if rate else "off"


def local_now() -> datetime:
    """The applier's clock (tests replace it to cross a minute at will)."""
    return datetime.now()


def rate_now(bwlimit: int | Schedule) -> int:
    """The cap to start a copy with: --bwlimit's rate, or the timetable's now."""
    return bwlimit.rate_at(local_now()) if isinstance(bwlimit, Schedule) else bwlimit


class Applier:
    """Keeps a copy's cap on the timetable. tick() is called a few times a second
    (Run.watch); on each new minute of local time it looks the entry up, and if its
    rate is not the cap in force, sets it (set_rate: Pipeline.set_rate), says so on the
    console and writes an audit line. The first tick always does: the operator sees
    which entry a run started under."""

    def __init__(self, schedule: Schedule, set_rate: Callable[[int], None], *,
                 note: Callable[[str], None], audit,
                 now: Callable[[], datetime] | None = None):
        self.schedule, self._set_rate = schedule, set_rate
        self._note, self._audit = note, audit
        self._now = now         # None: local_now, looked up at each call (tests patch it)
        self.rate: int | None = None     # the cap last set; None before the first tick
        self._minute: datetime | None = None

    @classmethod
    def for_run(cls, bwlimit: int | Schedule, set_rate, *, note, audit) -> Applier | None:
        """None for a plain --bwlimit: nothing changes during the run."""
        if not isinstance(bwlimit, Schedule):
            return None
        return cls(bwlimit, set_rate, note=note, audit=audit)

    def tick(self) -> None:
        now = self._now() if self._now is not None else local_now()
        minute = now.replace(second=0, microsecond=0)
        if minute == self._minute:
            return              # entries change on whole minutes: nothing new
        self._minute = minute
        entry = self.schedule.entry_at(now)
        if entry.rate == self.rate:
            return
        self._set_rate(entry.rate)
        self.rate = entry.rate
        self._note(f"fastsync: bandwidth limit now {describe(entry.rate)} "
                   f"(timetable {entry.text})")
        self._audit.event("bwlimit", "set", rate=entry.rate, entry=entry.text)
