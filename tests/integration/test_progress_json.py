"""`--progress json`: one JSON object per line on stdout for scripts; people still get
theirs on stderr."""

import json
import os

from ..conftest import write
from .test_cli import one_line_error


def test_json_lines_follow_the_run_phase_by_phase(fastsync, pair):
    for i in range(4):
        write(pair.src / f"d{i}" / "f.bin", os.urandom(512 * 1024))
    proc = fastsync(*pair.args("--progress", "json", "--stats", "0.2", "--bwlimit", "1M",
                               "--block-size", "128K", "--delete-extras"))
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    phases = [line["phase"] for line in lines]
    assert phases[0] == "scanning" and phases[-1] == "done"
    assert phases.index("copying") < phases.index("mirroring") < phases.index("directories")
    copying = [line for line in lines if line["phase"] == "copying"]
    assert len(copying) >= 3                       # about 2 s of copy, a line per 0.2 s
    done_bytes = [line["bytes_done"] for line in copying]
    assert done_bytes == sorted(done_bytes) and done_bytes[-1] > 0
    assert all(line["bytes_total"] == 4 * 512 * 1024 and line["files_total"] == 4
               for line in copying)
    assert any(line["current"] and line["current"][0]["name"].endswith("f.bin")
               for line in copying)
    done = lines[-1]
    assert (done["status"], done["files_copied"], done["bytes_copied"], done["files_failed"],
            done["pending_files"]) == ("ok", 4, 4 * 512 * 1024, 0, 0)
    assert "fastsync: ok: copied 4 files" in proc.stderr.decode()   # humans keep theirs


def test_quiet_keeps_the_json_lines(fastsync, pair):
    write(pair.src / "f", b"x")
    proc = fastsync(*pair.args("--progress", "json", "-q"))
    assert proc.stderr == b""
    assert json.loads(proc.stdout.decode().splitlines()[-1])["phase"] == "done"


def test_bad_progress_values_are_refused(fastsync, pair):
    one_line_error(fastsync(*pair.args("--progress", "xml"), check=2),
                   "--progress 'xml' is not human or json")
    one_line_error(fastsync(*pair.args("--progress", "json", "--stats", "0"), check=2),
                   "--stats '0' must be a number of seconds")
    assert os.listdir(pair.dst) == []
