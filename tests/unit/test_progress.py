"""What the console prints: formats, rates, and the terminal / log distinction."""

import io

from fastsync.pipeline import TransferStats
from fastsync.progress import Console, RateMeter, format_duration
from fastsync.scan import ScanStats


def test_format_duration():
    assert [format_duration(s) for s in (None, 0, 59.4, 61, 3600 * 5 + 120, 86400 * 3)] == [
        "--", "0s", "59s", "1m01s", "5h02m", "3d00h"]


def test_rate_meter_uses_its_window():
    m = RateMeter(window=2.0)
    assert m.rate() is None
    for t in range(10):
        m.add(float(t), t * 100 if t < 5 else 500 + (t - 5) * 1000)
    assert m.rate() == 1000.0


def transfer_stats():
    s = TransferStats(files_total=10, bytes_total=10 * 1024**2, bytes_before=5 * 1024**3)
    s.files_done, s.bytes_written = 4, 4 * 1024**2
    s.current = ("dir/big.bin", 2 * 1024**2, 1024**2)
    return s


def test_log_output_is_plain_periodic_lines():
    out = io.StringIO()
    c = Console(out, tty=False, interval=10)
    stats = transfer_stats()
    c.transfer(stats, now=0.0)
    c._next = 0.0
    c.transfer(stats, now=1.0)        # due
    c.transfer(stats, now=2.0)        # not due: at most one line per interval
    text = out.getvalue()
    assert text.count("\n") == 1
    assert "\x1b" not in text and "\r" not in text
    assert "4 of 10 files" in text and "now: dir/big.bin: 50% of 2.0 MiB" in text
    assert "overall 5.0 GiB" in text


def test_terminal_output_refreshes_in_place():
    out = io.StringIO()
    c = Console(out, tty=True, interval=0.25)
    c.transfer(transfer_stats(), now=0.0)
    c.transfer(transfer_stats(), now=1.0)
    text = out.getvalue()
    assert "\x1b[2K" in text and "\x1b[1A" in text


def test_quiet_prints_nothing_but_errors():
    out = io.StringIO()
    c = Console(out, quiet=True, tty=False)
    c.scan(ScanStats(), now=100.0)
    c.note("a note")
    c.error("an error")
    assert out.getvalue() == "an error\n"


def test_scan_status_shows_counts_and_pending():
    out = io.StringIO()
    c = Console(out, tty=True)
    s = ScanStats(src_entries=1234, src_files=1200, src_bytes=3 * 1024**3, dst_entries=10,
                  matched_files=200, matched_bytes=1024**3)
    c.scan(s, now=0.0)
    text = out.getvalue()
    assert "SRC 1,234 entries, 3.0 GiB" in text and "pending so far 1,000 files, 2.0 GiB" in text


def test_what_the_run_waits_for_replaces_the_current_file_at_once():
    out = io.StringIO()
    c = Console(out, tty=False, interval=10)
    stats = transfer_stats()
    c.waiting("dst", "waiting for DST /mnt/b: ENOTCONN")   # shown now, not in 10 s
    stats.waiting["src"] = "waiting for SRC /mnt/a: EIO"
    c.transfer(stats, now=1.0)
    assert "; waiting for DST /mnt/b: ENOTCONN; waiting for SRC /mnt/a: EIO" in out.getvalue()
    assert "now: dir/big.bin" not in out.getvalue()
    c.waiting("dst", None)                # one share back: the other is still shown
    c._next, stats.waiting = 0.0, {"src": "waiting for SRC /mnt/a: EIO"}
    c.transfer(stats, now=2.0)
    assert out.getvalue().splitlines()[-1].count("waiting for") == 1
