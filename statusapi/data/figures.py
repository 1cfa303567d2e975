"""Uptime and latency figures of one source, read from the database (the arithmetic is
in statusapi.data.uptime and healthd.core.rollups).

Uptime reads the daemon's daily rollup (migrations/0015_uptime_days.sql) and asks the
transitions only for the parts of days a figure cuts (statusapi.data.uptime.Plan): what
a request costs does not grow with the history, however busy the source."""

from __future__ import annotations

from typing import Any

from healthd.core import rollups
from healthd.core.phases import NAMES
from statusapi.data import queries
from statusapi.data.db import fetch_all
from statusapi.data.uptime import DAYS, WINDOWS, Figures, Plan, Seconds

Daily = list[dict[str, Any]]

# window -> (seconds, bucket seconds): about 60-100 points per chart
LATENCY_WINDOWS: dict[str, tuple[int, int]] = {
    "1h": (3600, 60),
    "24h": (86400, 900),
    "7d": (7 * 86400, 7200),
}


# the sources, the database's now and each one's rollup rows of the days a Plan reads
# (the 90-day window begins in the 91st day back), kept only while the row is of this
# source and not of an earlier one with the same id
_ROLLED = (
    "SELECT s.id, date_part('epoch', s.created_at), date_part('epoch', now()),"
    " date_part('epoch', u.day::timestamp AT TIME ZONE 'UTC'), u.up_s, u.down_s, u.unknown_s"
    " FROM data_sources s LEFT JOIN uptime_days u ON u.source_id = s.id"
    "  AND u.created_at = s.created_at"
    "  AND u.day >= (now() AT TIME ZONE 'UTC')::date - %(days)s"
    " WHERE s.id = ANY (%(ids)s::text[])"
)
# the seconds up, down and unknown over each asked interval, from the transitions
_ASKED = (
    "SELECT p.i, f.up_s, f.down_s, f.unknown_s FROM unnest(%(ids)s::text[],"
    " %(lo)s::float8[], %(hi)s::float8[]) WITH ORDINALITY AS p(id, lo, hi, i)"
    " JOIN data_sources s ON s.id = p.id, LATERAL healthd_state_seconds(s.id, s.created_at,"
    " to_timestamp(p.lo), to_timestamp(p.hi)) f"
)


def plans(
    ids: list[str], maintenance: dict[str, list[tuple[float, float]]] | None = None
) -> tuple[float, dict[str, tuple[dict[str, Figures], Daily]]]:
    """(the database's now, each known source's (windows, daily)) for ``ids``: two
    statements whatever their number, plus the maintenance windows when not given (the
    page has them already). An unknown id is left out."""
    if not ids:
        return 0.0, {}
    rows = fetch_all(_ROLLED, {"ids": ids, "days": DAYS + 1}, tuples=True)
    if not rows:
        return 0.0, {}
    now = float(rows[0][2])
    created: dict[str, float] = {}
    rolled: dict[str, dict[float, Seconds]] = {}
    for sid, created_s, _, day, up, down, unknown in rows:
        created[sid] = float(created_s)
        days = rolled.setdefault(sid, {})
        if day is not None:
            days[float(day)] = (float(up), float(down), float(unknown))
    if maintenance is None:
        since = now - WINDOWS["90d"] - 86400.0
        maintenance = {sid: queries.maintenance_spans(sid, since, now) for sid in created}
    planned = {
        sid: Plan(now, created[sid], rolled[sid], maintenance.get(sid, ())) for sid in created
    }
    ask_ids: list[str] = []
    los: list[float] = []
    his: list[float] = []
    for sid, plan in planned.items():
        for lo, hi in plan.asks:
            ask_ids.append(sid)
            los.append(lo)
            his.append(hi)
    answers: list[Seconds] = [(0.0, 0.0, 0.0)] * len(los)
    if los:
        for i, up, down, unknown in fetch_all(
            _ASKED, {"ids": ask_ids, "lo": los, "hi": his}, tuples=True
        ):
            answers[int(i) - 1] = (float(up), float(down), float(unknown))
    out: dict[str, tuple[dict[str, Figures], Daily]] = {}
    k = 0
    for sid, plan in planned.items():
        n = len(plan.asks)
        out[sid] = plan.figures(answers[k : k + n])
        k += n
    return now, out


def source_uptime(source_id: str) -> tuple[dict[str, Figures], Daily, float] | None:
    """(windows, daily, the database's now) of one source, or None for an unknown one."""
    now, got = plans([source_id])
    found = got.get(source_id)
    if found is None:
        return None
    return found[0], found[1], now


def uptime(source_id: str) -> dict[str, Any] | None:
    found = source_uptime(source_id)
    if found is None:
        return None
    windows, daily, _ = found
    return {"source_id": source_id, "windows": windows, "daily": daily}


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
