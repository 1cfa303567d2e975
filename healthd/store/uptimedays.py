"""The daily uptime rollup (migrations/0015_uptime_days.sql): per source per closed UTC
day, the seconds up, down and unknown, so that the API's uptime over 90 days reads 90
rows, not every transition of 90 days (a source that flaps every few seconds has
millions).

Rolled up by whichever daemon holds the lock, in small batches on the writer thread. A
day is rolled once it has been closed for SETTLE_S (results of its last seconds land a
flush later). A transition written after its day was rolled (a spool replayed after an
outage) is seen by its history id: that day and every later one of the source are rolled
again, since the state each of them starts in may have changed. Rows older than the
DAYS_KEPT the API reads go as each new day is rolled (retention's cut-off is longer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from healthd.store import locks

# pg_try_advisory_xact_lock key: one roller at a time across every daemon
LOCK_KEY = locks.UPTIME_DAYS
# The API's longest window (90 days, statusapi/data/uptime.py) starts inside the 91st day
# back; one more is kept so that the window's first day is there just after midnight.
DAYS_KEPT = 92
SETTLE_S = 300
BATCH = 2000  # (source, day) pairs per transaction: a flush waits at most one batch

_NEWEST = "((now() - make_interval(secs => %(settle)s)) AT TIME ZONE 'UTC')::date - 1"

# A late transition: the rows of its day and after, rolled before it was written, go.
_LATE = """
DELETE FROM uptime_days u USING (
    SELECT source_id, min(at) AS at, max(id) AS id FROM status_history
    WHERE id > %(after)s AND event = 'transition' GROUP BY source_id) l
WHERE u.source_id = l.source_id AND u.upto_id < l.id
  AND u.day >= (l.at AT TIME ZONE 'UTC')::date
RETURNING u.source_id
"""

_ROLL = f"""
INSERT INTO uptime_days (source_id, day, created_at, up_s, down_s, unknown_s, upto_id)
SELECT m.id, m.day, m.created_at, f.up_s, f.down_s, f.unknown_s, %(head)s
FROM (
    SELECT s.id, s.created_at, d.day::date AS day FROM data_sources s
    CROSS JOIN generate_series(({_NEWEST}) - %(days)s + 1, {_NEWEST}, interval '1 day') d(day)
    WHERE s.created_at < (d.day + interval '1 day') AT TIME ZONE 'UTC'
      AND (%(ids)s::text[] IS NULL OR s.id = ANY (%(ids)s::text[]))
      AND NOT EXISTS (SELECT 1 FROM uptime_days u
          WHERE u.source_id = s.id AND u.day = d.day AND u.created_at = s.created_at)
    ORDER BY d.day, s.id LIMIT %(batch)s
) m CROSS JOIN LATERAL healthd_state_seconds(m.id, m.created_at,
    m.day::timestamp AT TIME ZONE 'UTC', (m.day + 1)::timestamp AT TIME ZONE 'UTC') f
ON CONFLICT (source_id, day) DO UPDATE SET created_at = EXCLUDED.created_at,
    up_s = EXCLUDED.up_s, down_s = EXCLUDED.down_s, unknown_s = EXCLUDED.unknown_s,
    upto_id = EXCLUDED.upto_id
"""


@dataclass
class Roller:
    """What one daemon remembers between batches: the history id it has looked at, the
    newest day it has rolled for every source, and the sources to look at again."""

    head: int | None = None
    rolled: Any = None  # the newest day (a date) rolled for every source
    dirty: set[str] = field(default_factory=set)

    def batch(self, conn: psycopg.Connection[Any], batch: int = BATCH) -> int | None:
        """One short transaction: forget the days late transitions changed, roll up to
        ``batch`` (source, day) pairs still missing. The pairs rolled; None when another
        process holds the lock (it does the work)."""
        p: dict[str, Any] = {"settle": SETTLE_S, "days": DAYS_KEPT, "batch": batch}
        with conn.transaction():
            row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,)).fetchone()
            if not row or not _first(row):
                return None
            row = conn.execute(
                f"SELECT coalesce((SELECT max(id) FROM status_history), 0), {_NEWEST},"
                " (SELECT max(upto_id) FROM uptime_days)",
                p,
            ).fetchone()
            assert row is not None
            head, newest, seen = _values(row)
            after = self.head if self.head is not None else seen
            if after is not None and after < head:
                late = conn.execute(_LATE, {"after": after}).fetchall()
                self.dirty.update(_first(r) for r in late)
            p["head"] = head
            if self.rolled != newest:
                p["ids"] = None  # a new day: every source; and the oldest day goes
                conn.execute(
                    "DELETE FROM uptime_days WHERE day <= %(newest)s::date - %(days)s",
                    {"newest": newest, "days": DAYS_KEPT},
                )
            elif self.dirty:
                p["ids"] = sorted(self.dirty)
            else:
                self.head = head
                return 0
            n = conn.execute(_ROLL, p).rowcount
        self.head = head
        if n < batch:
            if p["ids"] is None:
                self.rolled = newest
            self.dirty.clear()
        return n


def _values(row: Any) -> tuple[Any, ...]:
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


def _first(row: Any) -> Any:
    return _values(row)[0]
