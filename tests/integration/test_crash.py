"""A crash (a bug: an exception that is not a FastsyncError) in the pipeline or in a
phase: its own exit status, 70, not the 1 that means "some files failed"; the run's row
finished as `failed`; an audit line saying so; one line naming the error first, then the
traceback for a bug report; and what was copied before it stays recorded."""

import hashlib

import pytest

from fastsync import cli
from fastsync.catalog import Catalog, from_db

from ..conftest import write

FILES = 300         # more than one batch (256 files): the first is recorded


def crash_on(monkeypatch, method: str, after: int = 0) -> None:
    """Catalog.<method> raises RuntimeError from its (after+1)-th call on."""
    original = getattr(Catalog, method)
    calls = []

    def broken(self, *args, **kw):
        calls.append(1)
        if len(calls) > after:
            raise RuntimeError("injected bug")
        return original(self, *args, **kw)
    monkeypatch.setattr(Catalog, method, broken)


@pytest.mark.parametrize("method, after, copied", [
    ("record", 1, "some"),         # in the finisher thread, after one batch was recorded
    ("record_dirs", 0, "all"),     # in the main thread, in the directories phase
    ("finish_scan", 0, "none"),    # in the main thread, at the end of the scan
])
def test_a_crash_exits_70_and_records_the_run_as_failed(pair, monkeypatch, capsys, method,
                                                        after, copied):
    for i in range(FILES):
        write(pair.src / f"d{i % 3}" / f"f{i:03d}", b"%d" % i * (i % 50))
    crash_on(monkeypatch, method, after)

    assert cli.main(pair.args()) == 70

    err = capsys.readouterr().err
    crash = "fastsync: internal error: RuntimeError: injected bug\n"
    assert crash in err
    assert "Traceback" in err and err.index(crash) < err.index("Traceback")
    (run,) = pair.rows("SELECT * FROM runs")
    assert run["status"] == "failed" and run["finished"] is not None
    last = pair.audit()[-1]
    assert (last["op"], last["status"]) == ("run", "failed")
    assert "RuntimeError: injected bug" in last["error"]
    synced = pair.rows("SELECT src_path, dst_path, hash FROM files"
                       " WHERE status = 'synced' AND kind = 'file'")
    for row in synced:          # what is recorded is true
        data = open(from_db(row["dst_path"]), "rb").read()
        assert data == open(from_db(row["src_path"]), "rb").read()
        assert row["hash"] == hashlib.sha256(data).hexdigest()
    assert run["files_copied"] == len(synced)
    assert {"none": len(synced) == 0, "some": 0 < len(synced) < FILES,
            "all": len(synced) == FILES}[copied]
