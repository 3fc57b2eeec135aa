"""The audit log on real files: every line one whole JSON record with the documented
fields, exact paths, when lines reach the file, a log that cannot be written, and a log
whose last line an earlier run left torn."""

import json
import os
import re
import subprocess

import pytest

from fastsync.audit import AuditLog
from fastsync.errors import FatalError

# README, "Audit log".
FIELDS = {"ts", "run", "op", "status", "src", "dst", "size", "hash", "error", "retry",
          "mode", "version", "copied", "bytes", "failed", "deleted", "kind", "side",
          "root", "seconds"}
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")


@pytest.fixture
def log(tmp_path):
    return tmp_path / "audit.log"


def records(path) -> list[dict]:
    """Lines as any JSON-lines reader takes them: strict UTF-8, split on newlines."""
    text = path.read_bytes().decode("utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_every_line_is_a_json_record_with_the_documented_fields(log):
    audit = AuditLog(str(log))
    audit.run_id = 7
    audit.event("run", "started", src=b"/mnt/a", dst=b"/mnt/b", mode="scan", version="1.0")
    audit.event("copy", "ok", src=b"/mnt/a/f", dst=b"/mnt/b/f", size=12,
                hash="sha256:" + "ab" * 32)
    audit.event("copy", "failed", src=b"/mnt/a/g", dst=b"/mnt/b/g", size=3,
                error="EISDIR: Is a directory", retry=None)
    audit.event("outage", "ended", root=b"/mnt/b", side="DST", seconds=4)
    audit.event("delete", "ok", dst=b"/mnt/b/x", kind="file")
    audit.event("run", "ok", copied=1, bytes=12, failed=1, deleted=1)
    audit.close()
    lines = records(log)
    assert len(lines) == 6
    for line in lines:
        assert set(line) <= FIELDS
        assert TS.match(line["ts"]) and line["run"] == 7
        assert list(line)[:4] == ["ts", "run", "op", "status"]
    assert lines[1] == {"ts": lines[1]["ts"], "run": 7, "op": "copy", "status": "ok",
                        "src": "/mnt/a/f", "dst": "/mnt/b/f", "size": 12,
                        "hash": "sha256:" + "ab" * 32}
    assert "retry" not in lines[2]           # absent fields are omitted, not null
    assert lines[3]["seconds"] == 4 and lines[3]["root"] == "/mnt/b"


@pytest.mark.parametrize("path", [
    b"/plain/ascii", "/ünïcode/名前".encode(), b"/latin1/caf\xe9", b"/bad/\xff\xfe",
    b"/surrogate/\xed\xa0\x80", b"/nl/a\nb\rc", b"/quote/\"\\'", b"/literal/\\udcff",
    "/separators/a\u2028b\u2029c\x85d\x1ce\x0bf".encode()])
def test_paths_round_trip_exactly_one_line_per_record(log, path):
    audit = AuditLog(str(log))
    audit.event("copy", "ok", src=path, dst=path + b".dst")
    audit.event("copy", "ok", src=b"/after")
    audit.close()
    first, second = records(log)
    assert os.fsencode(first["src"]) == path
    assert os.fsencode(first["dst"]) == path + b".dst"
    assert second["src"] == "/after"


def test_lines_reach_the_file_on_flush_and_close(log):
    audit = AuditLog(str(log))
    audit.event("copy", "ok", src=b"/a")
    assert log.read_bytes() == b""               # batched until the caller flushes
    audit.flush()
    assert [r["src"] for r in records(log)] == ["/a"]
    audit.event("copy", "ok", src=b"/b")
    audit.close()
    assert [r["src"] for r in records(log)] == ["/a", "/b"]


def test_a_long_batch_goes_out_by_itself_in_whole_lines(log):
    audit = AuditLog(str(log))
    for i in range(2000):
        audit.event("copy", "ok", src=b"/src/%05d/" % i + b"x" * 100)
    written = log.read_bytes()
    assert written and written.endswith(b"\n")   # never half a record on disk
    audit.close()
    assert [r["src"][5:10] for r in records(log)] == ["%05d" % i for i in range(2000)]


def test_runs_append(log):
    for run in (1, 2):
        audit = AuditLog(str(log))
        audit.run_id = run
        audit.event("run", "started")
        audit.close()
    assert [r["run"] for r in records(log)] == [1, 2]


def test_a_log_that_cannot_be_opened_is_an_os_error(tmp_path):
    """run.py turns it into a one-line FatalError naming the log."""
    with pytest.raises(OSError):
        AuditLog(str(tmp_path / "no-such-dir" / "audit.log"))


def test_a_log_that_cannot_be_written_stops_the_run():
    audit = AuditLog("/dev/full")            # every write: ENOSPC
    audit.event("copy", "ok", src=b"/a")
    with pytest.raises(FatalError, match="cannot write the audit log '/dev/full': "
                                         "No space left on device"):
        audit.flush()
    with pytest.raises(FatalError):
        for i in range(2000):                # a long batch fails as it goes out
            audit.event("copy", "ok", src=b"/src/" + b"x" * 100)
    audit.close()                            # the failure was reported already


def test_a_torn_last_line_is_left_alone_and_the_next_record_starts_a_new_line(log):
    torn = b'{"ts":"2026-01-01T00:00:00.000000Z","run":1,"op":"copy","status":"ok","sr'
    log.write_bytes(b'{"run":1,"op":"run","status":"started"}\n' + torn)
    audit = AuditLog(str(log))
    audit.run_id = 2
    audit.event("run", "started", src=b"/mnt/a")
    audit.close()
    content = log.read_bytes()
    assert content.startswith(b'{"run":1,"op":"run","status":"started"}\n' + torn + b"\n")
    lines = content.decode().splitlines()
    assert lines[1] == torn.decode()
    parsed = [json.loads(line) for i, line in enumerate(lines) if i != 1]
    assert parsed[0]["status"] == "started" and parsed[0]["run"] == 1
    assert parsed[1]["run"] == 2 and parsed[1]["src"] == "/mnt/a"


@pytest.mark.parametrize("before", [None, b"", b'{"run":1}\n'])
def test_a_whole_log_gets_no_blank_line(log, before):
    if before is not None:
        log.write_bytes(before)
    audit = AuditLog(str(log))
    audit.event("run", "started")
    audit.close()
    assert b"\n\n" not in log.read_bytes() and not log.read_bytes().startswith(b"\n")
    assert records(log)[-1]["op"] == "run"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may read any file")
def test_a_log_that_may_be_appended_to_but_not_read_is_used(log):
    log.write_bytes(b'{"run":1}\n')
    log.chmod(0o200)
    audit = AuditLog(str(log))
    audit.event("run", "started")
    audit.close()
    log.chmod(0o600)
    assert [r.get("op") for r in records(log)] == [None, "run"]


@pytest.fixture
def tiny_fs(tmp_path):
    """A real 64 KiB tmpfs, to fill up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_a_full_disk_stops_the_run_and_the_next_run_starts_on_a_new_line(tiny_fs):
    log = tiny_fs / "audit.log"
    filler = tiny_fs / "filler"
    filler.write_bytes(b"\0" * (60 << 10))
    audit = AuditLog(str(log))
    with pytest.raises(FatalError, match="No space left on device"):
        for i in range(1000):
            audit.event("copy", "ok", src=b"/src/%04d/" % i + b"x" * 200)
            audit.flush()
    audit.close()
    filler.unlink()                          # the operator makes room
    audit = AuditLog(str(log))
    audit.event("run", "started", src=b"/next")
    audit.close()
    lines = log.read_bytes().decode().splitlines()
    assert len(lines) > 2
    for line in lines[:-2]:
        assert json.loads(line)["op"] == "copy"
    try:
        json.loads(lines[-2])                # the last record of the full disk: whole, or
    except json.JSONDecodeError:             # torn, but alone on its line
        pass
    assert json.loads(lines[-1])["src"] == "/next"
