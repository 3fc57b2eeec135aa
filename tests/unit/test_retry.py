"""Retrying under the policy, on real directories: backoff bounds, which errors are tried
again and which are not, reopening after ESTALE, stopping, and waiting out a root that
does not answer (a real directory renamed away, a probe that fails, a fake that never
comes back)."""

import errno
import json
import os
import threading

import pytest

from fastsync import faults
from fastsync.audit import AuditLog
from fastsync.errors import FatalError, Interrupted, Restart
from fastsync.retry import COUNTS, Policy, Retrier, Root

FAST = Policy(retries=3, delay=0.001, outage=30.0)


@pytest.fixture
def plan():
    """Install a fault plan for one test; always removed afterwards."""
    yield faults.install
    faults.install(None)


@pytest.fixture
def share(tmp_path):
    path = tmp_path / "share"
    path.mkdir()
    (path / "f").write_bytes(b"x")
    return path


class Recording(Retrier):
    """A Retrier that notes its pauses (and still honours the stop event)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pauses = []

    def pause(self, seconds):
        self.pauses.append(seconds)
        super().pause(seconds)


def retrier(root, policy=FAST, stop=None, **kwargs) -> Recording:
    return Recording(policy, {"src": root}, stop or threading.Event(), **kwargs)


class Failing:
    """An operation that fails with these errnos in turn, then returns "done"."""

    def __init__(self, *codes, log=None):
        self.codes, self.calls, self.log = list(codes), 0, log

    def __call__(self):
        self.calls += 1
        if self.log is not None:
            self.log.append("call")
        if self.codes:
            code = self.codes.pop(0)
            raise OSError(code, os.strerror(code))
        return "done"


class FakeRoot:
    """A root whose health is scripted: `problems` are the answers of its first probes
    (None: it answers), then it answers for good, or never does if `forever`."""

    label, path = "DST", b"/mnt/fake"

    def __init__(self, *problems, forever=False):
        self.problems, self.forever, self.probes = list(problems), forever, 0

    def problem(self):
        self.probes += 1
        if self.problems:
            return self.problems.pop(0)
        return "ENOTCONN: Transport endpoint is not connected" if self.forever else None

    def __str__(self):
        return "DST /mnt/fake"


def audit_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


# ---------------------------------------------------------------------- backoff --

@pytest.mark.parametrize("attempt, base", [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0)])
def test_backoff_doubles_per_attempt_with_25_percent_jitter(attempt, base):
    policy = Policy(delay=1.0)
    assert policy.backoff(attempt, lambda: 0.0) == pytest.approx(0.75 * base)
    assert policy.backoff(attempt, lambda: 0.5) == pytest.approx(base)
    assert policy.backoff(attempt, lambda: 0.999999) == pytest.approx(1.25 * base, rel=1e-5)


def test_backoff_caps_the_base_at_max_delay_and_jitters_around_it():
    policy = Policy(delay=1.0, max_delay=60.0)
    for attempt in (7, 20, 200):
        assert policy.backoff(attempt, lambda: 0.5) == pytest.approx(60.0)
        assert policy.backoff(attempt, lambda: 0.0) == pytest.approx(45.0)
        assert policy.backoff(attempt, lambda: 0.999999) < 75.0


def test_backoff_scales_with_the_first_delay():
    assert Policy(delay=0.001).backoff(3, lambda: 0.5) == pytest.approx(0.004)
    assert Policy(delay=0.0).backoff(5, lambda: 0.999) == 0.0


# ------------------------------------------------------------------------- call --

def test_a_transient_error_is_retried_with_backoff_then_raised(share):
    r = retrier(Root("SRC", os.fsencode(share)), rand=lambda: 0.5)
    op = Failing(*[errno.EIO] * 10)
    with pytest.raises(OSError) as e:
        r.call("src", "read", op)
    assert e.value.errno == errno.EIO
    assert op.calls == FAST.retries + 1
    assert r.pauses == pytest.approx([0.001, 0.002, 0.004])


def test_a_transient_error_that_passes_returns_the_result(share):
    r = retrier(Root("SRC", os.fsencode(share)))
    op = Failing(errno.ETIMEDOUT, errno.ECONNRESET)
    before = COUNTS.get("retries", "src"), COUNTS.get("retries", "dst")
    assert r.call("src", "read", op) == "done"
    assert op.calls == 3 and len(r.pauses) == 2
    # counted for /metrics, on the side they happened on
    assert (COUNTS.get("retries", "src"), COUNTS.get("retries", "dst")) == (
        before[0] + 2, before[1])


def test_no_retries_means_one_attempt(share):
    r = retrier(Root("SRC", os.fsencode(share)), Policy(retries=0, delay=0.001))
    op = Failing(errno.EIO)
    with pytest.raises(OSError):
        r.call("src", "read", op)
    assert op.calls == 1 and r.pauses == []


@pytest.mark.parametrize("code", [errno.EACCES, errno.ENOENT, errno.EISDIR, errno.ESPIPE])
def test_permanent_and_restart_errors_are_raised_at_once(share, code):
    """Raised at once, after one look at the root (it answers: not an outage)."""
    root = FakeRoot()
    r = retrier(root)
    op = Failing(code)
    with pytest.raises(OSError) as e:
        r.call("src", "open", op)
    assert e.value.errno == code
    assert op.calls == 1 and r.pauses == [] and root.probes == 1


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS])
def test_a_fatal_error_is_raised_at_once_without_retrying_or_probing(code):
    root = FakeRoot(forever=True)     # even an unreachable root is not waited for
    r = retrier(root)
    op = Failing(code)
    with pytest.raises(OSError) as e:
        r.call("src", "write", op)
    assert e.value.errno == code
    assert op.calls == 1 and r.pauses == [] and root.probes == 0


def test_estale_reopens_before_the_retry(share):
    events = []
    r = retrier(Root("SRC", os.fsencode(share)))
    op = Failing(errno.ESTALE, errno.ESTALE, log=events)
    assert r.call("src", "read", op, stale=lambda: events.append("reopen")) == "done"
    assert events == ["call", "reopen", "call", "reopen", "call"]


def test_other_transient_errors_do_not_reopen(share):
    events = []
    r = retrier(Root("SRC", os.fsencode(share)))
    op = Failing(errno.EIO, log=events)
    assert r.call("src", "read", op, stale=lambda: events.append("reopen")) == "done"
    assert events == ["call", "call"]


def test_a_reopen_that_fails_transiently_is_retried_and_one_that_cannot_is_raised(share):
    r = retrier(Root("SRC", os.fsencode(share)))
    reopens = Failing(errno.EIO)          # the reopen itself meets a passing EIO
    assert r.call("src", "read", Failing(errno.ESTALE, errno.ESTALE), stale=reopens) == "done"
    assert reopens.calls == 2

    vanished = Failing(errno.ENOENT)      # the file is gone: no point trying again
    op = Failing(errno.ESTALE)
    with pytest.raises(FileNotFoundError):
        r.call("src", "read", op, stale=vanished)
    assert op.calls == 1


def test_a_stop_during_the_pause_interrupts(share):
    stop = threading.Event()
    r = retrier(Root("SRC", os.fsencode(share)), stop=stop)

    def op():
        stop.set()                    # the run is asked to stop while this fails
        raise OSError(errno.EIO, "Input/output error")
    with pytest.raises(Interrupted):
        r.call("src", "read", op)
    assert len(r.pauses) == 1


# ---------------------------------------------------------------------- outages --

def test_a_root_renamed_away_is_waited_for_until_it_is_back(share, tmp_path):
    """The root's path leads nowhere for a while; the operation goes on once the very
    same directory is back, and the wait is no attempt (retries=0)."""
    root = Root("SRC", os.fsencode(share))
    away = tmp_path / "away"
    shown = []

    def status(side, text):
        shown.append((side, text))
        if len(shown) == 3:
            os.rename(away, share)   # back after a few probes
    r = retrier(root, Policy(retries=0, delay=0.001), status=status)

    def op():
        if not shown:
            os.rename(share, away)   # the share goes away under the operation
            raise OSError(errno.ENOENT, "No such file or directory")
        return (share / "f").read_bytes()
    assert r.call("src", "open", op) == b"x"
    assert all(side == "src" for side, _ in shown)
    assert shown[0][1].startswith(f"waiting for SRC {share}: ENOENT")
    assert shown[-1] == ("src", None)       # the console line is cleared again


def test_another_directory_at_the_root_path_is_an_outage(share, tmp_path):
    """What an unmount looks like: the path holds a directory, but not the one of the
    start (here on the same local filesystem, where only the same inode will do)."""
    root = Root("SRC", os.fsencode(share))
    os.rename(share, tmp_path / "real")
    share.mkdir()                             # the empty mount point
    shown = []

    def status(side, text):
        shown.append(text)
        if len(shown) == 2:
            share.rmdir()
            os.rename(tmp_path / "real", share)
    assert root.problem() == "no longer the directory it was at the start (unmounted?)"
    assert retrier(root, status=status).wait_for("src") is True
    assert root.problem() is None
    assert "no longer the directory" in shown[0]


def test_an_outage_is_waited_out_and_told_in_the_audit_log(share, tmp_path, plan):
    log = tmp_path / "audit.log"
    audit = AuditLog(str(log))
    plan(f"probe@{share}:EIO,EIO,EIO")          # the first three probes fail
    root = Root("SRC", os.fsencode(share))
    r = retrier(root, audit=audit)
    assert r.wait_for("src") is True
    assert r.wait_for("src") is False           # answering now: nothing to wait for
    audit.close()
    lines = audit_lines(log)
    assert [(e["op"], e["status"]) for e in lines] == [("outage", "started"),
                                                       ("outage", "ended")]
    started, ended = lines
    assert started["side"] == "SRC" and started["root"] == str(share)
    assert started["error"] == "EIO: Input/output error"
    assert isinstance(ended["seconds"], int) and "error" not in ended
    # Probes 1 and 2 before waiting, 3 and 4 after growing pauses (at least 50 ms).
    assert r.pauses == pytest.approx([0.05, 0.1])


def test_an_outage_with_a_retrying_operation_reopens_from_the_start(share, plan):
    """A handle that was open while the share went away is not trusted again."""
    plan(f"probe@{share}:EIO,EIO")
    r = retrier(Root("SRC", os.fsencode(share)))
    op = Failing(errno.EIO)
    with pytest.raises(Restart):
        r.call("src", "read", op, stale=lambda: None)
    assert op.calls == 1


def test_an_outage_longer_than_the_timeout_stops_the_run(tmp_path):
    log = tmp_path / "audit.log"
    audit = AuditLog(str(log))
    root = FakeRoot(forever=True)
    shown = []
    r = retrier(root, Policy(delay=0.001, outage=0.02), audit=audit,
                status=lambda side, text: shown.append(text))
    op = Failing(errno.ENOTCONN)
    with pytest.raises(FatalError, match=r"stopped: DST /mnt/fake unreachable for \d+s "
                                         r"\(ENOTCONN: .*\); pending files stay pending"):
        r.call("src", "read", op)
    assert op.calls == 1 and root.probes >= 3
    assert shown[-1] is None
    audit.close()
    lines = audit_lines(log)
    assert [(e["op"], e["status"]) for e in lines] == [("outage", "started"),
                                                       ("outage", "failed")]
    assert lines[1]["side"] == "DST" and lines[1]["root"] == "/mnt/fake"
    assert lines[1]["error"].startswith("ENOTCONN") and isinstance(lines[1]["seconds"], int)


def test_an_outage_timeout_of_zero_stops_at_once():
    root = FakeRoot("EIO: Input/output error", "EIO: Input/output error", forever=False)
    r = retrier(root, Policy(delay=0.001, outage=0.0))
    with pytest.raises(FatalError, match="unreachable"):
        r.wait_for("src")
    assert root.probes == 2 and r.pauses == []


def test_a_stop_while_waiting_for_a_root_interrupts():
    stop = threading.Event()
    root = FakeRoot(forever=True)
    r = retrier(root, stop=stop, status=lambda side, text: stop.set())
    with pytest.raises(Interrupted):
        r.wait_for("src")
    assert len(r.pauses) == 1


def test_a_root_that_is_back_by_the_second_look_is_not_an_outage(tmp_path):
    """Another thread waited it out already: no audit line, but the caller retries."""
    log = tmp_path / "audit.log"
    audit = AuditLog(str(log))
    r = retrier(FakeRoot("EIO: Input/output error"), audit=audit)
    assert r.wait_for("src") is True
    audit.close()
    assert log.read_bytes() == b"" and r.pauses == []
