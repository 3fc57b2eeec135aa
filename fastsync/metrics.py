"""GET /metrics: the run's state in Prometheus' text format (prometheus-client), read
from the in-memory RunState at each scrape. Names start with `fastsync_`; counters end
in `_total`, units are in the names (README, "Metrics")."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .retry import COUNTS

PHASES = ("starting", "scanning", "copying", "paused", "waiting", "mirroring", "directories",
          "done")


class StateCollector:
    def __init__(self, state):
        self.state = state

    def collect(self):
        state, copy = self.state, self.state.transfer
        done = (state.result or {})
        yield _counter("bytes_read", "File data read from SRC", copy and copy.bytes_read)
        yield _counter("bytes_written", "File data written to DST",
                       copy and copy.bytes_written)
        yield _counter("files_copied", "Files and links recorded as synced",
                       copy and copy.files_done)
        yield _counter("files_failed", "Files that failed for good in this run",
                       copy and copy.files_failed)
        yield _counter("files_deleted", "Entries deleted at DST", done.get("files_deleted"))
        left_files = copy and max(copy.files_total - copy.files_done - copy.files_failed, 0)
        left_bytes = copy and max(copy.bytes_total - copy.bytes_written, 0)
        yield _gauge("backlog_files", "Files of this run's backlog not yet done", left_files)
        yield _gauge("backlog_bytes", "Bytes of this run's backlog not yet written",
                     left_bytes)
        rates = state.rates(3)
        yield _gauge("write_rate_bytes_per_second", "Written over the last seconds",
                     sum(r[2] for r in rates) / len(rates) if rates else 0)
        yield _gauge("bwlimit_bytes_per_second", "The cap in force per direction (0: none)",
                     state.bwlimit)
        yield _gauge("streams_busy", "Readers working on a file now",
                     copy and copy.streams_busy)
        yield _gauge("queue_fill_ratio", "Share of the block queue holding data",
                     state.queue_fill())
        for what, doc in (("retries", "Operations tried again after a transient error"),
                          ("outages", "Times a share was found unreachable")):
            family = CounterMetricFamily(f"fastsync_{what}", doc, labels=["side"])
            for side in ("src", "dst"):
                family.add_metric([side], COUNTS.get(what, side))
            yield family
        unreachable = GaugeMetricFamily("fastsync_share_unreachable",
                                        "1 while a share is away", labels=["side"])
        for side in ("src", "dst"):
            unreachable.add_metric([side], 1 if side in state.waiting or (
                copy is not None and side in copy.waiting) else 0)
        yield unreachable
        phase = GaugeMetricFamily("fastsync_phase", "1 for the phase the run is in",
                                  labels=["phase"])
        for name in PHASES:
            phase.add_metric([name], 1 if state.phase == name else 0)
        yield phase
        yield _gauge("last_progress_timestamp_seconds", "When data last moved (Unix time)",
                     state.last_progress)


def _counter(name: str, doc: str, value) -> CounterMetricFamily:
    return CounterMetricFamily(f"fastsync_{name}", doc, value=value or 0)


def _gauge(name: str, doc: str, value) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"fastsync_{name}", doc, value=value or 0)


def exposition(state) -> tuple[bytes, str]:
    registry = CollectorRegistry()
    registry.register(StateCollector(state))
    return generate_latest(registry), CONTENT_TYPE_LATEST
