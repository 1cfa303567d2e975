"""The latency histogram: slots as PostgreSQL's width_bucket places them, percentiles back."""

from __future__ import annotations

from healthd.core import rollups


def test_slots_are_lower_inclusive() -> None:
    assert rollups.slot(0.5) == 0
    assert rollups.slot(1) == 1  # width_bucket(1, '{1,...}') = 1
    assert rollups.slot(20) == 4
    assert rollups.slot(1e9) == len(rollups.BOUNDS_MS)
    assert rollups.sql_bounds().startswith("'{1,2.5,5,")


def test_percentiles_from_a_histogram() -> None:
    hist = [0] * rollups.SLOTS
    hist[rollups.slot(20)] = 90  # [10, 25)
    hist[rollups.slot(400)] = 10  # [250, 500)
    assert 10 <= (rollups.percentile(hist, 0.5, 450) or 0) < 25
    p95 = rollups.percentile(hist, 0.95, 450) or 0
    assert 250 <= p95 <= 450
    assert rollups.percentile([0] * rollups.SLOTS, 0.5, None) is None
    top = [0] * rollups.SLOTS
    top[-1] = 4
    assert rollups.percentile(top, 1.0, 42000) == 42000
