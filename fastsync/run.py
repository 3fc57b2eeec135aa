"""One run, phase by phase: decide (resume or scan) -> scan -> copy -> mirror -> directories.

Startup (spec 2.1): without a catalog, or with nothing pending, scan and then copy. With
a pending backlog left by an interrupted run, resume it without scanning. Files that
failed in an earlier run are still pending but do not block the rescan: a run whose
backlog holds only already-attempted files scans (finding new and changed files) and
then retries them. --rescan always scans.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass

from . import __version__
from .audit import AuditLog
from .catalog import Backlog, Catalog
from .config import Config, format_size
from .directories import apply_directories
from .errors import (EXIT_OK, EXIT_PARTIAL, EXIT_SIGINT, EXIT_SIGTERM, FastsyncError,
                     FatalError, describe)
from .mirror import mirror
from .pipeline import Pipeline, TransferStats
from .progress import Console, format_duration, format_rate
from .retry import Policy, Retrier, Root
from .scan import scan
from .transfer import probe_destination

log = logging.getLogger(__name__)


class StopRequest:
    """Set from a signal handler; everything that loops looks at `event`."""

    def __init__(self):
        self.event = threading.Event()
        self.signum: int | None = None

    def request(self, signum: int) -> None:
        self.signum = signum
        self.event.set()

    @property
    def exit_code(self) -> int:
        return EXIT_SIGTERM if self.signum == signal.SIGTERM else EXIT_SIGINT


@dataclass
class Totals:
    copied: int = 0
    copied_bytes: int = 0
    failed: int = 0
    deleted: int = 0
    specials: int = 0
    scan_errors: int = 0
    stale_removed: int = 0
    retried: int = 0
    dir_failures: int = 0


def choose_mode(backlog: Backlog, rescan: bool, new_catalog: bool) -> tuple[str, str]:
    if new_catalog:
        return "scan", "new catalog"
    if rescan:
        return "scan", "--rescan"
    if backlog.fresh:
        return "resume", ""
    if backlog.empty:
        return "scan", "backlog empty: looking for new and changed files"
    return "scan", "only files that failed before are pending: rescanning, then retrying them"


def run(config: Config, console: Console, stop: StopRequest) -> int:
    window = probe_destination(config.dst)
    new_catalog = not os.path.exists(config.db) or os.path.getsize(config.db) == 0
    catalog = Catalog.open(config.db, config.src, config.dst, __version__)
    try:
        audit = AuditLog(config.log)
    except OSError as e:
        catalog.close()
        raise FatalError(f"cannot open the audit log {config.log!r}: {e.strerror}") from None
    try:
        return _run(config, console, stop, catalog, audit, window, new_catalog)
    finally:
        audit.close()
        catalog.close()


def _run(config: Config, console: Console, stop: StopRequest, catalog: Catalog,
         audit: AuditLog, window: int, new_catalog: bool) -> int:
    started = time.monotonic()
    roots = {"src": Root("SRC", config.src), "dst": Root("DST", config.dst, writable=True)}
    identity = roots["src"].identity
    catalog.set_meta("dst_mtime_granularity_ns", window)
    backlog = catalog.backlog()
    mode, reason = choose_mode(backlog, config.rescan, new_catalog)
    run_id = catalog.start_run(mode, config.checksum, __version__)
    audit.run_id = run_id
    audit.event("run", "started", src=config.src, dst=config.dst, mode=mode,
                version=__version__)
    totals = Totals()
    policy = Policy(retries=config.retries, delay=config.retry_delay,
                    outage=config.outage_timeout)
    try:
        return _phases(config, console, stop, catalog, audit, window, mode, reason,
                       backlog, run_id, identity, totals, started, policy, roots)
    except FastsyncError as e:
        # Record how this run ended, if the catalog and the log still can be written;
        # when they are what failed, the error itself says so.
        try:
            catalog.finish_run(run_id, "failed")
            audit.event("run", "failed", error=str(e), copied=totals.copied,
                        bytes=totals.copied_bytes, failed=totals.failed)
            audit.flush()
        except FastsyncError:
            pass
        raise


def _phases(config: Config, console: Console, stop: StopRequest, catalog: Catalog,
            audit: AuditLog, window: int, mode: str, reason: str, backlog: Backlog,
            run_id: int, identity: tuple[int, int], totals: Totals, started: float,
            policy: Policy, roots: dict[str, Root]) -> int:
    retrier = Retrier(policy, roots, stop.event, status=console.waiting, audit=audit)
    def finish(status: str, code: int) -> int:
        catalog.finish_run(run_id, status)
        audit.event("run", status, copied=totals.copied, bytes=totals.copied_bytes,
                    failed=totals.failed, deleted=totals.deleted)
        _summary(console, catalog, config, totals, run_id, time.monotonic() - started,
                 status)
        return code

    # ------------------------------------------------------------------- scan --
    if mode == "scan":
        console.note(f"fastsync: scanning SRC and DST ({reason})")
        result = scan(catalog, config.src, config.dst, window, stop.event, console.scan,
                      audit, retrier)
        totals.specials, totals.scan_errors = result.stats.specials, result.stats.errors
        totals.stale_removed = result.stats.stale_removed
        if not result.complete:
            console.note("fastsync: interrupted during the scan; the catalog is unchanged")
            return finish("interrupted", stop.exit_code)
        backlog = result.backlog
        in_sync = result.stats.src_files - backlog.files
        console.note(f"fastsync: scan done: {result.stats.src_files:,} files "
                     f"({format_size(result.stats.src_bytes)}) in SRC, {in_sync:,} already "
                     f"in sync, {backlog.files:,} to copy ({format_size(backlog.bytes)})")
    else:
        console.note(f"fastsync: resuming the backlog from an earlier run: {backlog.files:,} "
                     f"files ({format_size(backlog.bytes)}) pending; not scanning "
                     f"(--rescan forces a scan)")

    # --------------------------------------------------------------- transfer --
    stats = TransferStats(files_total=backlog.files, bytes_total=backlog.bytes,
                          bytes_before=catalog.bytes_copied_before(run_id))
    pipeline = Pipeline(catalog, audit, src=config.src, dst=config.dst,
                        algo=config.checksum, block_size=config.block_size,
                        queue_capacity=config.queue_capacity, bwlimit=config.bwlimit,
                        streams=config.streams,
                        run_id=run_id, stats=stats, policy=policy, roots=roots,
                        verbose=config.verbose)
    with pipeline:
        if backlog.files:
            pipeline.start()
            while pipeline.alive():
                if pipeline.stopping:
                    pipeline.join(0.25)
                elif stop.event.wait(0.25):
                    console.note("fastsync: stopping: finishing the files already written")
                    pipeline.stop()
                console.transfer(stats)
            pipeline.join()
    console.clear()
    totals.copied, totals.failed = stats.files_done, stats.files_failed
    totals.retried = stats.files_retried
    totals.copied_bytes = stats.bytes_done
    if pipeline.crash is not None:
        raise pipeline.crash
    if isinstance(pipeline.fatal, FatalError):     # e.g. a share that stayed away
        raise pipeline.fatal
    if pipeline.fatal is not None:
        raise FatalError(f"stopped: {describe(pipeline.fatal)} on the destination; "
                         f"{totals.copied:,} files copied this run are recorded, the rest "
                         f"stay pending")
    if stop.event.is_set():
        return finish("interrupted", stop.exit_code)

    # ----------------------------------------------------------------- mirror --
    if config.delete_extras:
        if catalog.scan_complete():
            result = mirror(catalog, config.src, config.dst, identity, stop.event, audit,
                            run_id)
            totals.deleted = result.deleted
            totals.failed += result.failed
            if result.refused:
                totals.failed += 1
        else:
            log.warning("--delete-extras: no complete scan of DST yet, nothing deleted")
        if stop.event.is_set():
            return finish("interrupted", stop.exit_code)

    # ------------------------------------------------------------ directories --
    totals.dir_failures = apply_directories(catalog, pipeline.dirs, retrier, stop.event, audit)
    if stop.event.is_set():
        return finish("interrupted", stop.exit_code)
    problems = totals.failed + totals.scan_errors + totals.dir_failures
    return finish("partial" if problems else "ok", EXIT_PARTIAL if problems else EXIT_OK)


def _summary(console: Console, catalog: Catalog, config: Config, totals: Totals,
             run_id: int, elapsed: float, status: str) -> None:
    left = catalog.backlog()
    overall = catalog.bytes_copied_before(run_id) + totals.copied_bytes
    rate = format_rate(totals.copied_bytes / elapsed) if elapsed > 0 else "--"
    lines = [f"fastsync: {status}: copied {totals.copied:,} files "
             f"({format_size(totals.copied_bytes)}) in {format_duration(elapsed)} ({rate}); "
             f"failed {totals.failed:,}; deleted {totals.deleted:,}"]
    extra = []
    if totals.specials:
        extra.append(f"{totals.specials:,} entries not copied (fifos, sockets, devices, "
                     f"names reserved for temporaries)")
    if totals.scan_errors:
        extra.append(f"{totals.scan_errors:,} scan errors")
    if totals.dir_failures:
        extra.append(f"{totals.dir_failures:,} directories failed")
    if totals.retried:
        extra.append(f"{totals.retried:,} failures passed on a later try in this run")
    if totals.stale_removed:
        extra.append(f"{totals.stale_removed:,} stale temporaries of killed runs removed")
    if extra:
        lines.append("fastsync: " + "; ".join(extra) + " (see the audit log)")
    lines.append(f"fastsync: pending {left.files:,} files ({format_size(left.bytes)}); "
                 f"copied overall {format_size(overall)}; catalog {config.db}; "
                 f"audit log {config.log}")
    for line in lines:
        console.note(line)
