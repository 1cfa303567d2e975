"""Latency rollups: the fixed histogram both the daemon (writing) and the API (reading)
agree on, and percentiles read back from it. Pure: no I/O."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

BUCKET_S = 60  # one rollup row per source per minute
# Upper bounds (ms) of the histogram's buckets; one more bucket counts everything slower.
# Roughly 1-2.5-5 per decade: a percentile read back is within a bucket's width.
BOUNDS_MS: tuple[float, ...] = (
    1,
    2.5,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
)
SLOTS = len(BOUNDS_MS) + 1


def slot(latency_ms: float) -> int:
    """The histogram index (0-based) a latency falls in: bucket i counts latencies in
    [BOUNDS_MS[i-1], BOUNDS_MS[i]), as PostgreSQL's width_bucket(latency, BOUNDS_MS) - the
    daemon's write - places them."""
    return bisect_right(BOUNDS_MS, latency_ms)


def sql_bounds() -> str:
    """BOUNDS_MS as a PostgreSQL real[] literal, for the daemon's rollup statement."""
    return "'{" + ",".join(f"{b:g}" for b in BOUNDS_MS) + "}'::real[]"


def percentile(hist: Sequence[int], q: float, max_ms: float | None) -> float | None:
    """The q-quantile (0 < q <= 1) of the latencies a histogram counts, interpolated
    linearly inside its bucket and never above the largest latency seen."""
    total = sum(hist)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(hist):
        if n and seen + n >= rank:
            lo = BOUNDS_MS[i - 1] if i > 0 else 0.0
            hi = BOUNDS_MS[i] if i < len(BOUNDS_MS) else (max_ms or BOUNDS_MS[-1])
            if max_ms is not None:
                hi = min(hi, max_ms)
                lo = min(lo, hi)
            return round(lo + (hi - lo) * (rank - seen) / n, 3)
        seen += n
    return max_ms
