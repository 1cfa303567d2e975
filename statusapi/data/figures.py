"""Uptime and latency figures of one source, read from the database (the arithmetic is
in statusapi.data.uptime and healthd.core.rollups)."""

from __future__ import annotations

from typing import Any

from healthd.core import rollups
from healthd.core.phases import NAMES
from statusapi.data import queries
from statusapi.data.uptime import DAYS, Timeline

# window -> (seconds, bucket seconds): about 60-100 points per chart
LATENCY_WINDOWS: dict[str, tuple[int, int]] = {
    "1h": (3600, 60),
    "24h": (86400, 900),
    "7d": (7 * 86400, 7200),
}


def timeline(source_id: str, days: int = DAYS) -> tuple[Timeline, float] | None:
    """The source's timeline over the last ``days`` days, with its maintenance windows set
    apart, and the database's now (one indexed query), or None for an unknown source."""
    found = queries.uptime_rows(source_id, days)
    if found is None:
        return None
    created, now, times, statuses, maintenance = found
    tl = Timeline(
        zip(times, statuses, strict=True),
        created_at=created,
        since=now - days * 86400.0,
        maintenance=maintenance,
    )
    return tl, now


def uptime(source_id: str) -> dict[str, Any] | None:
    found = timeline(source_id)
    if found is None:
        return None
    tl, now = found
    return {"source_id": source_id, "windows": tl.windows(now), "daily": tl.daily(now)}


def latency(source_id: str, window: str) -> list[dict[str, Any]]:
    span, step = LATENCY_WINDOWS[window]
    slots = rollups.SLOTS
    out = []
    for r in queries.latency_buckets(source_id, span, step, slots):
        start, count, failures, max_ms = r[0], r[1], r[2], r[3]
        hist = r[4 : 4 + slots]
        out.append(
            {
                "start": start,
                "count": count,
                "failures": failures,
                "p50_ms": rollups.percentile(hist, 0.50, max_ms),
                "p95_ms": rollups.percentile(hist, 0.95, max_ms),
                "max_ms": round(max_ms, 3) if max_ms is not None else None,
                "phases": _mean_phases(r[4 + slots], r[5 + slots :]),
            }
        )
    return out


def _mean_phases(phased: int | None, sums: tuple[Any, ...]) -> dict[str, float] | None:
    """The mean time of each phase over the bucket's successful probes that reported
    phases (HTTP probes: healthd/core/phases.py), or None when none did."""
    if not phased:
        return None
    return {f"{n}_ms": round(float(v or 0) / phased, 3) for n, v in zip(NAMES, sums, strict=True)}
