"""The status and transition SQL: one batch of results and events in one transaction.

Results go by binary COPY into a session temp table and one UPDATE; transitions go in
the same transaction, each as a compare-and-swap on ``connection_status`` plus its
history row and webhook outbox rows, so two writers cannot both win and a committed
transition is never left without its history.

Fenced: every row names the shard lease generation it was probed under, and lands only
while that shard's generation is still the same (checked in the writing statement, with
the lease rows share-locked to the commit, so a take-over waits for it or comes before
it). Rows that fail the fence are dropped and reported as stale.

History in commit order: the history insert takes a transaction-level advisory lock, so
two daemons' history ids are allocated and committed one transaction after the other, and
a reader following ``id > cursor`` never passes an id that commits later.

A batch the database refuses for its content (a message PostgreSQL cannot store, a row a
trigger or constraint rejects) is written again one row at a time (``write_one_by_one``):
a refused row is retried with its messages replaced, and dropped only if even that fails.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from healthd.core import rollups
from healthd.core.phases import NAMES
from healthd.core.words import CONNECTED, DOWN, FAILED, SUCCESS, TRANSITION, sql_list
from healthd.store import locks, parents, rollbuf
from healthd.store.codec import Pending, ResultRow, obs_json, ts
from healthd.store.leases import shard_of
from healthd.store.rollbuf import Taken

log = logging.getLogger("healthd.store")


ANALYZE_OVER = 200  # batches larger than this get planner statistics before the join

# A batch goes to a session temp table by binary COPY (psycopg's C dumpers; text
# parameters for a dozen 10,000-element arrays cost more than the UPDATE itself), then one
# UPDATE joins it by primary key (nested loops forced: the temp table has no statistics,
# and a hash join would scan all of data_sources for every batch).
RESULTS_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS healthd_results (
    id text, at timestamptz, ts text, msg text, lat real, pst text, pc int, streak text,
    rec text, flap bool, pct real, rc int, shard int, gen bigint
) ON COMMIT DELETE ROWS
"""
# the streak travels as JSON text, cast in the UPDATE: psycopg's Jsonb dumper cost more
# per row than the rest of the row together, and nearly every streak is the empty one
_RESULTS_TYPES = [
    "text",
    "timestamptz",
    "text",
    "text",
    "float4",
    "text",
    "int4",
    "text",
    "text",
    "bool",
    "float4",
    "int4",
    "int4",
    "int8",
]
# the fence: the lease rows of the batch's shards, share-locked until commit (a take-over's
# FOR UPDATE SKIP LOCKED passes them by until then); a row without a generation (None) is
# written by a tool that holds no lease
_LEASES = "SELECT shard, generation FROM shard_leases WHERE shard = ANY(%(shards)s) FOR SHARE"
_HELD = (
    "(x.gen IS NULL OR EXISTS"
    " (SELECT 1 FROM fence f WHERE f.shard = x.shard AND f.generation = x.gen))"
)
# The latency rollups (migration 0008) ride in the same statement: per source per minute,
# probes, failures, the slowest success and a fixed histogram of successes' latencies
# (healthd.core.rollups). They are summed in memory until their minute closes (rollbuf.py) and
# arrive by COPY in their own temp table, at most one per source and minute (rollbuf.take);
# the upsert adds them to a row already there (a bucket written in parts). Fenced like the
# rest: a stale daemon's probes count in no one's figures.
# The phases of HTTP probes (migration 0012) ride along as a count and one sum per phase.
_H_COLS = ", ".join(f"h{i} int" for i in range(rollups.SLOTS))
_H_ARRAY = "ARRAY[" + ", ".join(f"g.h{i}" for i in range(rollups.SLOTS)) + "]"
_P_NAMES = [f"{n}_ms_sum" for n in NAMES]
_P_COLS = ", ".join(f"{c} float8" for c in _P_NAMES)
ROLLUPS_TEMP = f"""
CREATE TEMP TABLE IF NOT EXISTS healthd_rollups (
    id text, bucket timestamptz, n int, fail int, mx real, shard int, gen bigint, {_H_COLS},
    phased int, {_P_COLS}
) ON COMMIT DELETE ROWS
"""
# the histogram as plain int columns: binary COPY of an int[] per row cost more than the
# upsert itself (psycopg dumps list elements one by one)
_ROLLUPS_TYPES = (
    ["text", "timestamptz", "int4", "int4", "float4", "int4", "int8"]
    + ["int4"] * rollups.SLOTS
    + ["int4"]
    + ["float8"] * len(NAMES)
)
_ADDS = ", ".join(f"l.hist[{i}] + excluded.hist[{i}]" for i in range(1, rollups.SLOTS + 1))
_P_LIST = ", ".join(_P_NAMES)
_P_ADDS = ", ".join(f"{c} = l.{c} + excluded.{c}" for c in ["phased", *_P_NAMES])
_ROLL = f"""roll AS (
    INSERT INTO latency_rollups AS l
        (source_id, bucket, count, failures, max_ms, hist, phased, {_P_LIST})
    SELECT g.id, g.bucket, g.n, g.fail, g.mx, {_H_ARRAY}, g.phased,
        {", ".join(f"g.{c}" for c in _P_NAMES)}
    FROM healthd_rollups g WHERE {_HELD.replace("x.", "g.")}
    ON CONFLICT (source_id, bucket) DO UPDATE SET
        count = l.count + excluded.count, failures = l.failures + excluded.failures,
        max_ms = greatest(l.max_ms, excluded.max_ms), hist = ARRAY[{_ADDS}], {_P_ADDS}
)"""
_RESULTS_SQL = f"""
WITH fence AS ({_LEASES}), {_ROLL}, upd AS (
    UPDATE data_sources d SET
        last_tested_at = r.at, test_status = r.ts, test_error_message = r.msg,
        latency_ms = r.lat, pending_status = r.pst, pending_count = r.pc,
        pending_results = r.streak::jsonb, recent_results = r.rec, flapping = r.flap,
        percent_state_change = r.pct, reconnect_count = d.reconnect_count + r.rc,
        updated_at = now()
    FROM healthd_results r WHERE d.id = r.id AND {_HELD.replace("x.", "r.")}
)
SELECT x.id FROM healthd_results x WHERE NOT {_HELD}
"""

# Events go the same way: binary COPY into a temp table, then one statement that applies
# every transition as a compare-and-swap (WHERE connection_status = from), writes a history
# row for each one that won and for each flapping event, and the webhook outbox rows for
# those. A source appears at most once per kind in one pass (see waves).
DOWN_SQL = sql_list(DOWN)

EVENTS_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS healthd_events (
    seq int, id text, event text, from_status text, to_status text, at timestamptz, msg text,
    results jsonb, shard int, gen bigint
) ON COMMIT DELETE ROWS
"""
_EVENTS_TYPES = [
    "int4",
    "text",
    "text",
    "text",
    "text",
    "timestamptz",
    "text",
    "jsonb",
    "int4",
    "int8",
]
_EVENTS_SQL = f"""
WITH fence AS ({_LEASES}), ev AS (
    -- db_at: the event's time on the database's clock. The history, status_changed_at
    -- and the maintenance check use it, so every daemon's transitions stand on one clock
    -- and a take-over by a daemon whose clock runs behind cannot write its transitions
    -- before the last one. While the two clocks agree within a second it is the event's
    -- own time, exactly; past that, its age on the daemon's clock counted back from the
    -- database's now
    SELECT x.*, {_HELD} AS held,
        CASE WHEN abs(extract(epoch FROM statement_timestamp() - %(sent)s)) <= 1 THEN x.at
            ELSE statement_timestamp() - (%(sent)s - x.at) END AS db_at
    FROM healthd_events x
), upd AS (
    UPDATE data_sources d SET connection_status = e.to_status, status_changed_at = e.db_at,
        updated_at = now()
    FROM ev e
    WHERE e.held AND e.event = %(transition)s AND d.id = e.id
        AND d.connection_status = e.from_status
    RETURNING d.id, d.name, d.depends_on
), won AS (
    SELECT e.*, coalesce(u.name, s.name) AS name, coalesce(u.depends_on, s.depends_on) AS parents
    FROM ev e
    LEFT JOIN upd u ON e.event = %(transition)s AND u.id = e.id
    LEFT JOIN data_sources s ON e.event <> %(transition)s AND e.held AND s.id = e.id
    WHERE u.id IS NOT NULL OR s.id IS NOT NULL
), maint AS (
    -- inside a maintenance window at the event's time (set-based: windows are few, events
    -- many; the source filter runs before the window's occurrence is computed). By the
    -- database's clock, as the API shows windows: a daemon whose clock ran an hour ahead
    -- marked a transition inside an open window as outside it, and paged.
    SELECT DISTINCT won.id, won.event FROM won
    JOIN maintenance_windows w ON w.source_ids IS NULL OR won.id = ANY (w.source_ids)
    WHERE healthd_window_occurrence(w, won.db_at) @> won.db_at
), pairs AS MATERIALIZED (
    SELECT c.id, unnest(c.parents) AS pid FROM won c
    WHERE c.event = %(transition)s AND c.to_status IN ({DOWN_SQL})
      AND cardinality(c.parents) > 0
), down AS (
    -- a failing child's enabled parents that are not connected: the status this wave
    -- gives a parent, else its row's (the statement sees the rows as they were before it)
    SELECT pr.id, array_agg(pr.pid ORDER BY pr.pid) AS parents
    FROM pairs pr JOIN data_sources p ON p.id = pr.pid
    LEFT JOIN ev pe ON pe.held AND pe.event = %(transition)s AND pe.id = pr.pid
    WHERE {parents.silences("p", "coalesce(pe.to_status, p.connection_status)")}
    GROUP BY pr.id
), marked AS (
    -- recorded either way; marked so that no webhook goes out
    -- (docs/operations.md, Maintenance windows)
    SELECT won.*, mt.id IS NOT NULL AS maintenance, d.parents AS suppressed_by
    FROM won
    LEFT JOIN maint mt ON mt.id = won.id AND mt.event = won.event
    LEFT JOIN down d ON won.event = %(transition)s AND d.id = won.id
), h AS (
    INSERT INTO status_history
        (source_id, event, from_status, to_status, at, error_message, results, maintenance,
        suppressed_by)
    SELECT id, event, from_status, to_status, db_at, msg, results, maintenance, suppressed_by
    FROM marked ORDER BY seq
    RETURNING id, source_id, event, at
), o AS (
    INSERT INTO webhook_outbox (webhook_id, history_id, event, payload)
    SELECT w.id, h.id, h.event, jsonb_build_object(
        'id', h.id, 'event', h.event, 'source_id', h.source_id, 'source_name', m.name,
        'from', m.from_status, 'to', m.to_status,
        -- UTC with a Z whatever the session's TimeZone (jsonb renders timestamptz in it)
        'at', to_char(h.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'message', m.msg)
    FROM h JOIN marked m ON m.id = h.source_id AND m.event = h.event
    CROSS JOIN webhooks w WHERE w.enabled AND h.event = ANY (w.events)
        AND NOT m.maintenance AND m.suppressed_by IS NULL
        AND (w.source_ids IS NULL OR h.source_id = ANY (w.source_ids))
        AND (w.to_statuses IS NULL OR h.event <> %(transition)s
            OR m.to_status = ANY (w.to_statuses))
)
SELECT id, source_id, event, false AS stale FROM h
UNION ALL SELECT NULL, id, event, true FROM ev WHERE NOT held
"""
# Maintenance windows the server cannot evaluate (a time zone it does not know): never open,
# so a transition inside one is recorded unmarked and pages as usual (migrations/0016)
UNEVALUABLE_WINDOWS = (
    "SELECT id, tz FROM maintenance_windows w WHERE NOT healthd_window_evaluable(w) ORDER BY id"
)
# pg_advisory_xact_lock key of the history feed
HISTORY_LOCK = locks.HISTORY
SETUP = (RESULTS_TEMP, EVENTS_TEMP, ROLLUPS_TEMP)
# the rollups alone (written row by row's way, or with no result to ride with)
_ROLLUPS_SQL = f"WITH fence AS ({_LEASES}), {_ROLL} SELECT 1"


@dataclass
class Outcome:
    """What became of a batch, beyond the rows that simply landed."""

    ids: list[int] = field(default_factory=list)  # new history rows
    conflicts: list[str] = field(default_factory=list)  # lost their compare-and-swap
    stale: list[str] = field(default_factory=list)  # dropped by the fence (lease lost)
    replaced: list[str] = field(default_factory=list)  # written with their messages replaced
    dropped: list[str] = field(default_factory=list)  # refused even then
    reasons: dict[str, str] = field(default_factory=dict)  # why, for replaced and dropped

    def add(self, other: Outcome) -> None:
        self.ids += other.ids
        self.conflicts += other.conflicts
        self.stale += other.stale
        self.replaced += other.replaced
        self.dropped += other.dropped
        self.reasons.update(other.reasons)

    def unlanded(self) -> set[str]:
        """Sources whose in-memory state may now disagree with the table."""
        return set(self.conflicts) | set(self.dropped) | set(self.replaced)


def waves(events: list[Pending]) -> list[list[Pending]]:
    """Split events, in order, so no wave holds two events of one kind for one source
    (an outage can buffer unknown->connected and connected->error for the same source)."""
    out: list[list[Pending]] = [[]]
    seen: set[tuple[str, str]] = set()
    for p in events:
        key = (p.source_id, p.event.kind)
        if key in seen:
            out.append([])
            seen = set()
        seen.add(key)
        out[-1].append(p)
    return out


def write_batch(
    conn: psycopg.Connection[Any],
    results: list[ResultRow],
    events: list[Pending],
    rolls: Taken | None = None,
) -> Outcome:
    """Write results, closed rollup buckets and events in one transaction and wake the
    API's listeners."""
    with conn.transaction():
        out = Outcome(stale=write_results(conn, results, rolls))
        out.add(write_events(conn, events))
        if out.ids:
            conn.execute("SELECT pg_notify('healthd_events', %s)", (str(max(out.ids)),))
    return out


def _result_rows(rows: list[ResultRow]) -> Iterator[tuple[Any, ...]]:
    for r in rows:
        st, ok = r.state, r.obs.status == CONNECTED
        yield (
            r.source_id,
            ts(r.obs.at),
            SUCCESS if ok else FAILED,
            # a success keeps its text too (a Nagios WARNING, perfdata): the raw last
            # result is what the probe said, whatever the verdict
            r.obs.message or None,
            r.latency_ms,
            st.pending,
            st.count,
            json.dumps([obs_json(o) for o in st.streak]) if st.streak else "[]",
            st.recent,
            st.flapping,
            st.percent,
            1 if r.reconnected else 0,
            shard_of(r.source_id),
            r.gen,
        )


def write_results(
    conn: psycopg.Connection[Any], rows: list[ResultRow], rolls: Taken | None = None
) -> list[str]:
    """Write results (and closed rollup buckets, in the same statement); return the ids of
    the results the fence dropped (stale)."""
    if rolls:
        with conn.cursor().copy("COPY healthd_rollups FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_ROLLUPS_TYPES)
            for roll in rollbuf.copy_rows(rolls):
                copy.write_row(roll)
        if not rows:
            shards = sorted({shard_of(k[0]) for k in rolls})
            conn.execute(_ROLLUPS_SQL, {"shards": shards})
            conn.execute("DELETE FROM healthd_rollups")
            return []
    if not rows:
        return []
    with conn.cursor().copy("COPY healthd_results FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_RESULTS_TYPES)
        for row in _result_rows(rows):
            copy.write_row(row)
    # the temp table has no statistics: left alone, the planner hash-joins and scans
    # all of data_sources; by primary key is right for any batch size
    conn.execute("SET LOCAL enable_hashjoin = off")
    conn.execute("SET LOCAL enable_mergejoin = off")
    shards = sorted({shard_of(r.source_id) for r in rows} | {shard_of(k[0]) for k in rolls or ()})
    stale = [r["id"] for r in conn.execute(_RESULTS_SQL, {"shards": shards}).fetchall()]
    conn.execute("SET LOCAL enable_hashjoin = on")
    conn.execute("SET LOCAL enable_mergejoin = on")
    # ON COMMIT DELETE ROWS empties it at the commit; a savepoint's next row comes first
    conn.execute("DELETE FROM healthd_results")
    if rolls:
        conn.execute("DELETE FROM healthd_rollups")
    return stale


def write_events(conn: psycopg.Connection[Any], events: list[Pending] | Pending) -> Outcome:
    out = Outcome()
    if isinstance(events, Pending):
        events = [events]
    if not events:
        return out
    # held to the commit: no other writer's history row gets an id until this one's
    # rows are committed, so ids become visible in order
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (HISTORY_LOCK,))
    for wave in waves(events):
        conn.execute("DELETE FROM healthd_events")
        with conn.cursor().copy("COPY healthd_events FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_EVENTS_TYPES)
            for seq, (sid, ev, gen) in enumerate(wave):
                copy.write_row(
                    (
                        seq,
                        sid,
                        ev.kind,
                        ev.from_status,
                        ev.to_status,
                        ts(ev.at),
                        ev.message or None,
                        Jsonb([obs_json(o) for o in ev.results]),
                        shard_of(sid),
                        gen,
                    )
                )
        if len(wave) > ANALYZE_OVER:
            conn.execute("ANALYZE healthd_events")
        shards = sorted({shard_of(p.source_id) for p in wave})
        # the daemon's clock now: an event's age on it is what carries over to the database's
        params = {"transition": TRANSITION, "shards": shards, "sent": ts(time.time())}
        rows = conn.execute(_EVENTS_SQL, params).fetchall()
        out.ids.extend(int(r["id"]) for r in rows if not r["stale"])
        out.stale.extend(r["source_id"] for r in rows if r["stale"])
        written = {(r["source_id"], r["event"]) for r in rows}
        out.conflicts.extend(report_conflicts(wave, written))
    return out


def report_conflicts(wave: list[Pending], written: set[tuple[str, str]]) -> list[str]:
    conflicts = []
    for sid, ev, _ in wave:
        if (sid, ev.kind) not in written:
            # the row changed under us (removed, or another writer moved its status): the
            # compare-and-swap refused; the daemon reloads this source's state from the row
            conflicts.append(sid)
            log.warning(
                "source %s: %s %s -> %s not written (status changed elsewhere or source removed)",
                sid,
                ev.kind,
                ev.from_status,
                ev.to_status,
            )
    return conflicts
