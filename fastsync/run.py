"""One run, phase by phase: decide (resume or scan) -> scan -> copy -> mirror -> directories.

Startup (spec 2.1): without a catalog, or with nothing pending, scan and then copy. With
a pending backlog left by an interrupted run, resume it without scanning. Files that
failed in an earlier run are still pending but do not block the rescan: a run whose
backlog holds only already-attempted files scans (finding new and changed files) and
then retries them. --rescan always scans.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from . import __version__
from .audit import AuditLog
from .catalog import Backlog, Catalog, finish_run_at_once
from .config import Config, format_size
from .destination import LocalDestination
from .directories import apply_directories
from .errors import (EXIT_OK, EXIT_PARTIAL, EXIT_SIGINT, EXIT_SIGTERM, FastsyncError,
                     FatalError, Interrupted, UsageError, describe, is_fatal)
from .locks import DestinationLock
from .mirror import mirror, unmounted
from .pipeline import Pipeline, TransferStats
from .progress import Console, format_duration, format_rate
from .retry import Policy, Retrier, Root
from .scan import scan
from .backlog import ordered
from .selection import Selection
from .schedule import Applier, rate_now
from .probe import Traits, probe

log = logging.getLogger(__name__)


class StopFlag:
    """The stop request as the loops see it: `is_set()`, `wait(timeout)` and `set()`,
    like threading.Event, but without a lock. A signal handler runs in the main thread
    between two bytecodes, possibly while that thread holds an Event's lock inside
    Event.wait; Event.set in the handler would then wait for that lock forever. Setting
    a plain attribute takes no lock, and wait() polls it in short steps."""

    STEP = 0.05         # seconds between two looks at the flag while waiting

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._set:
            left = self.STEP if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, self.STEP))
        return True


# A second signal this soon after the first is the same Ctrl-C: the one-file binary gets
# each one twice (the terminal's process group, and PyInstaller's bootloader forwarding).
SAME_SIGNAL = 1.0


class StopRequest:
    """Signals recorded by the handler (plain attributes only, no locks); everything
    that loops looks at `event`. A signal asks for an orderly stop; a second one more
    than SAME_SIGNAL seconds after the first asks to leave at once (leave())."""

    def __init__(self):
        self.event = StopFlag()
        self.signum: int | None = None
        self.first: float | None = None           # time.monotonic() of the first
        self.last_words = None                    # called by leave(), best effort
        self._leaving = False

    def request(self, signum: int, now: float | None = None) -> bool:
        """Record a signal; True if it asks to leave at once."""
        now = time.monotonic() if now is None else now
        if self.first is None:
            self.signum, self.first = signum, now
            self.event.set()
            return False
        return now - self.first > SAME_SIGNAL

    def leave(self) -> None:
        """Exit now, from a signal handler: no lock is taken and no thread joined. SQLite
        transactions are atomic, so the catalog stays consistent; `last_words` marks the
        run's row as interrupted if the catalog is free."""
        if self._leaving:       # a further signal while the first is leaving
            return
        self._leaving = True
        try:
            os.write(2, b"fastsync: signalled again: leaving at once; the catalog is "
                        b"consistent, run again to resume\n")
        except OSError:
            pass
        try:
            if self.last_words is not None:
                self.last_words()
        finally:
            os._exit(self.exit_code)

    @property
    def exit_code(self) -> int:
        return EXIT_SIGTERM if self.signum == signal.SIGTERM else EXIT_SIGINT


def install_signals(stop: StopRequest) -> dict:
    """SIGINT/SIGTERM ask `stop` for an orderly stop; another one more than a second
    later leaves at once. Returns the handlers it replaced."""
    def handler(signum, _frame):
        # Only attributes are set here: no lock, no I/O but a plain write before leaving.
        if stop.request(signum):        # signalled again, not the same Ctrl-C twice
            stop.leave()
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
        signal.signal(signum, handler)
    return previous


@dataclass
class Totals:
    copied: int = 0
    copied_bytes: int = 0
    failed: int = 0
    deleted: int = 0
    specials: int = 0
    scan_errors: int = 0
    stale_removed: int = 0
    recovered: int = 0             # copied after failing earlier in the run
    dir_failures: int = 0
    held: int = 0                  # DST directories kept: their SRC mount is gone
    over_limit: int = 0            # extras kept: --max-delete was reached
    refused: bool = False          # the mirror deleted nothing (the guard, or SRC gone)
    streams: int | None = None     # files in flight at once, as the pipeline chose

    def remarks(self) -> list[str]:
        """What the summary adds beyond copied, failed and deleted."""
        extra = []
        if self.specials:
            extra.append(f"{self.specials:,} entries not copied (fifos, sockets, devices, "
                         f"names reserved for temporaries)")
        if self.scan_errors:
            extra.append(f"{self.scan_errors:,} scan errors")
        if self.dir_failures:
            extra.append(f"{self.dir_failures:,} directories failed")
        if self.held:
            extra.append(f"nothing deleted below {self.held:,} directories: their SRC "
                         f"filesystem is not mounted (or empty)")
        if self.over_limit:
            extra.append(f"{self.over_limit:,} extras not deleted: over --max-delete")
        if self.refused:
            extra.append("--delete-extras deleted nothing: refused")
        if self.recovered:
            extra.append(f"{self.recovered:,} files copied on a later try, after failing "
                         f"earlier in this run")
        if self.stale_removed:
            extra.append(f"{self.stale_removed:,} stale temporaries of killed runs removed")
        return extra


def choose_mode(backlog: Backlog, rescan: bool, new_catalog: bool,
                changes: list[str] = ()) -> tuple[str, str]:
    if new_catalog:
        return "scan", "new catalog"
    if rescan:
        return "scan", "--rescan"
    if changes:
        return "scan", "what to copy changed since the last scan: " + "; ".join(changes)
    if backlog.fresh:
        return "resume", ""
    if backlog.empty:
        return "scan", "backlog empty: looking for new and changed files"
    return "scan", "only files that failed before are pending: rescanning, then retrying them"


def run(config: Config, console: Console, stop: StopRequest, control=None) -> int:
    """One run; `control` (observe.Control, with --http) lets the API reach the copy."""
    if config.dry_run:
        from .dryrun import dry_run
        return dry_run(config, console, stop)
    dst_lock = lock_destination(config.dst)
    catalog = audit = None
    try:
        traits = probe(config.dst)
        new_catalog = not os.path.exists(config.db) or os.path.getsize(config.db) == 0
        catalog = Catalog.open(config.db, config.src, config.dst, __version__)
        audit = open_audit(config.log)
    finally:
        if audit is None:
            dst_lock.release()
            if catalog is not None:
                catalog.close()
    run_ = None
    try:
        run_ = Run(config, console, stop, catalog, audit, traits, new_catalog)
        run_.dst_lock, run_.control = dst_lock, control
        return run_.execute()
    finally:
        stop.last_words = None
        if run_ is not None:
            run_.dest.close()
        dst_lock.release()
        audit.close()
        catalog.close()


def open_audit(path: str) -> AuditLog:
    try:
        return AuditLog(path)
    except OSError as e:
        raise FatalError(f"cannot open the audit log {path!r}: {e.strerror}") from None


def lock_destination(dst: bytes) -> DestinationLock:
    """Take DST's own lock (locks.py), before anything else is written there: the
    first write at DST, so an unwritable DST is refused here."""
    try:
        return DestinationLock(dst)
    except OSError as e:
        if is_fatal(e):     # full or read-only: the run cannot go on (status 3, not 2)
            raise FatalError(f"stopped: DST {os.fsdecode(dst)!r}: {describe(e)}") from None
        raise UsageError(f"DST {os.fsdecode(dst)!r} is not writable: {e.strerror}") from None


class Run:
    """One run: the state its phases share, and one method per phase."""

    dry = False         # dryrun.DryRun: decides and tells, changes nothing

    def __init__(self, config: Config, console: Console, stop: StopRequest,
                 catalog: Catalog, audit: AuditLog, traits: Traits, new_catalog: bool):
        self.config, self.console, self.stop = config, console, stop
        self.catalog, self.audit, self.traits = catalog, audit, traits
        self.window = traits.window
        self.new_catalog = new_catalog
        self.started = time.monotonic()
        self.roots = {"src": Root("SRC", config.src),
                      "dst": Root("DST", config.dst, writable=True)}
        self.identity = self.roots["src"].identity
        self.policy = Policy(retries=config.retries, delay=config.retry_delay,
                             outage=config.outage_timeout)
        self.retrier = Retrier(self.policy, self.roots, stop.event, status=console.waiting,
                               audit=audit)
        self.totals = Totals()
        self.selection = selection = config.selection or Selection()
        scope = selection.scope
        # --files-from: the source paths this run looks at (None: all)
        self.selected = None if scope is None else (
            lambda path: scope.covers(path[len(config.src) + 1:]))
        self.run_id: int | None = None
        self.dst_lock: DestinationLock | None = None     # set by run()
        self.control = None                              # observe.Control, set by run()
        # Everything done at DST goes through it, from the copy to the directories.
        self.dest = LocalDestination(config.dst,
                                     lambda: self.roots["dst"].problem() is None,
                                     replace=config.delete_extras,
                                     rules=self.selection.rules or None,
                                     max_remove=config.max_delete)

    # ------------------------------------------------------------ the whole run --

    def execute(self) -> int:
        traits = self.traits
        self.catalog.set_meta("dst_mtime_granularity_ns", self.window)
        self.catalog.set_meta("dst_folds_case", int(traits.folds_case))
        self.catalog.set_meta("dst_changes_names", "".join(traits.changed))
        self.catalog.set_meta("dst_symlinks", traits.links or "yes")
        self.arrange()
        self.backlog = self.catalog.backlog(self.selected)
        self.mode, self.reason = choose_mode(
            self.backlog, self.config.rescan, self.new_catalog,
            self.selection.changes(self.catalog.get_meta("selection",
                                                         Selection().scanned_with())))
        self.run_id = self.catalog.start_run(self.mode, self.config.checksum, __version__)
        if self.console.observer is not None:
            self.console.observer.run_id = self.run_id
        self.stop.last_words = self.left_at_once
        self.audit.run_id = self.run_id
        self.audit.event("run", "started", src=self.config.src, dst=self.config.dst,
                         mode=self.mode, version=__version__)
        try:
            return self.phases()
        except FastsyncError as e:
            self.ended_badly(str(e))
            raise
        except Interrupted:         # a wait given up because a stop was asked for
            if not self.stop.event.is_set():
                self.ended_badly("internal error: interrupted without a stop request")
                raise
            return self.finish("interrupted")
        except Exception as e:      # a bug: cli.py reports it (exit 70) with its traceback
            self.ended_badly(f"internal error: {type(e).__name__}: {e}")
            raise

    def phases(self) -> int:
        stopped = self.stop.event.is_set
        if self.mode == "scan":
            if not self.scan():
                return self.finish("interrupted")
        else:
            self.console.note(f"fastsync: resuming the backlog from an earlier run: "
                              f"{self.backlog.files:,} files "
                              f"({format_size(self.backlog.bytes)}) pending; not scanning "
                              f"(--rescan forces a scan)")
        self.transfer()
        if stopped():
            return self.finish("interrupted")
        if self.config.delete_extras:
            self.console.phase("mirroring")
            self.mirror()
            if stopped():
                return self.finish("interrupted")
        self.console.phase("directories")
        self.directories()
        if stopped():
            return self.finish("interrupted")
        totals = self.totals
        problems = (totals.failed + totals.scan_errors + totals.dir_failures + totals.held
                    + totals.over_limit + totals.refused)
        return self.finish("partial" if problems else "ok")

    def finish(self, status: str) -> int:
        totals = self.totals
        # Mirror's deletions and those that made room for an entry that changed kind
        totals.deleted = self.catalog.run_counts(self.run_id)["files_deleted"]
        self.catalog.finish_run(self.run_id, status)
        self.audit.event("run", status, copied=totals.copied, bytes=totals.copied_bytes,
                         failed=totals.failed, deleted=totals.deleted)
        self.summary(status)
        return {"ok": EXIT_OK, "partial": EXIT_PARTIAL}.get(status, self.stop.exit_code)

    def ended_badly(self, error: str) -> None:
        """Record that the run failed, if the catalog and the log still can be written;
        when they are what failed, the error itself says so."""
        totals = self.totals
        try:
            self.catalog.finish_run(self.run_id, "failed")
            self.audit.event("run", "failed", error=error, copied=totals.copied,
                             bytes=totals.copied_bytes, failed=totals.failed)
            self.audit.flush()
        except Exception:   # noqa: BLE001 - the error being reported matters more
            log.debug("could not record the failed run", exc_info=True)

    def left_at_once(self) -> None:
        """Called from a signal handler just before os._exit: mark the run's row
        interrupted on a connection of its own (the catalog's lock may be held by the
        thread the handler interrupted), and append the audit line with a plain write
        (the audit log's buffer and lock may be in use just as well)."""
        finish_run_at_once(self.config.db, self.run_id, "interrupted")
        record = {"ts": datetime.now(timezone.utc).isoformat(timespec="microseconds")
                  .replace("+00:00", "Z"), "run": self.run_id, "op": "run",
                  "status": "interrupted", "error": "signalled again: left at once"}
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        try:
            fd = os.open(self.config.log, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
            try:
                size = os.fstat(fd).st_size
                torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
                os.write(fd, b"\n" + line if torn else line)
            finally:
                os.close(fd)
        except OSError:
            pass

    def arrange(self) -> None:
        """A backlog whose --priority or --order-by changed takes its new order now
        (one pass over the pending rows; the index then hands them out in order)."""
        selection = self.selection
        if self.catalog.get_meta("backlog_order", Selection().ordered_by()) \
                == selection.ordered_by():
            return
        self.catalog.reorder(selection.klass_of(self.config.src),
                             selection.order.sql("files"),
                             {"backlog_order": selection.ordered_by()})

    # ------------------------------------------------------------------ phases --

    def scan(self) -> bool:
        """Scan SRC and DST into the catalog; False if interrupted (nothing changed)."""
        self.console.note(f"fastsync: scanning SRC and DST ({self.reason})")
        result = scan(self.catalog, self.config.src, self.config.dst, self.window,
                      self.stop.event, self.console.scan, self.audit, self.retrier,
                      self.traits, self.selection, self.dry,
                      {"selection": self.selection.scanned_with(),
                       "backlog_order": self.selection.ordered_by()})
        stats, totals = result.stats, self.totals
        totals.specials, totals.scan_errors = stats.specials, stats.errors
        totals.stale_removed = stats.stale_removed
        if not result.complete:
            self.console.note("fastsync: interrupted during the scan; the catalog is "
                              "unchanged")
            return False
        # the merge counted the whole backlog; a --files-from wave counts its own
        self.backlog = backlog = (result.backlog if self.selected is None
                                  else self.catalog.backlog(self.selected))
        # Mount points found now, and those found before whose directory is still there
        # (unmounted since: mirror.py keeps their DST copies until they come back).
        # A nested one stays even where it is gone, while a mount above it is away.
        before = self.catalog.src_mounts()
        away = unmounted(before)
        earlier = [p for p in before if os.path.lexists(p)
                   or any(p.startswith(m + b"/") for m in away)]
        self.catalog.set_src_mounts(set(stats.mounts) | set(earlier))
        self.console.note(f"fastsync: scan done: {stats.src_files:,} files "
                          f"({format_size(stats.src_bytes)}) in SRC, "
                          f"{stats.src_files - backlog.files:,} already in sync, "
                          f"{backlog.files:,} to copy ({format_size(backlog.bytes)})")
        return True

    def transfer(self) -> None:
        """Copy the backlog; raises what stopped the pipeline (a fatal error, a crash)."""
        config, totals = self.config, self.totals
        stats = TransferStats(files_total=self.backlog.files, bytes_total=self.backlog.bytes,
                              bytes_before=self.catalog.bytes_copied_before(self.run_id))
        pipeline = Pipeline(self.catalog, self.audit, self.dest, src=config.src,
                            algo=config.checksum, block_size=config.block_size,
                            queue_capacity=config.queue_capacity,
                            bwlimit=rate_now(config.bwlimit),     # a timetable's: now
                            streams=config.streams,     # None: by DST's filesystem
                            run_id=self.run_id, stats=stats, policy=self.policy,
                            roots=self.roots, verbose=config.verbose, traits=self.traits,
                            backlog=lambda: ordered(self.catalog, self.selection, config.src))
        control = self.control
        if self.console.observer is not None:     # --http: the catalog's totals, once
            self.console.observer.synced_before = self.catalog.synced_files()
        set_rate = pipeline.set_rate if control is None else (
            lambda rate: control.set_rate(rate, source="timetable"))
        timetable = Applier.for_run(config.bwlimit, set_rate,
                                    note=self.console.note, audit=self.audit)
        if timetable is not None and control is not None and control.rate is not None:
            # a cap set through the API holds until the timetable's next change
            timetable.rate = rate_now(config.bwlimit)
        with pipeline:
            totals.streams = pipeline.streams
            if control is not None:
                control.attach(pipeline)        # the API's cap, pause and resume
            try:
                if self.backlog.files:
                    pipeline.start()
                    self.watch(pipeline, stats, timetable)
            finally:
                if control is not None:
                    control.detach()
        self.console.clear()
        totals.copied, totals.failed = stats.files_done, stats.files_failed
        totals.recovered, totals.copied_bytes = stats.files_recovered, stats.bytes_done
        if pipeline.crash is not None:
            raise pipeline.crash
        if isinstance(pipeline.fatal, FatalError):     # e.g. a share that stayed away
            raise pipeline.fatal
        if pipeline.fatal is not None:
            raise FatalError(f"stopped: {describe(pipeline.fatal)} on the destination; "
                             f"{totals.copied:,} files copied this run are recorded, the "
                             f"rest stay pending")

    def watch(self, pipeline: Pipeline, stats: TransferStats,
              timetable: Applier | None = None) -> None:
        """Show progress until the pipeline ends; pass a stop request on to it; keep the
        cap on a --bwlimit timetable (looked at every 0.25 s, changed on the minute)."""
        while pipeline.alive():
            if timetable is not None:
                timetable.tick()
            if pipeline.stopping:
                pipeline.join(0.25)
            elif self.stop.event.wait(0.25):
                self.console.note("fastsync: stopping: finishing the files already written")
                pipeline.stop()
            self.console.transfer(stats)
        pipeline.join()

    def mirror(self) -> None:
        if not self.catalog.scan_complete():
            log.warning("--delete-extras: no complete scan of DST yet, nothing deleted")
            return
        result = mirror(self.catalog, self.config.src, self.config.dst, self.identity,
                        self.stop.event, self.audit, self.run_id,
                        self.catalog.src_mounts(), self.traits,
                        max_delete=self.deletions_left())
        self.dest.removals += result.deleted    # the directories phase gets what is left
        totals = self.totals
        totals.deleted, totals.failed = result.deleted, totals.failed + result.failed
        totals.held, totals.over_limit = len(result.held), result.skipped_count
        totals.refused = result.refused is not None

    def deletions_left(self) -> int | None:
        """--max-delete less what this run deleted already (entries removed to make
        room for one that changed kind)."""
        if self.config.max_delete is None:
            return None
        done = self.catalog.run_counts(self.run_id)["files_deleted"]
        return max(0, self.config.max_delete - done)

    def directories(self) -> None:
        self.totals.dir_failures = apply_directories(self.catalog, self.dest, self.retrier,
                                                     self.stop.event, self.audit,
                                                     self.selected)

    # ----------------------------------------------------------------- summary --

    def summary(self, status: str) -> None:
        totals, config = self.totals, self.config
        elapsed = time.monotonic() - self.started
        left = self.catalog.backlog()
        overall = self.catalog.bytes_copied_before(self.run_id) + totals.copied_bytes
        rate = format_rate(totals.copied_bytes / elapsed) if elapsed > 0 else "--"
        streams = "" if totals.streams is None else (
            f"; streams {totals.streams}" + (" (auto)" if config.streams is None else ""))
        lines = [f"fastsync: {status}: copied {totals.copied:,} files "
                 f"({format_size(totals.copied_bytes)}) in {format_duration(elapsed)} "
                 f"({rate}); failed {totals.failed:,}; deleted {totals.deleted:,}{streams}"]
        extra = totals.remarks()
        if extra:
            lines.append("fastsync: " + "; ".join(extra) + " (see the audit log)")
        lines.append(f"fastsync: pending {left.files:,} files ({format_size(left.bytes)}); "
                     f"copied overall {format_size(overall)}; catalog {config.db}; "
                     f"audit log {config.log}")
        for line in lines:
            self.console.note(line)
        self.console.phase("done", status=status, files_copied=totals.copied,
                           bytes_copied=totals.copied_bytes, files_failed=totals.failed,
                           files_deleted=totals.deleted, pending_files=left.files,
                           pending_bytes=left.bytes, seconds=round(elapsed, 3))
        if status == "partial" and self.console.quiet:
            # -q keeps errors: failures are errors, and cron mails what a job prints
            problems = [f"{totals.failed:,} files failed"] + [
                r for r in extra if "failed" in r or "errors" in r or "not mounted" in r
                or "--max-delete" in r or "refused" in r]
            self.console.error(f"fastsync: partial: {'; '.join(problems)}; they stay "
                               f"pending (see the audit log {config.log})")
