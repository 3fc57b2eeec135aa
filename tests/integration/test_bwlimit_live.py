"""The cap changes during a copy, measured on the bytes written: a --bwlimit timetable
crossing its entries (its clock driven by the test: schedule.local_now), through
Pipeline.set_rate, lowering, raising, switching off, and switching on a run that began
unpaced. Rates are checked over 2 s windows that start 0.5 s after a change, within
0.5x to 1.5x of the cap: the point is that the cap moved, not its last percent."""

import io
import mmap
import os
import threading
import time
from datetime import datetime

from fastsync import run as run_module
from fastsync import schedule
from fastsync.config import Config
from fastsync.errors import EXIT_OK
from fastsync.progress import Console
from fastsync.run import StopRequest, run
from fastsync.schedule import Schedule

from ..conftest import write

K, M = 1024, 1024**2
MONDAY = datetime(2024, 1, 1)
SETTLE, WINDOW = 0.5, 2.0       # seconds after a change before measuring; measured


class Copy:
    """run() in a thread, with the pipeline it builds caught for measuring."""

    def __init__(self, pair, monkeypatch, text: str, clock, on_build=None, **options):
        self.clock = clock
        monkeypatch.setattr(schedule, "local_now", clock)
        self.pipelines = []
        caught = self.pipelines

        class Caught(run_module.Pipeline):
            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                caught.append(self)
                if on_build is not None:
                    on_build(self)
        monkeypatch.setattr(run_module, "Pipeline", Caught)
        self.out = io.StringIO()
        config = Config(src=os.fsencode(pair.src), dst=os.fsencode(pair.dst),
                        db=str(pair.db), log=str(pair.log), bwlimit=Schedule.parse(text),
                        **options)
        self.outcome = {}
        self.thread = threading.Thread(target=self._run, args=(config,), daemon=True)
        self.thread.start()

    def _run(self, config):
        try:
            self.outcome["code"] = run(config, Console(self.out, tty=False), StopRequest())
        except BaseException as e:
            self.outcome["error"] = e

    def written(self) -> int:
        return self.pipelines[0].stats.bytes_written

    def wait_copying(self, limit: float = 20.0):
        deadline = time.monotonic() + limit
        while not (self.pipelines and self.written() > 0):
            assert time.monotonic() < deadline, f"no copying: {self.outcome}"
            time.sleep(0.01)
        return self.pipelines[0]

    def counts(self) -> tuple[int, int, int]:
        """Bytes written to DST, and granted by the read and the write bucket."""
        read, write = self.pipelines[0].pacing._buckets or (None, None)
        return (self.written(), read.granted if read else 0, write.granted if write else 0)

    def rate(self) -> tuple[float, float, float]:
        """counts() per second over WINDOW, after SETTLE: each direction paced on its
        own (the writer could otherwise only seem paced, behind a paced reader)."""
        time.sleep(SETTLE)
        before, start = self.counts(), time.monotonic()
        time.sleep(WINDOW)
        seconds = time.monotonic() - start
        return tuple((b - a) / seconds for a, b in zip(before, self.counts()))

    def finish(self, limit: float = 30.0) -> None:
        self.thread.join(limit)
        assert not self.thread.is_alive(), "the run hung"
        assert self.outcome.get("code") == EXIT_OK, (self.outcome, self.out.getvalue())

    def notes(self) -> list[str]:
        return [line for line in self.out.getvalue().splitlines() if "bandwidth" in line]


def near(measured: tuple[float, ...], cap: int) -> bool:
    return all(0.5 * cap <= m <= 1.5 * cap for m in measured)


def test_a_timetable_moves_the_cap_on_the_wire_on_the_minute(pair, monkeypatch):
    data = os.urandom(24 * M)
    write(pair.src / "big.bin", data)
    now = [MONDAY.replace(hour=8, minute=30)]
    copy = Copy(pair, monkeypatch, "08:00,1M 09:00,4M 10:00,1M 11:00,off",
                lambda: now[0], block_size=64 * K, queue_capacity=8)
    copy.wait_copying()
    rates = {}
    for label, next_hour in (("08:00", 9), ("09:00", 10), ("10:00", 11)):
        rates[label] = copy.rate()
        now[0] = MONDAY.replace(hour=next_hour)         # the minute turns
    off_at, left = time.monotonic(), len(data) - copy.written()
    copy.finish()
    off_rate = left / (time.monotonic() - off_at)

    assert near(rates["08:00"], 1 * M), rates
    assert near(rates["09:00"], 4 * M), rates           # raised
    assert near(rates["10:00"], 1 * M), rates           # lowered: no saved burst
    assert left > 4 * M and off_rate > 8 * M, (left, off_rate)   # off: unpaced
    assert (pair.dst / "big.bin").read_bytes() == data
    assert copy.notes() == [
        "fastsync: bandwidth limit now 1.0 MiB/s (timetable 08:00)",
        "fastsync: bandwidth limit now 4.0 MiB/s (timetable 09:00)",
        "fastsync: bandwidth limit now 1.0 MiB/s (timetable 10:00)",
        "fastsync: bandwidth limit now off (timetable 11:00)"]
    assert [(e["status"], e["rate"], e["entry"]) for e in pair.audit()
            if e["op"] == "bwlimit"] == [("set", 1 * M, "08:00"), ("set", 4 * M, "09:00"),
                                         ("set", 1 * M, "10:00"), ("set", 0, "11:00")]


def direct_io_works(directory) -> bool:
    """Can this filesystem take O_DIRECT writes at all (tmpfs cannot)?"""
    path = os.path.join(directory, "direct-probe")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    try:
        with mmap.mmap(-1, 4096) as page:               # page-aligned
            os.write(fd, page)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        os.unlink(path)


def test_a_cap_comes_on_in_a_run_that_began_unpaced(pair, monkeypatch):
    """The pipeline is built with no cap (no buckets; O_DIRECT on a local disk), then
    the first look at the timetable finds one: the buckets are made mid-run, and their
    slices stay aligned for O_DIRECT (no fallback to buffered writes)."""
    data = os.urandom(12 * M)
    write(pair.src / "big.bin", data)
    looks = []

    def clock():            # 08:30 when the pipeline is built, 09:00 from then on
        looks.append(1)
        return MONDAY.replace(hour=8, minute=30) if len(looks) == 1 else now[0]
    now = [MONDAY.replace(hour=9)]
    copy = Copy(pair, monkeypatch, "08:00,off 09:00,2M 10:00,off", clock,
                block_size=256 * K, queue_capacity=4)
    pipeline = copy.wait_copying()
    direct = pipeline.writing.direct
    rate = copy.rate()
    now[0] = MONDAY.replace(hour=10)
    copy.finish()

    assert near(rate, 2 * M), rate
    assert (pair.dst / "big.bin").read_bytes() == data
    if direct_io_works(pair.root):
        assert direct and pipeline.writing.direct       # never fell back (EINVAL)
    assert copy.notes() == ["fastsync: bandwidth limit now 2.0 MiB/s (timetable 09:00)",
                            "fastsync: bandwidth limit now off (timetable 10:00)"]


def test_a_cap_set_after_a_stop_cannot_hold_anything_up(pair, monkeypatch):
    """Pipeline.set_rate may come from another thread (the API to come) at any moment:
    buckets first made after stop() are cancelled like the others."""
    write(pair.src / "f.bin", os.urandom(1 * M))

    def stopped_then_capped(pipeline):
        pipeline.stop()
        pipeline.set_rate(32 * K)
    copy = Copy(pair, monkeypatch, "08:00,off", lambda: MONDAY.replace(hour=8),
                on_build=stopped_then_capped, block_size=64 * K)
    copy.thread.join(20)
    assert not copy.thread.is_alive()
    buckets = copy.pipelines[0].pacing._buckets
    assert len(buckets) == 2 and all(b.cancelled for b in buckets)
