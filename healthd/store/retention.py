"""Retention: history, latency rollups and finished webhook deliveries older than the
cut-off go, in small batches, one process at a time.

The cut-off is an age, counted back from the database's clock: what is kept must not
depend on the clock of whichever daemon or CLI happens to prune (one running 500 days
ahead deleted the last month's history).

Kept whatever their age: the newest transition of each source before the cut-off (it
says what state the kept window starts in, so uptime over it stays exact), and every
history row a delivery still waits on (pending, so at-least-once holds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from healthd.store import locks

# pg_try_advisory_xact_lock key: one pruner at a time across every daemon and CLI
LOCK_KEY = locks.PRUNE
BATCH = 1000

_OUTBOX = """
DELETE FROM webhook_outbox WHERE id IN (
    SELECT id FROM webhook_outbox
    WHERE created_at < %(cut)s AND (delivered_at IS NOT NULL OR gave_up_at IS NOT NULL)
    ORDER BY id LIMIT %(batch)s)
"""
# The transition kept per source is its newest before the cut-off by time (what uptime reads
# as the state a window starts in; the highest id among equal times), found by two probes of
# the (source_id, at) index of transitions (migrations/0008_latency_rollups.sql): max(id)
# alone walked the primary key down from the newest row of all, past every row written
# since the cut-off, once per candidate row, and with ORDER BY at, id the planner sorted
# every old row of the source, once per candidate row: under a steady flow of transitions
# a batch ran into the statement timeout.
_HISTORY = """
DELETE FROM status_history WHERE id IN (
    SELECT h.id FROM status_history h
    WHERE h.at < %(cut)s
      AND NOT (h.event = 'transition' AND h.id = (
          SELECT max(k.id) FROM status_history k
          WHERE k.source_id = h.source_id AND k.event = 'transition' AND k.at = (
              SELECT max(m.at) FROM status_history m
              WHERE m.source_id = h.source_id AND m.event = 'transition'
                AND m.at < %(cut)s)))
      AND NOT EXISTS (SELECT 1 FROM webhook_outbox o
          WHERE o.history_id = h.id AND o.delivered_at IS NULL AND o.gave_up_at IS NULL)
    ORDER BY h.id LIMIT %(batch)s)
"""
# migrations/0008_latency_rollups.sql's table; a database migrated before it has none
_ROLLUPS = """
DELETE FROM latency_rollups WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM latency_rollups WHERE bucket < %(cut)s LIMIT %(batch)s))
"""


@dataclass
class Pruned:
    history: int = 0
    rollups: int = 0
    deliveries: int = 0
    batches: int = 0
    busy: bool = False  # another process held the lock

    def as_dict(self) -> dict[str, Any]:
        return {"history": self.history, "rollups": self.rollups, "deliveries": self.deliveries}


def prune_batch(conn: psycopg.Connection[Any], age: timedelta, batch: int = BATCH) -> Pruned | None:
    """One batch of each kind older than ``age`` (by the database's clock), in one short
    transaction; None when another process is pruning (it will do the work)."""
    out = Pruned(batches=1)
    with conn.transaction():
        row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,)).fetchone()
        if not row or not _first(row):
            return None
        p = {"cut": cut_off(conn, age), "batch": batch}
        out.deliveries = conn.execute(_OUTBOX, p).rowcount
        out.history = conn.execute(_HISTORY, p).rowcount
        has = conn.execute("SELECT to_regclass('latency_rollups') IS NOT NULL").fetchone()
        if has and _first(has):
            out.rollups = conn.execute(_ROLLUPS, p).rowcount
    return out


def cut_off(conn: psycopg.Connection[Any], age: timedelta) -> datetime:
    """The database's now() minus ``age``."""
    row = conn.execute("SELECT now() - %s::interval", (age,)).fetchone()
    assert row is not None
    cut = _first(row)
    assert isinstance(cut, datetime)
    return cut


def _first(row: Any) -> Any:
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def more(p: Pruned, batch: int = BATCH) -> bool:
    return max(p.history, p.rollups, p.deliveries) >= batch


def prune_all(
    conn: psycopg.Connection[Any], age: timedelta, batch: int = BATCH, max_batches: int = 10_000
) -> Pruned:
    """Batches until nothing older is left (or another process is pruning)."""
    total = Pruned()
    for _ in range(max_batches):
        p = prune_batch(conn, age, batch)
        if p is None:
            total.busy = True
            break
        total.history += p.history
        total.rollups += p.rollups
        total.deliveries += p.deliveries
        total.batches += 1
        if not more(p, batch):
            break
    return total
