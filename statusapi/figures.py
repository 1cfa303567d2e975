"""Uptime and latency figures of one source, read from the database (the arithmetic is
in statusapi.uptime and healthd.rollups)."""

from __future__ import annotations

from typing import Any

from healthd import rollups
from statusapi import queries
from statusapi.uptime import DAYS, Timeline

# window -> (seconds, bucket seconds): about 60-100 points per chart
LATENCY_WINDOWS: dict[str, tuple[int, int]] = {
    "1h": (3600, 60),
    "24h": (86400, 900),
    "7d": (7 * 86400, 7200),
}


def maintenance_windows(source_id: str, since: float, now: float) -> list[tuple[float, float]]:
    """The source's maintenance windows overlapping [since, now], as epoch pairs. None
    exist yet (maintenance windows arrive with issue 12): this is where their query goes,
    and uptime already counts what it returns apart."""
    return []


def timeline(source_id: str, days: int = DAYS) -> Timeline | None:
    """The source's timeline over the last ``days`` days (one indexed query), or None."""
    rows = queries.uptime_rows(source_id, days)
    if not rows or rows[0][0] != 0:
        return None
    created, now = rows[0][1], rows[0][2]
    since = now - days * 86400.0
    return Timeline(
        ((r[1], r[3]) for r in rows[1:]),
        created_at=created,
        since=since,
        now=now,
        maintenance=maintenance_windows(source_id, since, now),
    )


def uptime(source_id: str) -> dict[str, Any] | None:
    tl = timeline(source_id)
    if tl is None:
        return None
    return {"source_id": source_id, "windows": tl.windows(), "daily": tl.daily()}


def latency(source_id: str, window: str) -> list[dict[str, Any]]:
    span, step = LATENCY_WINDOWS[window]
    out = []
    for r in queries.latency_buckets(source_id, span, step, rollups.SLOTS):
        start, count, failures, max_ms = r[0], r[1], r[2], r[3]
        hist = r[4:]
        out.append(
            {
                "start": start,
                "count": count,
                "failures": failures,
                "p50_ms": rollups.percentile(hist, 0.50, max_ms),
                "p95_ms": rollups.percentile(hist, 0.95, max_ms),
                "max_ms": round(max_ms, 3) if max_ms is not None else None,
            }
        )
    return out
