"""--streams: 1 to 64, or auto (the default: the pipeline picks by DST's filesystem), and
the summary says how many streams the run used."""

import pytest

import re

from fastsync import cli, memory
from fastsync.config import check_values
from fastsync.destination import STREAMS_LOCAL, STREAMS_NETWORK
from fastsync.errors import UsageError

from ..conftest import ROOT, write

GiB = 1024**3


def streams(text, **kw):
    base = dict(bwlimit="0", checksum="sha256", block_size="5M", queue_capacity="20")
    return check_values(**{**base, **kw}, streams=text)[4]


@pytest.mark.parametrize("text, value", [("auto", None), (" AUTO ", None), ("1", 1),
                                         ("16", 16), ("64", 64)])
def test_accepted_values(text, value):
    assert streams(text) == value


@pytest.mark.parametrize("text, message", [
    ("0", "--streams 0 is out of range; use 1 to 64 or auto"),
    ("65", "--streams 65 is out of range; use 1 to 64 or auto"),
    ("two", "--streams 'two' is not a whole number (1 to 64) or auto"),
    ("", "--streams '' is not a whole number (1 to 64) or auto"),
])
def test_refused_values_name_the_range(text, message):
    with pytest.raises(UsageError) as e:
        streams(text)
    assert str(e.value) == message


def test_auto_is_the_default_and_means_none(pair):
    config_ = cli._config(cli._parse(pair.args()))
    assert config_.streams is None
    assert cli._config(cli._parse(pair.args("--streams", "5"))).streams == 5


def test_the_memory_check_assumes_the_most_auto_may_pick(monkeypatch):
    most = max(STREAMS_LOCAL, STREAMS_NETWORK)
    assert most > 2
    monkeypatch.setattr(memory, "physical_memory", lambda: 2 * (2 + 2 * 2) * GiB)
    assert streams("2", queue_capacity="2", block_size="1G") == 2      # just fits
    with pytest.raises(UsageError, match=rf"with {most} streams \(the most --streams "
                                         rf"auto picks\) needs {2 + 2 * most}\.0 GiB"):
        streams("auto", queue_capacity="2", block_size="1G")


def test_the_help_and_readme_give_the_numbers_auto_picks():
    usage = " ".join(cli.__doc__.split())
    assert (f"or auto: {STREAMS_LOCAL} on a local disk, {STREAMS_NETWORK} on NFS/SMB/FUSE"
            f" [default: auto]") in usage
    row = re.search(r"\| `--streams N` \|.*", (ROOT / "README.md").read_text()).group(0)
    assert f"{STREAMS_LOCAL} when DST is on a local disk" in row
    assert f"{STREAMS_NETWORK} when it is on NFS" in row
    assert f"the memory check assumes {max(STREAMS_LOCAL, STREAMS_NETWORK)}" in row


@pytest.mark.parametrize("extra, said", [
    ((), rf"; streams ({STREAMS_LOCAL}|{STREAMS_NETWORK}) \(auto\)\n"),  # by the filesystem
    (("--streams", "3"), r"; streams 3\n")])
def test_the_summary_says_how_many_streams_were_used(pair, capsys, extra, said):
    write(pair.src / "f", b"x")
    assert cli.main(pair.args(*extra)) == 0
    err = capsys.readouterr().err
    assert re.search(r"fastsync: ok: copied 1 files .*" + said, err), err
