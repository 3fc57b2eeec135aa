"""--bwlimit timetables (schedule.py) and the live rate change under them
(TokenBucket.set_rate, with a fake clock as in test_core.py, and with real sleepers)."""

import threading
import time
from datetime import datetime

import pytest

from fastsync import _core
from fastsync.config import check_values, parse_bwlimit
from fastsync.errors import UsageError
from fastsync.schedule import Applier, Schedule

M, K = 1024**2, 1024


def at(day: int, hh: int, mm: int, ss: int = 0) -> datetime:
    """Day 0 = Monday 1 January 2024, 7 = the Monday after."""
    return datetime(2024, 1, 1 + day, hh, mm, ss)


# ------------------------------------------------------------------------ parsing --

def test_a_plain_rate_stays_a_number_with_its_checks():
    assert parse_bwlimit("20M") == 20 * M
    assert parse_bwlimit("0") == parse_bwlimit("off") == parse_bwlimit(" OFF ") == 0
    with pytest.raises(UsageError, match="'20480' has no unit"):
        parse_bwlimit("20480")


def test_a_timetable_comes_back_from_check_values_as_a_schedule():
    rate = check_values(bwlimit="08:00,10M 18:00,off", checksum="sha256", block_size="5M",
                        queue_capacity="20", streams="2")[0]
    assert isinstance(rate, Schedule)
    assert [(e.text, e.rate) for e in rate.entries[:2]] == [("08:00", 10 * M),
                                                             ("18:00", 0)]


def test_a_daily_timetable_wraps_around_midnight():
    s = Schedule.parse("08:00,10M 18:00,off")
    assert len(s.entries) == 14                        # each daily entry on all 7 days
    assert s.rate_at(at(2, 7, 59)) == 0                # still last evening's "off"
    assert s.rate_at(at(2, 8, 0)) == 10 * M            # on the minute
    assert s.rate_at(at(2, 17, 59, 59)) == 10 * M
    assert s.rate_at(at(2, 18, 0)) == 0
    assert s.rate_at(at(0, 0, 0)) == 0                 # Monday 00:00: Sunday's 18:00


def test_day_forms_wrap_around_the_week():
    s = Schedule.parse("Sat-00:00,off Mon-08:00,10M")  # in any order
    assert [e.text for e in s.entries] == ["Mon-08:00", "Sat-00:00"]
    assert s.rate_at(at(0, 7, 59)) == 0                # Monday morning: still Saturday's
    assert s.rate_at(at(0, 8, 0)) == 10 * M
    assert s.rate_at(at(4, 23, 59)) == 10 * M          # Friday night
    assert s.rate_at(at(5, 0, 0)) == 0
    assert s.rate_at(at(6, 23, 59)) == 0               # Sunday
    assert s.rate_at(at(7, 8, 0)) == 10 * M            # and again the next Monday


def test_daily_and_day_entries_mix_as_in_rclone():
    s = Schedule.parse("08:00,10M 18:00,1M Sat-09:00,off")
    assert s.rate_at(at(5, 8, 30)) == 10 * M           # Saturday: daily 08:00 first
    assert s.rate_at(at(5, 12, 0)) == 0                # then Saturday's own entry
    assert s.rate_at(at(5, 18, 0)) == 1 * M            # until the daily 18:00
    assert s.rate_at(at(3, 12, 0)) == 10 * M           # a Thursday: daily entries only


def test_one_entry_holds_all_the_time():
    s = Schedule.parse("12:30,512K")
    assert {s.rate_at(at(d, h, 0)) for d in range(7) for h in range(24)} == {512 * K}


@pytest.mark.parametrize("text, rate", [
    ("mon-08:00,1M", 1 * M), ("MONDAY-08:00,1M", 1 * M), ("Mon-08:00,OFF", 0),
    ("Mon-08:00,0", 0), ("Mon-08:00,20MB/s", 20_000_000), ("Mon-08:00,1.5M", int(1.5 * M)),
])
def test_day_names_and_rates_are_read_as_rclone_and_a_plain_bwlimit_do(text, rate):
    assert Schedule.parse(text).rate_at(at(0, 8, 0)) == rate


@pytest.mark.parametrize("text, message", [
    ("25:00,1M", "--bwlimit entry '25:00,1M': '25:00' is not a time of day (HH:MM, "
                 "00:00 to 23:59)"),
    ("08:60,1M", "'08:60' is not a time of day"),
    ("8:00,1M", "'8:00' is not a time of day"),
    ("08:00,1M Mnd-09:00,2M", "--bwlimit entry 'Mnd-09:00,2M': 'Mnd' is not a day (Mon, "
                              "Tue, Wed, Thu, Fri, Sat, Sun)"),
    ("-09:00,2M", "'' is not a day"),
    ("08:00,1M 08:00,2M", "--bwlimit entry '08:00,2M': 08:00 is already set by '08:00,1M'"),
    ("08:00,1M Tue-08:00,2M", "--bwlimit entry 'Tue-08:00,2M': Tue 08:00 is already set "
                              "by '08:00,1M'"),
    ("Tue-08:00,2M tuesday-08:00,off", "Tue 08:00 is already set by 'Tue-08:00,2M'"),
    ("08:00,10", "--bwlimit entry '08:00,10': rate '10' has no unit: rsync reads a bare "
                 "number as KiB/s; write 10K for KiB/s"),
    ("08:00,10B", "--bwlimit entry '08:00,10B': rate '10B' is 10 bytes/s; use 0"),
    ("08:00,fast", "rate 'fast' is not a size"),
    ("08:00,10M:1M", "--bwlimit entry '08:00,10M:1M': one rate, please"),
    ("08:00", "--bwlimit '08:00' is not a size"),    # no comma: a plain rate
    ("08:00,", "--bwlimit entry '08:00,' is not [Day-]HH:MM,RATE"),
    ("08:00,1M,2M", "is not [Day-]HH:MM,RATE"),
    ("08:00,1M 10M", "--bwlimit entry '10M' is not [Day-]HH:MM,RATE"),
    (",", "--bwlimit entry ',' is not"),
])
def test_bad_timetables_are_refused_in_one_line_naming_the_entry(text, message):
    with pytest.raises(UsageError) as e:
        parse_bwlimit(text)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_entries_are_kept_in_week_order_with_their_text():
    s = Schedule.parse("  Sun-22:00,1M   Mon-06:00,2M ")
    assert str(s) == "Sun-22:00,1M Mon-06:00,2M"
    assert [(e.text, e.minute) for e in s.entries] == [("Mon-06:00", 360),
                                                       ("Sun-22:00", 6 * 1440 + 1320)]


# ------------------------------------------------------------------------ applier --

class Recorder:
    def __init__(self):
        self.rates, self.notes, self.events = [], [], []

    def event(self, op, status, **fields):
        self.events.append((op, status, fields))


def applier(text, clock):
    r = Recorder()
    a = Applier(Schedule.parse(text), r.rates.append, note=r.notes.append, audit=r,
                now=lambda: clock[0])
    return a, r


def test_the_applier_sets_the_rate_at_startup_and_on_the_minute_only_when_it_changes():
    clock = [at(0, 7, 58, 30)]
    a, r = applier("08:00,10M 08:01,10M 18:00,off", clock)
    a.tick()                                           # startup: always said
    assert r.rates == [0]
    assert r.notes == ["fastsync: bandwidth limit now off (timetable 18:00)"]
    assert r.events == [("bwlimit", "set", {"rate": 0, "entry": "18:00"})]
    clock[0] = at(0, 7, 59, 59)
    a.tick()
    clock[0] = at(0, 8, 0, 0)
    a.tick()
    a.tick()
    assert r.rates == [0, 10 * M]
    assert r.notes[-1] == "fastsync: bandwidth limit now 10.0 MiB/s (timetable 08:00)"
    assert r.events[-1] == ("bwlimit", "set", {"rate": 10 * M, "entry": "08:00"})
    clock[0] = at(0, 8, 1, 0)                          # an entry, same rate: nothing said
    a.tick()
    assert len(r.rates) == len(r.notes) == len(r.events) == 2


def test_the_applier_follows_the_clock_backwards_too():
    """A daylight-saving change (or a corrected clock) going back over an entry."""
    clock = [at(2, 18, 0, 10)]
    a, r = applier("08:00,10M 18:00,1M", clock)
    a.tick()
    clock[0] = at(2, 17, 59, 50)
    a.tick()
    assert r.rates == [1 * M, 10 * M]


# ----------------------------------------------------------------- bucket set_rate --

def test_set_rate_repays_what_is_owed_at_the_new_rate():
    b = _core.TokenBucket(1000, burst=0, start_ns=0)
    assert b.reserve(1000, 0) == 1_000_000_000          # 1 s owed at 1000 B/s
    b.set_rate(2000, now_ns=0)
    assert b.rate == 2000
    assert b.reserve(1000, 0) == 1_000_000_000          # 0.5 s + 0.5 s at 2000 B/s
    b.set_rate(500, now_ns=500_000_000)                 # half of it paid: 1000 B owed
    assert b.reserve(500, 500_000_000) == 3_000_000_000  # 2 s for those, 1 s for these
    assert b.granted == 2500


def test_set_rate_lets_no_saved_credit_through():
    # Lowering: the credit earned at 1 MB/s would be 10 kB, 10 s of traffic at 1 kB/s.
    b = _core.TokenBucket(1_000_000, burst=10_000, start_ns=0)
    b.set_rate(1000, now_ns=3600 * 10**9)
    assert b.reserve(1000, 3600 * 10**9) == 1_000_000_000
    # Raising after an idle hour: still no burst, the first bytes wait.
    b = _core.TokenBucket(1000, burst=10_000, start_ns=0)
    b.set_rate(1_000_000, now_ns=3600 * 10**9)
    assert b.reserve(10_000, 3600 * 10**9) == 10_000_000


def test_set_rate_0_is_unlimited_and_a_cap_after_it_starts_empty():
    b = _core.TokenBucket(1000, start_ns=0)
    b.set_rate(0, now_ns=0)
    assert b.rate == 0 and b.burst == 0
    assert b.reserve(10**12, 0) == 0                    # a terabyte, no wait: off
    assert b.slice > 1 << 40                            # copy loops take whole blocks
    b.set_rate(1000, now_ns=5 * 10**9)
    assert b.reserve(500, 5 * 10**9) == 500_000_000     # no debt, no credit from "off"
    assert b.granted == 10**12 + 500


def test_set_rate_follows_the_slice_and_burst_it_was_made_with():
    auto = _core.TokenBucket(1 << 20)
    auto.set_rate(20 << 20)
    assert auto.slice == auto.burst == (20 << 20) // 80
    auto.set_rate(20_000_000)                           # slices stay 4 KiB-aligned
    assert auto.slice == 249856 and auto.slice % 4096 == 0
    given = _core.TokenBucket(1 << 20, burst=777, slice=1000)
    given.set_rate(5 << 20)
    assert (given.slice, given.burst) == (1000, 777)
    with pytest.raises(ValueError):
        given.set_rate(-1)


def sleeper(bucket, n):
    t = threading.Thread(target=bucket.consume, args=(n,), daemon=True)
    t.start()
    time.sleep(0.1)                                     # asleep by now
    return t


def test_a_sleeper_takes_a_higher_rate_at_once():
    b = _core.TokenBucket(1024, burst=0)
    started = time.monotonic()
    t = sleeper(b, 1024 * 3600)                         # an hour at 1 KiB/s
    b.set_rate(1 << 30)
    t.join(5)
    assert not t.is_alive() and time.monotonic() - started < 2


def test_a_sleeper_takes_a_lower_rate_and_then_off():
    b = _core.TokenBucket(1 << 20, burst=0)
    t = sleeper(b, 200 * 1024)                          # 0.2 s at 1 MiB/s
    b.set_rate(1024)                                    # the rest: ~100 s at 1 KiB/s
    t.join(1.0)
    assert t.is_alive()
    b.set_rate(0)
    t.join(2)
    assert not t.is_alive()


def test_cancel_still_ends_a_sleeper_after_a_change():
    b = _core.TokenBucket(1 << 20, burst=0)
    t = sleeper(b, 100 << 20)
    b.set_rate(1024)
    b.cancel()
    t.join(2)
    assert not t.is_alive()
