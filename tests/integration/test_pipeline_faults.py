"""The pipeline ends, and says why, when a part of it fails at an awkward moment.
(Faults are injected by wrapping the real functions; everything else is real.)"""

import os
import threading
import time
import types

from fastsync import _core, transfer
from fastsync.catalog import Catalog
from fastsync.config import Config
from fastsync.errors import FatalError
from fastsync.progress import Console
from fastsync.run import StopRequest, run

from ..conftest import write


def run_in_thread(config, limit=60.0):
    """run() in a worker thread (signal handlers are not involved); fails the test if
    the run does not end within `limit` seconds instead of hanging the suite."""
    outcome = {}

    def target():
        try:
            outcome["code"] = run(config, Console(quiet=True), StopRequest())
        except BaseException as e:
            outcome["error"] = e
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(limit)
    assert not t.is_alive(), "the run hung"
    return outcome


def test_catalog_failure_while_the_writer_is_slow_ends_the_run(pair, monkeypatch):
    write(pair.src / "a_small", b"x" * 100)
    write(pair.src / "b_big", os.urandom(64 * 1024 * 40))

    def slow_write(*args, **kw):       # a congested share: 2 s per 64 KiB block
        time.sleep(2.0)
        return _core.write_block(*args, **kw)
    slow = types.SimpleNamespace(**{k: getattr(_core, k) for k in dir(_core)
                                    if not k.startswith("__")})
    slow.write_block = slow_write
    monkeypatch.setattr(transfer, "_core", slow)

    def full_catalog(self, *args, **kw):
        raise FatalError("catalog 'c.db': database or disk is full")
    monkeypatch.setattr(Catalog, "record", full_catalog)

    config = Config(src=os.fsencode(pair.src), dst=os.fsencode(pair.dst), db=str(pair.db),
                    log=str(pair.log), block_size=64 * 1024, queue_capacity=4)
    outcome = run_in_thread(config)
    assert "database or disk is full" in str(outcome["error"])
    monkeypatch.undo()
    status = pair.rows("SELECT status FROM runs")[0][0]
    assert status == "failed"
    assert pair.audit()[-1]["op"] == "run" and pair.audit()[-1]["status"] == "failed"
    assert not [p for p in pair.dst.rglob("b_big")]     # never under its final name
