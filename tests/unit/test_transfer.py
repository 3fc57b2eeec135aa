"""One file at the destination: temp names, hostile leftovers, odd sources, precision."""

import errno
import os

import pytest

from fastsync.errors import SourceChanged, UsageError, describe
from fastsync.probe import granularity, probe
from fastsync.transfer import is_temp_name, open_source, open_temp, temp_path


def test_temp_names_are_fixed_per_target_and_short():
    a = temp_path(b"/d/" + b"x" * 255)
    assert a == temp_path(b"/d/" + b"x" * 255)            # a killed run's leftover is reused
    assert a != temp_path(b"/d/" + b"y" * 255)
    assert os.path.dirname(a) == b"/d" and len(os.path.basename(a)) == 30
    assert is_temp_name(os.path.basename(a))
    assert is_temp_name(b".fastsync-probe-123.tmp")
    assert not is_temp_name(b".fastsync-0123.tmp") and not is_temp_name(b"data.tmp")


def test_a_symlink_at_the_temp_name_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch")
    tmp = tmp_path / ".fastsync-0123456789abcdef.tmp"
    os.symlink(victim, tmp)
    fd = open_temp(os.fsencode(tmp), os.fsencode(tmp_path / "target"))
    os.write(fd, b"new data")
    os.close(fd)
    assert victim.read_bytes() == b"do not touch"
    assert not tmp.is_symlink() and tmp.read_bytes() == b"new data"


def test_a_source_that_became_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "was-a-file")
    with pytest.raises(SourceChanged, match="no longer a regular file"):
        open_source(os.fsencode(tmp_path / "was-a-file"))


def test_a_source_that_became_a_symlink_is_not_followed(tmp_path):
    (tmp_path / "target").write_bytes(b"x")
    os.symlink(tmp_path / "target", tmp_path / "link")
    with pytest.raises(OSError) as e:
        open_source(os.fsencode(tmp_path / "link"))
    assert e.value.errno == errno.ELOOP
    # said as what happened, not as "Too many levels of symbolic links"
    assert describe(e.value) == ("ELOOP: is now a symbolic link (it was a file when "
                                 "scanned); the next scan takes it as a link")


@pytest.mark.parametrize("wrote, read, window", [
    (1_700_000_001_123_456_789, 1_700_000_001_123_456_789, 1),        # ext4, tmpfs
    (1_700_000_001_123_456_789, 1_700_000_001_123_456_700, 100),      # SMB ticks
    (1_700_000_001_123_456_789, 1_700_000_001_123_456_000, 1000),     # microseconds
    (1_700_000_001_123_456_789, 1_700_000_001_000_000_000, 10**9),    # whole seconds
    (1_700_000_001_123_456_789, 1_700_000_000_000_000_000, 2 * 10**9),  # FAT
    (1_700_000_001_123_456_789, 1_000_000_000_000_000_000, None),     # not kept at all
])
def test_mtime_granularity(wrote, read, window):
    assert granularity(wrote, read) == window


def test_probe_leaves_nothing_behind(tmp_path):
    traits = probe(os.fsencode(tmp_path))
    assert list(tmp_path.iterdir()) == []
    # ext4 and tmpfs keep every name, tell case apart, hold links, keep nanoseconds,
    # and (ext4) hold times from 1901-12-13 on
    assert (traits.window, traits.folds_case, traits.changed, traits.links) == (1, False, (), None)
    assert traits.times is None or traits.times[0] <= -2**31 * 10**9


def test_probe_of_a_missing_destination_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="is not writable"):
        probe(os.fsencode(tmp_path / "missing"))


def test_errors_are_described_in_one_line():
    from fastsync.errors import describe
    assert describe(OSError(errno.ENOSPC, "No space left on device")) == \
        "ENOSPC: No space left on device"
    assert describe(SourceChanged(0, "source changed while it was being copied")) == \
        "source changed while it was being copied"
    assert describe(RuntimeError()) == "RuntimeError"
