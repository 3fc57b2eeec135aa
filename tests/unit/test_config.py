"""Sizes, rates and option values: what an operator types and what it means."""

import pytest

from fastsync.config import check_values, format_size, parse_rate, parse_size
from fastsync.errors import UsageError


@pytest.mark.parametrize("text, value", [
    ("4096", 4096), ("0", 0), ("512K", 512 * 1024), ("5M", 5 * 1024**2),
    ("5m", 5 * 1024**2), ("1.5G", int(1.5 * 1024**3)), ("2T", 2 * 1024**4),
    ("5MiB", 5 * 1024**2), ("20MB", 20_000_000), ("1kb", 1000), ("100B", 100),
    (" 7 M ", 7 * 1024**2), (".5K", 512),
])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "M", "5X", "-5M", "5 MBs", "1e3", "five", "5Mbit"])
def test_parse_size_rejects_garbage_with_a_message(text):
    with pytest.raises(UsageError, match="is not a size"):
        parse_size(text)


def test_rates_may_end_in_per_second():
    assert parse_rate("20M/s") == parse_rate("20M") == 20 * 1024**2


def values(**kw):
    base = dict(bwlimit="0", checksum="sha256", block_size="5M", queue_capacity="20",
                streams="2")
    return check_values(**{**base, **kw})


def test_defaults_are_valid():
    assert values() == (0, "sha256", 5 * 1024**2, 20, 2)


def test_rates_with_units():
    assert [values(bwlimit=r)[0] for r in ("0", "20480K", "20M", "2048B", "20MB")] == [
        0, 20 * 1024**2, 20 * 1024**2, 2048, 20_000_000]


@pytest.mark.parametrize("kw, message", [
    (dict(bwlimit="20B"), "--bwlimit '20B' is 20 bytes/s"),
    # a bare number is KiB/s to an rsync user: refused, with both readings spelled out
    (dict(bwlimit="20480"), "--bwlimit '20480' has no unit: rsync reads a bare number as "
                            "KiB/s; write 20480K for KiB/s, or 20480B for bytes/s"),
    (dict(bwlimit="20480/s"), "has no unit"),
    (dict(bwlimit="0.5"), "--bwlimit '0.5' is less than 1 byte/s; use 0 (no limit)"),
    (dict(bwlimit="0.4B"), "is less than 1 byte/s"),
    (dict(bwlimit="5P"), "--bwlimit '5P' is not a size"),
    (dict(bwlimit="2000T"), "--bwlimit"),
    (dict(checksum="crc32"), "--checksum 'crc32' is not supported"),
    (dict(block_size="1K"), "--block-size '1K' is out of range"),
    (dict(block_size="2G"), "--block-size '2G' is out of range"),
    (dict(block_size="lots"), "--block-size 'lots' is not a size"),
    (dict(queue_capacity="0"), "--queue-capacity 0 is out of range"),
    (dict(queue_capacity="2.5"), "--queue-capacity '2.5' is not a whole number"),
    (dict(queue_capacity="many"), "is not a whole number"),
    (dict(queue_capacity="9000", block_size="1G"), "more than half of this machine's memory"),
    (dict(streams="0"), "--streams 0 is out of range; use 1 to 64 or auto"),
    (dict(streams="65"), "--streams 65 is out of range"),
    (dict(streams="two"), "--streams 'two' is not a whole number"),
    (dict(streams="\u0661"), "is not a whole number"),             # Arabic-Indic one
    (dict(block_size="\u0663M"), "is not a size"),                 # Arabic-Indic three
    (dict(queue_capacity="\u0662\u0660"), "is not a whole number"),
    (dict(bwlimit="\u0662\u0660M"), "is not a size"),
    (dict(streams="16", queue_capacity="1", block_size="1G"), "more than half of this"),
])
def test_bad_values_are_named(kw, message):
    with pytest.raises(UsageError) as e:
        values(**kw)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_checksum_names_are_case_insensitive():
    assert values(checksum="BLAKE2b")[1] == "blake2b"


def test_format_size():
    assert [format_size(n) for n in (0, 1023, 1024, 5 * 1024**2, 3 * 1024**4)] == [
        "0 B", "1023 B", "1.0 KiB", "5.0 MiB", "3.0 TiB"]


@pytest.mark.parametrize("kw", [dict(block_size="9" * 400), dict(bwlimit="9" * 400),
                                dict(bwlimit="1." + "5" * 40 + "M"),
                                dict(queue_capacity="9" * 5000), dict(streams="9" * 5000)])
def test_absurdly_long_numbers_are_usage_errors_not_crashes(kw):
    with pytest.raises(UsageError):
        values(**kw)


def test_a_cgroups_reclaimable_page_cache_is_not_counted_as_used(tmp_path):
    """A container whose last copy left its page cache near the limit can still run:
    inactive file pages are given back on demand (v1 and v2 layouts, read from files)."""
    from fastsync.memory import _room_along
    v2 = tmp_path / "v2" / "job"
    v2.mkdir(parents=True)
    (v2 / "memory.max").write_text("2147483648\n")
    (v2 / "memory.current").write_text("2000000000\n")
    (v2 / "memory.stat").write_text("anon 100000000\ninactive_file 1800000000\n")
    assert _room_along(str(tmp_path / "v2"), "/job", "memory.max", "memory.current",
                       "inactive_file") == [2147483648 - 200000000]
    v1 = tmp_path / "v1" / "job"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text("1073741824\n")
    (v1 / "memory.usage_in_bytes").write_text("900000000\n")
    (v1 / "memory.stat").write_text("cache 850000000\ntotal_inactive_file 800000000\n")
    (tmp_path / "v1" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert _room_along(str(tmp_path / "v1"), "/job", "memory.limit_in_bytes",
                       "memory.usage_in_bytes", "total_inactive_file") == [
        1073741824 - 100000000]
