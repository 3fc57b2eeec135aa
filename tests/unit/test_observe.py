"""RunState: what /health and /api/status are made of."""

from fastsync.observe import RunState
from fastsync.scan import ScanStats


def test_a_scan_that_reports_without_moving_is_not_progress():
    state = RunState("/a", "/b", 0)
    stats = ScanStats()
    stats.src_entries = 10
    state.on_scan(stats)
    moved = state.last_progress = 1000.0      # as if long ago
    state.on_scan(stats)                      # the same counts, reported again
    assert state.last_progress == moved
    stats.dst_entries = 3
    state.on_scan(stats)
    assert state.last_progress > moved


def test_the_rate_is_taken_from_the_last_samples_only():
    state = RunState("/a", "/b", 0)
    state.history.extend([(0.0, 0, 0), (1.0, 100, 50), (2.0, 300, 150), (3.0, 600, 300)])
    assert state.rates(2) == [(2.0, 200.0, 100.0), (3.0, 300.0, 150.0)]
    assert len(state.rates()) == 3
